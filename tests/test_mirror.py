"""Mirrors through both engines: a primary and two mirrors, one answering differently, one down.

The charger (the simulator) only ever talks to the primary; each live mirror gets every charger
CALL in order with its own transactionIds carried in; mirror answers are recorded and compared;
a mirror's CALLs are held back.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.mirrors import NothingToCompare, compare, render
from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import Direction
from ocpp_audit.capture.writer import write_rows
from ocpp_audit.cli import main
from ocpp_audit.lab.central_system import CentralSystem, CentralSystemConfig
from ocpp_audit.lab.simulator.charger import SimulatedCharger
from ocpp_audit.protocol.errors import CallErrorReceived
from ocpp_audit.recorder.mirror import READ_ONLY_ERROR
from ocpp_audit.recorder.options import MirrorSpec
from tests.conftest import timeout
from tests.engines import PlainBackend, read_capture

CHARGER = "SIM-MIRROR"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def charger_session(service: Any, during: Any = None) -> None:
    """Boot, authorize and charge, stop; ``during`` runs while the transaction is on."""
    charger = SimulatedCharger(CHARGER, service.url + "/ocpp", connectors=1)
    async with asyncio.timeout(timeout(30)):
        await charger.start()
        await charger.plug_in(1)
        await charger.swipe("TAG1", 1)
        if during is not None:
            await during()
        await charger.unplug(1)
        await charger.stop()


def conversation(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the charger lived through: the primary's messages, ids and clocks left out."""
    ordered = sorted(
        (r for r in rows if r["backend"] is None and r["event"] == "message"),
        key=lambda r: r["seq"],
    )
    return [
        (r["direction"], r["message_type"], r["action"], json.loads(r["payload"]).get("status"))
        for r in ordered
    ]


async def test_primary_and_two_mirrors(recording, tmp_path):
    primary = CentralSystem()
    different = CentralSystem(
        CentralSystemConfig(
            heartbeat_interval=300, id_tags={"TAG1": "Blocked"}, first_transaction_id=9000
        )
    )
    await primary.start()
    await different.start()
    try:
        # Without mirrors: what the charger sees.
        async with recording(upstream=primary.url, capture_dir=tmp_path / "alone") as service:
            await charger_session(service)
        alone = conversation(read_capture(tmp_path / "alone"))

        mark = primary.mark()
        mirrors = (
            MirrorSpec("new", different.url),
            MirrorSpec("down", f"ws://127.0.0.1:{closed_port()}"),
        )
        held_back: list[Exception] = []

        async def mirror_sends_a_call() -> None:
            # The new platform asks the charger for a Reset: the recorder answers it instead.
            await different.wait_connected(CHARGER, timeout(10))
            try:
                await different.call(CHARGER, "Reset", {"type": "Hard"}, timeout=timeout(5))
            except CallErrorReceived as error:
                held_back.append(error)

        async with recording(
            upstream=primary.url,
            capture_dir=tmp_path / "mirrored",
            mirrors=mirrors,
            mirror_backoff=0.05,
        ) as service:
            await charger_session(service, during=mirror_sends_a_call)
            await asyncio.sleep(0.2)  # the last answers from the live mirror
            states = {state.name: state for state in service.mirror_states()}
        rows = read_capture(tmp_path / "mirrored")
    finally:
        await primary.stop()
        await different.stop()

    # The charger is unaffected: the same conversation as without mirrors, no Reset reached it.
    assert conversation(rows) == alone
    assert not [r for r in rows if r["backend"] is None and r["action"] == "Reset"]

    # Every charger CALL reached the live mirror, in order, with the same unique ids.
    at_primary = [(c.unique_id, c.action) for c in primary.received(CHARGER, after=mark)]
    at_mirror = [(c.unique_id, c.action) for c in different.received(CHARGER)]
    assert at_mirror == at_primary
    assert {"BootNotification", "Authorize", "StartTransaction", "StopTransaction"} <= {
        action for _, action in at_mirror
    }

    # Identity: the mirror's StopTransaction carried the mirror's own transactionId.
    [stop_at_primary] = primary.received(CHARGER, "StopTransaction", after=mark)
    [stop_at_mirror] = different.received(CHARGER, "StopTransaction")
    assert stop_at_mirror.payload["transactionId"] == 9000
    assert stop_at_primary.payload["transactionId"] not in (None, 9000)
    meter_values = different.received(CHARGER, "MeterValues")
    assert all(m.payload.get("transactionId") in (None, 9000) for m in meter_values)
    assert not different.state(CHARGER).transactions[9000].active  # its books are consistent

    # The mirror's CALL was held back: answered NotSupported by the recorder, both recorded.
    assert [e.error_code for e in held_back] == [READ_ONLY_ERROR]
    new_rows = sorted((r for r in rows if r["backend"] == "new"), key=lambda r: r["seq"])
    reset = [r for r in new_rows if r["action"] == "Reset"]
    assert [(r["direction"], r["message_type"], r["injected"]) for r in reset] == [
        ("cs_to_cp", 2, False),
        ("cp_to_cs", 4, True),
    ]
    assert reset[1]["error_code"] == READ_ONLY_ERROR
    # The mirror's hop shares the charger's connection id and has its own open and close.
    primary_connection = {r["connection_id"] for r in rows if r["backend"] is None}
    assert {r["connection_id"] for r in new_rows} == primary_connection
    assert [r["event"] for r in new_rows if r["event"] != "message"] == ["open", "close"]

    # The mirror that is down: one refused row, and a gap row counting every CALL it missed.
    down_rows = [r for r in rows if r["backend"] == "down"]
    assert [r["event"] for r in down_rows] == ["refused", "gap"]
    assert json.loads(down_rows[1]["detail"])["dropped"] == len(at_primary)
    assert states["new"].sent == states["new"].answered == len(at_primary)
    assert states["new"].mirror_calls == 1 and states["new"].connected == 0
    assert states["down"].dropped == len(at_primary) and states["down"].failed_connects >= 1

    # compare: differences where the new platform answers otherwise, the down mirror unanswered.
    con = open_capture([tmp_path / "mirrored"])
    try:
        comparison = compare(con)
        answers = con.execute(
            "SELECT backend, action, sent_to_mirror, mirror_answered FROM mirror_answers"
        ).fetchall()
        verdicts = con.execute("SELECT count(*) FROM calls").fetchone()
    finally:
        con.close()
    outcomes = {mirror.name: mirror for mirror in comparison.mirrors}
    assert len(outcomes["new"].calls) == len(outcomes["down"].calls) == len(at_primary)
    paths = {(c.action, d.path) for c in outcomes["new"].differing for d in c.differences}
    assert ("BootNotification", "$.interval") in paths
    assert ("Authorize", "$.idTagInfo.status") in paths
    assert not any(path == "$.transactionId" for _, path in paths)  # carried ids: not a difference
    heartbeats = [c for c in outcomes["new"].calls if c.action == "StatusNotification"]
    assert heartbeats and not any(c.differences for c in heartbeats)
    assert len(outcomes["down"].unanswered) == len(at_primary)
    assert not outcomes["new"].unanswered
    assert all(c.mirror_latency_ms is not None for c in outcomes["new"].calls)
    assert {(b, sent, answered) for b, _, sent, answered in answers} == {
        ("new", True, True),
        ("down", False, False),
    }
    # The views judge the primary only: the calls view counts the charger's conversation.
    assert verdicts is not None and verdicts[0] == sum(1 for d, t, *_ in alone if t == 2)
    text = render(comparison, "table")
    assert "$.interval: primary 60, new 300" in text
    assert "never sent" in text


async def test_a_silent_mirror_costs_the_charger_nothing(recording, tmp_path):
    """A mirror that never answers: the charger's round trips go on at the primary's pace, the
    mirror's queue stays bounded and its overflow is counted in a gap row."""
    primary = CentralSystem()
    silent = PlainBackend()  # accepts the WebSocket, never answers
    await primary.start()
    await silent.start()
    sent = 20
    try:
        async with (
            recording(
                upstream=primary.url,
                mirrors=(MirrorSpec("silent", silent.url),),
                mirror_queue=3,
                mirror_answer_timeout=60.0,
            ) as service,
            connect(
                service.url + "/ocpp/CP-SILENT", subprotocols=["ocpp1.6"], ping_interval=None
            ) as charger,
        ):
            mirror = await silent.wait_connection()
            loop = asyncio.get_running_loop()
            round_trips = []
            for number in range(sent):
                started = loop.time()
                await charger.send(f'[2,"h{number}","Heartbeat",{{}}]')
                async with asyncio.timeout(timeout(5)):
                    answer = json.loads(await charger.recv())
                round_trips.append(loop.time() - started)
                assert answer[:2] == [3, f"h{number}"]
            await mirror.wait_received(1)
            state = service.mirror_states()[0]
            assert state.sent == 1 and state.queued == 3
            assert state.dropped == sent - 1 - 3
        rows = read_capture(service.options.capture_dir)
    finally:
        await primary.stop()
        await silent.stop()
    assert max(round_trips) < timeout(1.0)
    assert mirror.received == ['[2,"h0","Heartbeat",{}]']  # one CALL outstanding at a time
    gaps = [json.loads(r["detail"])["dropped"] for r in rows if r["event"] == "gap"]
    assert sum(gaps) == sent - 1  # 16 overflowed, 3 still queued when the charger left
    assert all(r["backend"] == "silent" for r in rows if r["event"] == "gap")


async def test_per_mirror_credentials_replace_the_chargers(recording, tmp_path):
    primary = PlainBackend(echo=True)
    mirror = PlainBackend()
    await primary.start()
    await mirror.start()
    try:
        spec = MirrorSpec.parse(f"shadow=ws://audit:s3cret@127.0.0.1:{mirror.port}/base")
        async with (
            recording(upstream=primary.url, mirrors=(spec,)) as service,
            connect(
                service.url + "/ocpp/CP-AUTH",
                subprotocols=["ocpp1.6"],
                additional_headers={"Authorization": "Basic Q1AtQVVUSDpjaGFyZ2Vy"},
            ) as charger,
        ):
            await charger.send('[2,"1","Heartbeat",{}]')
            copy = await mirror.wait_connection()
            await copy.wait_received(1)
            at_primary = await primary.wait_connection()
    finally:
        await primary.stop()
        await mirror.stop()
    assert copy.path == "/base/ocpp/CP-AUTH"
    assert copy.subprotocol == "ocpp1.6"
    assert copy.headers["Authorization"] == "Basic YXVkaXQ6czNjcmV0"  # audit:s3cret
    assert at_primary.headers["Authorization"] == "Basic Q1AtQVVUSDpjaGFyZ2Vy"


def test_mirror_spec_parsing():
    assert MirrorSpec.parse("ws://h:1/x") == MirrorSpec("mirror1", "ws://h:1/x")
    assert MirrorSpec.parse("new=wss://h/ocpp", 3) == MirrorSpec("new", "wss://h/ocpp")
    spec = MirrorSpec.parse("n=ws://u%40x:p%3Aw@h:9/b")
    assert spec.url == "ws://h:9/b" and spec.auth == ("u@x", "p:w")
    assert "p:w" not in repr(spec)
    for bad in ("http://h", "bad name=ws://h", "ws://"):
        with pytest.raises(ValueError):
            MirrorSpec.parse(bad)


def test_compare_refuses_a_capture_without_mirrors(tmp_path):
    from tests.capture_builder import CaptureBuilder

    builder = CaptureBuilder()
    builder.charger("CP1").connect().boot()
    builder.write(tmp_path / "plain")
    con = open_capture([tmp_path / "plain"])
    try:
        with pytest.raises(NothingToCompare):
            compare(con)
    finally:
        con.close()


def mirrored_capture(folder: Path, *, mirror_interval: int, answered: bool = True) -> Path:
    """A capture of one charger CALL (BootNotification) answered by the primary and by mirror
    ``new`` (interval ``mirror_interval``; no answer unless ``answered``), then a Heartbeat."""
    rows: list[dict[str, Any]] = []
    sink = type("Sink", (), {"append": staticmethod(rows.append)})()
    primary = ConnectionRecorder(sink, "CP1", connection_id="c1")
    mirror = ConnectionRecorder(sink, "CP1", connection_id="c1", backend="new")
    ts = 1_714_557_600_000_000
    for recorder in (primary, mirror):
        recorder.opened(path="/ocpp/CP1", subprotocols_offered=["ocpp1.6"], subprotocol="ocpp1.6",
                        remote_address=None, ts=ts)  # fmt: skip
    boot = '[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
    answer = '[3,"b1",{"status":"Accepted","currentTime":"%s","interval":%d}]'
    primary.message(Direction.CP_TO_CS, boot, ts=ts + 1000)
    primary.message(Direction.CS_TO_CP, answer % ("2024-05-01T10:00:00Z", 60), ts=ts + 3000)
    mirror.message(Direction.CP_TO_CS, boot, ts=ts + 2000)
    if answered:
        mirror.message(
            Direction.CS_TO_CP, answer % ("2024-05-01T10:00:09Z", mirror_interval), ts=ts + 9000
        )
    write_rows(sorted(rows, key=lambda r: r["ts"]), folder)
    return folder


@pytest.mark.parametrize(
    ("interval", "answered", "code", "words"),
    [
        (60, True, 0, "0 CALL(s) answered differently"),
        (300, True, 1, "$.interval: primary 60, new 300"),
        (60, False, 1, "BootNotification (b1) not answered"),
    ],
)
def test_compare_exit_status(tmp_path, interval, answered, code, words):
    capture = mirrored_capture(tmp_path / "c", mirror_interval=interval, answered=answered)
    result = CliRunner().invoke(main, ["compare", str(capture)])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "currentTime" not in result.output.split("ignored:")[1].split(")")[1]


def test_compare_json_and_junit_and_the_view(tmp_path):
    capture = mirrored_capture(tmp_path / "c", mirror_interval=300)
    result = CliRunner().invoke(main, ["compare", str(capture), "-f", "json"])
    document = json.loads(result.output)
    [new] = document["mirrors"]
    assert new["name"] == "new" and new["calls"] == 1 and new["differing_calls"] == 1
    [call] = new["differences"]
    assert call["differences"] == [
        {"kind": "field", "path": "$.interval", "primary": 60, "mirror": 300,
         "text": "$.interval: primary 60, mirror 300"}
    ]  # fmt: skip
    assert call["primary_latency_ms"] == 2.0 and call["mirror_latency_ms"] == 7.0
    junit = CliRunner().invoke(main, ["compare", str(capture), "-f", "junit"]).output
    assert 'failures="1"' in junit and "$.interval" in junit
    ignored = CliRunner().invoke(main, ["compare", str(capture), "--ignore", "$.interval"])
    assert ignored.exit_code == 0
    unknown = CliRunner().invoke(main, ["compare", str(capture), "--mirror", "old"])
    assert unknown.exit_code == 2 and "no mirror named old" in unknown.output
    con = open_capture([capture])
    try:
        row = con.execute(
            "SELECT backend, action, primary_status, mirror_status, mirror_lag_s, "
            "same_answer_text FROM mirror_answers"
        ).fetchone()
        primary_rows = con.execute("SELECT count(*) FROM frames").fetchone()
        every_row = con.execute("SELECT count(*) FROM all_frames").fetchone()
    finally:
        con.close()
    assert row == ("new", "BootNotification", "Accepted", "Accepted", 0.001, False)
    assert primary_rows == (3,) and every_row == (6,)


async def test_the_control_api_shows_each_mirrors_state(recording):
    from ocpp_audit.recorder.control import AsyncControlClient

    primary = CentralSystem()
    await primary.start()
    try:
        async with recording(
            upstream=primary.url,
            mirrors=(MirrorSpec("gone", f"ws://127.0.0.1:{closed_port()}"),),
            mirror_backoff=30.0,
            control_host="127.0.0.1",
            control_port=0,
            control_token="secret-token",
        ) as service:
            assert service.control is not None
            async with connect(service.url + "/ocpp/CP-STATE", subprotocols=["ocpp1.6"]) as charger:
                await charger.send('[2,"1","Heartbeat",{}]')
                async with asyncio.timeout(timeout(5)):
                    await charger.recv()
                    while service.mirror_states()[0].failed_connects == 0:
                        await asyncio.sleep(0.01)
                async with AsyncControlClient(service.control.url, "secret-token") as client:
                    status, document = await client.mirrors()
    finally:
        await primary.stop()
    assert status == 200
    [gone] = document["mirrors"]
    assert gone["name"] == "gone" and gone["connected"] == 0
    assert gone["queued"] == 1 and gone["sent"] == 0 and gone["failed_connects"] == 1
    assert "mirror unreachable" in gone["last_error"]


def test_replay_and_rules_read_the_primary_only(tmp_path):
    """A capture with mirrors replays and is judged as the charger lived it: one BootNotification,
    not one per backend."""
    from ocpp_audit.analyser.engine import analyse
    from ocpp_audit.replay.script import load_scripts

    capture = mirrored_capture(tmp_path / "c", mirror_interval=300)
    [script] = load_scripts([capture])
    assert [call.action for c in script.connections for call in c.calls] == ["BootNotification"]
    [call] = script.connections[0].calls
    assert call.answer is not None and call.answer.payload["interval"] == 60  # the primary's
    alone = tmp_path / "alone"
    rows = [r for r in read_capture(capture) if r["backend"] is None]
    for row in rows:
        row["ts"] = int(row.pop("ts"))
        row.pop("date", None)
    write_rows(rows, alone)
    with_mirrors, without = analyse([capture]), analyse([alone])
    assert with_mirrors.to_dict()["chargers"] == without.to_dict()["chargers"]
