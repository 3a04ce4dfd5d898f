"""Security (issue 7): no credential is ever written, idTags pseudonymised in the capture only,
capture folders 0700 and files 0600.

The engine tests run once per engine (relay, mitmproxy) through ``tests.engines``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_audit.cli import main
from ocpp_audit.recorder.pseudonymise import (
    IdTagPseudonymiser,
    PseudonymisingSink,
)
from tests.capture_builder import CaptureBuilder
from tests.conftest import timeout
from tests.engines import PlainBackend, read_capture, stop_and_read
from tests.test_record_cli import Recorder

KEY = b"audit-key-2026"
PASSWORD = "Pw-7f3a9c1e-never-stored"
API_KEY = "ak-5d2b8e44-never-stored"
CREDENTIALS = base64.b64encode(f"CP001:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, API_KEY, CREDENTIALS)

TAGS = ("04A1B2C3D4E5F6", "PARENT-77", "LOCAL-TAG-1", "LOCAL-PARENT-2", "RESERVE-9", "REMOTE-5")


# -- the pseudonymiser, without I/O -----------------------------------------------------------------


def test_same_tag_same_pseudonym_fits_idtoken_and_depends_on_the_key() -> None:
    pseudonymiser = IdTagPseudonymiser(KEY)
    value = pseudonymiser.pseudonym("04A1B2C3D4E5F6")
    assert value == pseudonymiser.pseudonym("04A1B2C3D4E5F6")
    assert value.startswith("ps-") and len(value) <= 20  # IdToken is CiString20Type
    assert value != pseudonymiser.pseudonym("04A1B2C3D4E5F7")
    assert value != IdTagPseudonymiser(b"another key").pseudonym("04A1B2C3D4E5F6")
    assert "audit-key" not in repr(pseudonymiser)
    with pytest.raises(ValueError):
        IdTagPseudonymiser(b"")


def test_rewrite_replaces_only_the_tag_tokens_and_keeps_every_other_byte() -> None:
    pseudonymiser = IdTagPseudonymiser(KEY)
    tag = pseudonymiser.pseudonym
    frame = '[2, "a1", "Authorize",  {"idTag" :  "04A1B2C3D4E5F6", "note": "idTag"}]'
    assert pseudonymiser.rewrite(frame) == (
        f'[2, "a1", "Authorize",  {{"idTag" :  "{tag("04A1B2C3D4E5F6")}", "note": "idTag"}}]'
    )
    # An escaped tag is the same tag; a string that merely contains "idTag" is left alone.
    escaped = '[2,"s1","StartTransaction",{"connectorId":1,"idTag":"\\u0030\\u0034A1B2C3D4E5F6"}]'
    assert tag("04A1B2C3D4E5F6") in pseudonymiser.rewrite(escaped)
    tricky = '[2,"d1","DataTransfer",{"vendorId":"X","data":"{\\"idTag\\":\\"04A1\\"}"}]'
    assert pseudonymiser.rewrite(tricky) == tricky
    # Nested: SendLocalList entries and their idTagInfo.parentIdTag; answers' idTagInfo.
    local_list = json.dumps(
        [
            2,
            "l1",
            "SendLocalList",
            {
                "listVersion": 3,
                "updateType": "Full",
                "localAuthorizationList": [
                    {
                        "idTag": "LOCAL-TAG-1",
                        "idTagInfo": {"status": "Accepted", "parentIdTag": "LOCAL-PARENT-2"},
                    }
                ],
            },
        ]
    )
    rewritten = pseudonymiser.rewrite(local_list)
    assert "LOCAL-TAG-1" not in rewritten and "LOCAL-PARENT-2" not in rewritten
    assert json.loads(rewritten)[3]["localAuthorizationList"][0]["idTag"] == tag("LOCAL-TAG-1")
    # A malformed frame that still carries a tag is rewritten too (no JSON parse needed).
    assert "04A1" not in pseudonymiser.rewrite('[2,"a2","Authorize",{"idTag":"04A1B2"')
    # Numbers and everything else untouched.
    meter = '[2,"m1","MeterValues",{"connectorId":1,"meterValue":[{"value":"2e+01"}]}]'
    assert pseudonymiser.rewrite(meter) is meter


def test_sink_rewrites_message_rows_and_delegates_the_rest() -> None:
    class ListSink(list):
        unrecorded = 7

        def append(self, row: Any) -> None:
            super().append(row)

    inner = ListSink()
    sink = PseudonymisingSink(inner, IdTagPseudonymiser(KEY))
    sink.append(
        {
            "event": "message",
            "raw": '[3,"s1",{"transactionId":5,"idTagInfo":{"status":"Accepted","parentIdTag":"P1"}}]',
            "payload": '{"transactionId":5,"idTagInfo":{"status":"Accepted","parentIdTag":"P1"}}',
        }
    )
    sink.append({"event": "message", "raw_binary": b'{"idTag":"B1"}'})
    sink.append({"event": "open", "path": "/ocpp/idTag"})
    assert '"P1"' not in inner[0]["raw"] and '"P1"' not in inner[0]["payload"]
    assert b"B1" not in inner[1]["raw_binary"]
    assert inner[2] == {"event": "open", "path": "/ocpp/idTag"}
    assert sink.unrecorded == 7


# -- through each engine ------------------------------------------------------------------------------


def _all_text(rows: list[dict[str, Any]]) -> str:
    """Every value of every row, as one searchable text."""
    parts = []
    for row in rows:
        for value in row.values():
            if isinstance(value, bytes | bytearray):
                parts.append(bytes(value).decode("utf-8", "replace"))
            elif value is not None:
                parts.append(str(value))
    return "\n".join(parts)


async def test_backend_gets_the_real_tags_and_the_capture_none_of_them(recording, plain_backend):
    pseudonymiser = IdTagPseudonymiser(KEY)
    from_charger = [
        '[2,"a1","Authorize",{"idTag":"04A1B2C3D4E5F6"}]',
        '[2,"s1","StartTransaction",{"connectorId":1,"idTag":"04A1B2C3D4E5F6","meterStart":0,'
        '"timestamp":"2026-01-01T00:00:00Z"}]',
        '[2,"t1","StopTransaction",{"transactionId":5,"idTag":"04A1B2C3D4E5F6","meterStop":10,'
        '"timestamp":"2026-01-01T01:00:00Z"}]',
        '[3,"r1",{"status":"Accepted"}]',
    ]
    from_backend = [
        '[3,"a1",{"idTagInfo":{"status":"Accepted","parentIdTag":"PARENT-77"}}]',
        '[2,"l1","SendLocalList",{"listVersion":1,"updateType":"Full","localAuthorizationList":'
        '[{"idTag":"LOCAL-TAG-1","idTagInfo":{"status":"Accepted","parentIdTag":"LOCAL-PARENT-2"}}]}]',
        '[2,"n1","ReserveNow",{"connectorId":1,"expiryDate":"2026-01-01T02:00:00Z",'
        '"idTag":"RESERVE-9","reservationId":1}]',
        '[2,"r1","RemoteStartTransaction",{"idTag":"REMOTE-5"}]',
    ]
    async with recording(upstream=plain_backend.url, pseudonymise_key=KEY) as service:
        async with connect(
            service.url + "/ocpp/CP001", subprotocols=["ocpp1.6"], ping_interval=None
        ) as charger:
            upstream = await plain_backend.wait_connection()
            for frame in from_charger:
                await charger.send(frame)
            received = await upstream.wait_received(len(from_charger))
            got = []
            for frame in from_backend:
                await upstream.websocket.send(frame)
                async with asyncio.timeout(timeout(5)):
                    got.append(await charger.recv())
        rows = await stop_and_read(service)

    assert received == from_charger  # the wire is untouched both ways
    assert got == from_backend
    text = _all_text(rows)
    for tag in TAGS:
        assert tag not in text
    recorded = {row["raw"] for row in rows if row["event"] == "message"}
    assert recorded == {pseudonymiser.rewrite(frame) for frame in from_charger + from_backend}
    payloads = [json.loads(row["payload"]) for row in rows if row["action"] == "Authorize"]
    assert payloads[0]["idTag"] == pseudonymiser.pseudonym("04A1B2C3D4E5F6")
    assert payloads[1]["idTagInfo"]["parentIdTag"] == pseudonymiser.pseudonym("PARENT-77")
    starts = [json.loads(r["payload"]) for r in rows if r["action"] == "StartTransaction"]
    assert starts[0]["idTag"] == payloads[0]["idTag"]  # same tag, same value: analyses still join


def _assert_private(capture_dir: Path) -> int:
    """Every folder 0700, every file 0600 under ``capture_dir``; returns the file count."""
    files = 0
    for folder, _dirnames, filenames in os.walk(capture_dir):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
        for name in filenames:
            files += 1
            path = Path(folder, name)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    return files


async def test_no_credential_in_capture_logs_or_errors_and_private_modes(
    recording, engine_name, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    backend = PlainBackend(echo=True)
    await backend.start()
    refusing = PlainBackend(refuse=(401, "Unauthorized", {"WWW-Authenticate": "Basic"}, "no"))
    await refusing.start()
    headers = {"Authorization": f"Basic {CREDENTIALS}", "X-Api-Key": API_KEY}
    try:
        capture = tmp_path / "capture"
        async with recording(upstream=backend.url, capture_dir=capture) as service:
            async with connect(
                service.url + "/ocpp/CP001",
                subprotocols=["ocpp1.6"],
                additional_headers=headers,
                ping_interval=None,
            ) as charger:
                upstream = await backend.wait_connection()
                await charger.send('[2,"h1","Heartbeat",{}]')
                async with asyncio.timeout(timeout(5)):
                    await charger.recv()
                # The credentials reach the backend (the recorder is transparent) ...
                assert upstream.headers["Authorization"] == f"Basic {CREDENTIALS}"
                assert upstream.headers["X-Api-Key"] == API_KEY
                # ... and the journal written meanwhile holds none of them.
                for journal in capture.rglob("*.journal"):
                    data = journal.read_bytes().decode("utf-8", "replace")
                    assert not any(secret in data for secret in SECRETS)
            rows = await stop_and_read(service)
        # A refused handshake and an unreachable backend: their rows and error messages too.
        errors = []
        for url in (refusing.url, "ws://127.0.0.1:1"):
            async with recording(upstream=url, capture_dir=tmp_path / "refused") as service:
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(
                        service.url + "/ocpp/CP001", additional_headers=headers, open_timeout=10
                    ):
                        pass
                errors.append(str(refused.value) + repr(refused.value.response))
                rows += await stop_and_read(service)
    finally:
        await backend.stop()
        await refusing.stop()

    assert {row["event"] for row in rows} >= {"open", "message", "close", "refused"}
    assert {row["auth_user"] for row in rows if row["event"] in ("open", "refused")} == {"CP001"}
    # What the recorder logged (the test's own charger and backend log through websockets' loggers).
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("ocpp_audit", "mitmproxy"))
    )
    assert "Authorization: <redacted>" in logged or engine_name == "mitmproxy"
    written = _all_text(rows) + "\n".join(errors) + logged
    for path in tmp_path.rglob("*"):
        if path.is_file():
            written += path.read_bytes().decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in written
    assert _assert_private(capture) >= 1


async def test_record_process_writes_no_credential_to_stderr_or_capture(tmp_path):
    backend = PlainBackend(echo=True)
    await backend.start()
    capture = tmp_path / "capture"
    # The idTag key from the environment, so it is not in the process list either.
    recorder = await Recorder.start(
        capture, "--upstream", backend.url, verbose=True, env={"OCPP_AUDIT_IDTAG_KEY": KEY.decode()}
    )
    try:
        headers = {"Authorization": f"Basic {CREDENTIALS}", "X-Api-Key": API_KEY}
        async with connect(
            recorder.url + "/ocpp/CP001",
            subprotocols=["ocpp1.6"],
            additional_headers=headers,
            ping_interval=None,
        ) as charger:
            await charger.send('[2,"h1","Heartbeat",{}]')
            async with asyncio.timeout(timeout(5)):
                assert await charger.recv() == '[2,"h1","Heartbeat",{}]'
            authorize = '[2,"a1","Authorize",{"idTag":"04A1B2C3D4E5F6"}]'
            await charger.send(authorize)
            async with asyncio.timeout(timeout(5)):
                assert await charger.recv() == authorize  # echoed: the wire keeps the tag
        status, stderr = await recorder.stop(signal.SIGTERM)
    finally:
        await recorder.kill()
        await backend.stop()
    assert status == 0, stderr[-2000:]
    assert "Authorization: <redacted>" in stderr  # debug logging of headers did run
    rows = read_capture(capture)
    written = stderr + _all_text(rows)
    for secret in (*SECRETS, KEY.decode(), "04A1B2C3D4E5F6"):
        assert secret not in written
    pseudonym = IdTagPseudonymiser(KEY).pseudonym("04A1B2C3D4E5F6")
    assert sum(pseudonym in (row["raw"] or "") for row in rows) == 2  # both directions
    assert [row["auth_user"] for row in rows if row["event"] == "open"] == ["CP001"]
    assert _assert_private(capture) >= 1


def test_sql_in_a_charger_id_or_an_argument_is_only_text(tmp_path: Path) -> None:
    """Issue 19: arguments and ids reach SQL as literals, never as SQL. A charger whose id is an
    injection attempt is judged as itself; --charger with one selects nothing else; a --since
    or --memory-limit carrying SQL is refused as a usage error."""
    hostile = "x' OR '1'='1"
    capture = CaptureBuilder()
    for charge_point_id in ("CP-plain", hostile, "'; DROP TABLE frames; --"):
        cp = capture.charger(charge_point_id)
        cp.connect()
        cp.boot()
        cp.wait(60).heartbeat()
    capture.write(tmp_path / "capture")
    runner = CliRunner()
    result = runner.invoke(
        main, ["analyse", str(tmp_path / "capture"), "--charger", hostile, "-f", "json"]
    )
    assert result.exit_code in (0, 1), result.output
    chargers = [c["charge_point_id"] for c in json.loads(result.stdout)["chargers"]]
    assert chargers == [hostile]
    result = runner.invoke(main, ["analyse", str(tmp_path / "capture"), "-f", "json"])
    chargers = [c["charge_point_id"] for c in json.loads(result.stdout)["chargers"]]
    assert sorted(chargers) == sorted(["CP-plain", hostile, "'; DROP TABLE frames; --"])
    for option, value in (
        ("--since", "2026-01-01' OR true --"),
        ("--memory-limit", "1GB'; SELECT 1; --"),
    ):
        result = runner.invoke(main, ["analyse", str(tmp_path / "capture"), option, value])
        assert result.exit_code == 2, (option, result.output)
