"""One charger's frames may not break the fleet's analysis (issue 19).

Python's json accepts text that is not JSON others can read: ``NaN`` and ``Infinity``, and strings
with unpaired surrogate escapes (``"\\ud800"``), which DuckDB's JSON reader rejects for the whole
document. Before the fix, one such BootNotification recorded as a valid CALL made every ``analyse``
of the capture exit 2 with no report, for every charger; ``1e999999999`` made the schema check raise
inside DuckDB. Now the codec calls such frames malformed (a finding for that charger), the schema
check never raises, and everyone else is judged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from click.testing import CliRunner

from ocpp_audit.cli import main
from ocpp_audit.protocol.frames import Call, CallResult, Malformed, parse
from ocpp_audit.protocol.schema_validation import schema_error
from tests.engines import stop_and_read

LONE_HIGH = '[2,"b1","BootNotification",{"chargePointVendor":"\\ud800","chargePointModel":"X"}]'
LONE_LOW_INFO = (
    '[2,"s1","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
    '"status":"Available","info":"\\udc00"}]'
)
NAN_ANSWER = '[3,"c1",{"status":NaN}]'


@pytest.mark.parametrize(
    ("raw", "reason", "unique_id"),
    [
        (LONE_HIGH, "unpaired surrogate escape", "b1"),
        (LONE_LOW_INFO, "unpaired surrogate escape", "s1"),
        ('[4,"e1","GenericError","\\udc00",{}]', "unpaired surrogate escape", "e1"),
        (NAN_ANSWER, "NaN is not a JSON number", None),
        ('[3,"c2",{"value":Infinity}]', "Infinity is not a JSON number", None),
        ('[3,"c3",{"value":-Infinity}]', "-Infinity is not a JSON number", None),
    ],
)
def test_text_others_cannot_read_is_malformed(raw: str, reason: str, unique_id: str | None) -> None:
    frame = parse(raw)
    assert isinstance(frame, Malformed)
    assert reason in frame.reason
    assert frame.raw == raw  # kept exactly as received
    assert frame.unique_id == unique_id


def test_paired_surrogates_and_escaped_backslashes_stay_valid() -> None:
    pair = parse('[2,"1","DataTransfer",{"vendorId":"x","data":"\\ud83d\\ude00"}]')
    assert isinstance(pair, Call) and pair.payload["data"] == "\U0001f600"
    # "\\ud800" is a backslash followed by the letters u, d, 8, 0, 0: no surrogate at all.
    escaped = parse('[3,"1",{"data":"\\\\ud800"}]')
    assert isinstance(escaped, CallResult) and escaped.payload["data"] == "\\ud800"
    # A huge number is valid JSON (RFC 8259 section 6 lets readers limit the range): DuckDB reads
    # it, so the codec does too, and the schema check judges it.
    huge = parse('[3,"1",{"limit":1e999999999}]')
    assert isinstance(huge, CallResult)


def test_schema_actions_come_from_a_fixed_table() -> None:
    # A charger-controlled action never becomes a path: "../" finds no schema file.
    assert schema_error("../../../../x", 2, "{}") == "../../../../x is not an OCPP 1.6 action"
    assert schema_error("../schemas/Heartbeat", 2, "{}") is not None
    assert schema_error("Heartbeat", 2, "{}") is None


def test_schema_check_never_raises_on_a_number_it_cannot_judge() -> None:
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1}],
            },
        },
    }
    text = json.dumps(profile).replace('"limit": 1', '"limit": 1e999999999')
    reason = schema_error("SetChargingProfile", 2, text)
    assert reason is not None and reason.startswith("SetChargingProfile: payload cannot be checked")


async def test_one_hostile_charger_does_not_stop_the_fleets_analysis(
    recorder_plain, tmp_path: Path
) -> None:
    service, backend = recorder_plain
    good_boot = '[2,"g1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
    async with websockets.connect(f"{service.url}/GOOD", subprotocols=["ocpp1.6"]) as good:
        await good.send(good_boot)
        upstream = await backend.wait_connection(0)
        assert await upstream.wait_received(1) == [good_boot]
    async with websockets.connect(f"{service.url}/EVIL", subprotocols=["ocpp1.6"]) as evil:
        for frame in (LONE_HIGH, LONE_LOW_INFO):
            await evil.send(frame)
        upstream = await backend.wait_connection(1)
        # forwarded unchanged, byte for byte
        assert await upstream.wait_received(2) == [LONE_HIGH, LONE_LOW_INFO]
    rows = await stop_and_read(service)
    evil_rows = [r for r in rows if r["charge_point_id"] == "EVIL" and r["event"] == "message"]
    assert [r["raw"] for r in evil_rows] == [LONE_HIGH, LONE_LOW_INFO]
    assert all("unpaired surrogate" in r["parse_error"] for r in evil_rows)
    assert all(r["payload"] is None for r in evil_rows)

    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, ["analyse", str(service.options.capture_dir), "-f", "json", "-o", str(report)]
    )
    assert result.exit_code == 1, result.output  # a charger failed; not 2 (bad input)
    document = json.loads(report.read_text())
    chargers = {charger["charge_point_id"]: charger for charger in document["chargers"]}
    assert set(chargers) == {"GOOD", "EVIL"}
    evil_malformed = [
        finding
        for check in chargers["EVIL"]["checks"]
        if check["rule"] == "protocol-malformed"
        for finding in check["findings"]
    ]
    failed = [finding for finding in evil_malformed if finding["verdict"] == "fail"]
    assert failed and all("unpaired surrogate" in finding["detail"] for finding in failed)
    assert {unique_id for f in failed for unique_id in _evidence_ids(f)} >= {"b1", "s1"}
    good_boot = next(f for f in chargers["GOOD"]["functions"] if f["function"] == 1)
    # judged on its own frames (it sent no serial number, so the boot criterion fails for it)
    assert good_boot["verdict"] == "FAIL"
    assert good_boot["findings"][0]["detail"] == (
        "BootNotification without chargePointSerialNumber, firmwareVersion"
    )
    assert {e["unique_id"] for f in good_boot["findings"] for e in f["evidence"]} == {"g1"}


def _evidence_ids(finding: dict) -> set[str]:
    return {evidence["unique_id"] for evidence in finding["evidence"] if evidence.get("unique_id")}


def test_an_uploaded_parquet_file_is_never_read_as_a_capture_part(tmp_path: Path) -> None:
    """Issue 19: FTP uploads land in <capture>/diagnostics/<id>/; `analyse captures/` (a folder
    of captures) read every *.parquet below it, so an uploaded part gave a forged charger
    verdicts. Only parts under frames/ folders are read."""
    import shutil

    from ocpp_audit.capture.parts import find_parts

    captures = tmp_path / "captures"
    sample = Path(__file__).parent.parent / "captures" / "lab-good"
    shutil.copytree(sample, captures / "site-a")
    real = sorted(p.resolve() for p in (captures / "site-a" / "frames").rglob("*.parquet"))
    forged = captures / "site-a" / "diagnostics" / "FORGED" / "part-forged.parquet"
    forged.parent.mkdir(parents=True)
    shutil.copy(real[0], forged)  # a real part's bytes: it would pass every check
    assert find_parts([captures]) == real
    assert find_parts([captures / "site-a"]) == real
    result = CliRunner().invoke(main, ["analyse", str(captures), "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    chargers = {c["charge_point_id"] for c in json.loads(result.stdout)["chargers"]}
    assert chargers == {"LAB-GOOD-01"}
    # a plain folder of parts (no frames/ below it) is still read, but not its uploads
    loose = tmp_path / "loose"
    (loose / "diagnostics").mkdir(parents=True)
    shutil.copy(real[0], loose / "part-1.parquet")
    shutil.copy(real[0], loose / "diagnostics" / "part-2.parquet")
    assert find_parts([loose]) == [(loose / "part-1.parquet").resolve()]
