"""Payload schema verdicts judged as a part is sealed (``schema_error``, schema 1.4; issue 16).

The writer judges each payload against its OCPP JSON schema when it seals a part, and the
protocol-schema rule reads those verdicts instead of validating every payload again. The verdicts
must be the ones the rule would give itself: each capture here is also analysed with the column
taken out (as a part written before 1.4 is) and with the verdicts marked as another checker's, and
the report must not change. A verdict planted in a part shows that the rule reads the column, and
that it does not when the part names another checker.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ocpp_audit.analyser.capture import find_parts
from ocpp_audit.analyser.engine import analyse
from ocpp_audit.analyser.render import render
from ocpp_audit.capture import schema
from ocpp_audit.capture.schema import Direction
from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
from ocpp_audit.protocol import schema_validation
from tests.capture_builder import CaptureBuilder

CP, CS = Direction.CP_TO_CS, Direction.CS_TO_CP
RULE = ["protocol-schema"]


def rewrite(capture: Path, copy: Path, change) -> Path:
    """A copy of the capture with each part's table passed through ``change``."""
    for part in find_parts([capture]):
        table = change(pq.read_table(part, partitioning=None))
        target = copy / part.relative_to(capture.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
    return copy


def without_verdicts(table: pa.Table) -> pa.Table:
    """As a recorder before schema 1.4 wrote the part."""
    metadata = dict(table.schema.metadata or {})
    metadata[schema.META_SCHEMA_VERSION] = b"1.3"
    metadata.pop(schema.META_SCHEMA_CHECK, None)
    return table.drop_columns(["schema_error"]).replace_schema_metadata(metadata)


def other_checker(table: pa.Table) -> pa.Table:
    metadata = dict(table.schema.metadata or {})
    metadata[schema.META_SCHEMA_CHECK] = b"check 0; ocpp 1.0.0"
    return table.replace_schema_metadata(metadata)


def stamp(ts_us: int) -> str:
    """A capture ts as the report's evidence writes it."""
    instant = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_us)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def report_json(capture: Path, rules: list[str] | None = RULE) -> dict:
    document = json.loads(render(analyse([capture], select=rules or ()), "json"))
    document.pop("elapsed_s", None)
    document.pop("captures", None)
    return document


def findings(document: dict, charger: str) -> list[dict]:
    (entry,) = [c for c in document["chargers"] if c["charge_point_id"] == charger]
    (result,) = [r for r in entry["checks"] if r["rule"] == "protocol-schema"]
    return result["findings"]


def invalid_payloads(capture: CaptureBuilder) -> dict[str, str]:
    """Chargers sending invalid payloads in 1.6, 2.0.1 and 2.1; the ts of the ones that fail."""
    cp = capture.charger("CP-BAD").connect()
    cp.boot()
    # Two payloads of one shape (digits in a string where an integer belongs), each with its own
    # reason: the rows of a failing shape are judged one by one.
    cp.cp("StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "Available"})
    cp.wait(1)
    cp.cp("StatusNotification", {"connectorId": "2", "errorCode": "NoError", "status": "Available"})
    cp.wait(1).cp("MeterValues", {"connectorId": 1, "meterValue": []})  # minItems 1
    cp.wait(1).cs("Reset", {"type": "Warm"}, {"status": "Accepted"})  # enum Hard / Soft
    cp.wait(1).cp("Heartbeat", {}, {"currentTime": 5})  # an answer: currentTime is a string
    cp.wait(1).send(CP, '[2,"u1","NoSuchAction",{}]')
    # A payload over the seal's size bound: judged at analysis time.
    cp.wait(1).cp("DataTransfer", {"vendorId": "V", "data": "x" * 70_000, "extra": 1})
    cp.wait(1).heartbeats(3, 10)
    v201 = capture.charger("CS-201").connect(version="2.0.1")
    v201.boot201()
    v201.wait(1).cp("Heartbeat", {"unexpected": True}, {"currentTime": "2024-05-01T10:00:00Z"})
    v21 = capture.charger("CS-21").connect(version="2.1")
    v21.send(CP, '[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"x"}]')
    good = capture.charger("CP-GOOD").connect()
    good.boot()
    good.wait(1).heartbeats(3, 10)


def test_the_writer_judges_each_payload_as_the_rule_does(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    invalid_payloads(capture)
    capture.write(tmp_path / "c")
    table = pq.read_table(find_parts([tmp_path / "c"]), partitioning=None)
    rows = table.to_pylist()
    for row in rows:
        judged = (
            row["event"] == "message"
            and row["message_type"] in (2, 3, 6)
            and row["parse_error"] is None
            and row["action"] is not None
            and row["payload"] is not None
            and len(row["payload"].encode()) <= schema_validation.SEAL_MAX_PAYLOAD_BYTES
        )
        expected = schema_validation.schema_error(
            row["action"], row["message_type"], row["payload"], row["ocpp_version"]
        )
        assert row["schema_error"] == ((expected or "") if judged else None), row["raw"]
    reasons = [row["schema_error"] for row in rows if row["schema_error"]]
    assert "StatusNotification connectorId: '1' is not of type 'integer'" in reasons
    assert "StatusNotification connectorId: '2' is not of type 'integer'" in reasons
    assert "NoSuchAction is not an OCPP 1.6 action" in reasons
    big = [row for row in rows if row["action"] == "DataTransfer" and row["message_type"] == 2]
    assert [row["schema_error"] for row in big] == [None]  # left to the analysis


def test_sealed_verdicts_give_the_report_of_judging_every_payload_again(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    invalid_payloads(capture)
    sealed = tmp_path / "sealed"
    capture.write(sealed)
    before = rewrite(sealed, tmp_path / "before-1.4", without_verdicts)
    stale = rewrite(sealed, tmp_path / "other-checker", other_checker)
    report = report_json(sealed)
    assert report == report_json(before) == report_json(stale)
    # The report itself: each failing payload once, with its own reason and its frame as evidence.
    bad = findings(report, "CP-BAD")
    details = [f["detail"] for f in bad if f["verdict"] == "fail"]
    assert (
        "CALL StatusNotification: StatusNotification connectorId: '1' is not of type 'integer'"
        in details
    )
    assert (
        "CALL StatusNotification: StatusNotification connectorId: '2' is not of type 'integer'"
        in details
    )
    assert any(d.startswith("CALL Reset: Reset type: 'Warm' is not one of") for d in details)
    assert any(d.startswith("CALLRESULT Heartbeat: HeartbeatResponse currentTime") for d in details)
    assert any(d.startswith("CALL DataTransfer: DataTransfer payload: Additional") for d in details)
    assert "CALL NoSuchAction: NoSuchAction is not an OCPP 1.6 action" in details
    # Each failure's evidence is the very frame it names: its unique id and arrival time, and the
    # message type and action of the detail.
    frames = {
        (row["unique_id"], stamp(row["ts"])): row
        for row in capture.rows
        if row["event"] == "message" and row.get("unique_id")
    }
    failures = [f for f in bad if f["verdict"] == "fail"]
    assert len(failures) == 7
    for finding in failures:
        (evidence,) = finding["evidence"]
        frame = frames[(evidence["unique_id"], evidence["ts"])]
        kind, action = finding["detail"].split(":")[0].split(" ")
        assert (frame["message_type"], frame["action"]) == (
            {"CALL": 2, "CALLRESULT": 3}[kind],
            action,
        )
        assert (
            schema_validation.schema_error(
                frame["action"], frame["message_type"], frame["payload"], frame["ocpp_version"]
            )
            == finding["detail"].split(": ", 1)[1]
        )
    assert [f["verdict"] for f in findings(report, "CP-GOOD")] == ["pass"]
    assert any("HeartbeatRequest" in f["detail"] for f in findings(report, "CS-201"))
    assert any("NotifyPeriodicEventStream" in f["detail"] for f in findings(report, "CS-21"))


def plant(reason: str):
    """Put ``reason`` as the verdict of every Heartbeat CALL of the part."""

    def change(table: pa.Table) -> pa.Table:
        heartbeat = pc.fill_null(
            pc.and_(pc.equal(table["action"], "Heartbeat"), pc.equal(table["message_type"], 2)),
            False,
        )
        planted = pc.if_else(heartbeat, reason, table["schema_error"])
        index = table.schema.get_field_index("schema_error")
        return table.set_column(index, table.schema.field(index), planted)

    return change


def test_the_rule_reads_the_sealed_verdicts_of_its_own_checker_only(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    good = capture.charger("CP-GOOD").connect()
    good.boot()
    good.wait(1).heartbeats(2, 10)
    capture.write(tmp_path / "c")
    planted = rewrite(tmp_path / "c", tmp_path / "planted", plant("planted reason"))
    details = [f["detail"] for f in findings(report_json(planted), "CP-GOOD")]
    assert details.count("CALL Heartbeat: planted reason") == 2
    # The same verdicts named as another checker's: judged again, and the Heartbeats are valid.
    stale = rewrite(planted, tmp_path / "stale", other_checker)
    assert [f["verdict"] for f in findings(report_json(stale), "CP-GOOD")] == ["pass"]


def test_a_synthetic_fleet_is_judged_alike_with_and_without_sealed_verdicts(
    tmp_path: Path,
) -> None:
    generate_fleet_capture(tmp_path / "fleet", chargers=6, days=1)
    before = rewrite(tmp_path / "fleet", tmp_path / "fleet-before-1.4", without_verdicts)
    assert report_json(tmp_path / "fleet", None) == report_json(before, None)


def test_shapes_judged_before_are_not_validated_again(tmp_path: Path, monkeypatch) -> None:
    capture = CaptureBuilder()
    invalid_payloads(capture)
    rows = pa.Table.from_pylist(
        [{**schema.empty_row(), **row} for row in capture.sorted_rows()],
        schema=schema.arrow_schema(),
    )
    first = schema_validation.payload_verdicts(rows)
    calls: list[str] = []
    judge = schema_validation.schema_error

    def counting(action, message_type, payload, version=None):
        calls.append(payload)
        return judge(action, message_type, payload, version)

    monkeypatch.setattr(schema_validation, "schema_error", counting)
    again = schema_validation.payload_verdicts(rows)
    assert again.to_pylist() == first.to_pylist()
    # Only the rows of failing shapes, each for its own reason; no valid shape is validated again.
    failing = [v for v in first.to_pylist() if v]
    assert len(calls) == len(failing)
