"""The OCPP version of each connection: a column of every row, derived for captures written before it.

OCPP-J 1.6 / 2.0.1 / 2.1 section 3.1.2: the negotiated subprotocol (``ocpp1.6``, ``ocpp2.0.1``,
``ocpp2.1``) names the version the connection speaks.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.capture import schema
from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.capture.writer import write_rows


class _Rows(list):
    pass


def _record(subprotocol: str | None, charge_point_id: str) -> list[dict[str, object]]:
    rows = _Rows()
    recorder = ConnectionRecorder(rows, charge_point_id)
    recorder.opened(
        path=f"/ocpp/{charge_point_id}",
        subprotocols_offered=["ocpp2.0.1", "ocpp1.6"],
        subprotocol=subprotocol,
        remote_address="127.0.0.1:1",
    )
    recorder.message(Direction.CP_TO_CS, '[2,"1","Heartbeat",{}]')
    recorder.message(Direction.CS_TO_CP, '[3,"1",{"currentTime":"2024-05-01T10:00:00Z"}]')
    recorder.message(Direction.CP_TO_CS, '[6,"2","NotifyPeriodicEventStream",{}]')
    recorder.closed(1000, None, ClosedBy.CHARGER)
    return rows


def test_every_row_of_a_connection_carries_its_version() -> None:
    for subprotocol, version in [
        ("ocpp1.6", "1.6"),
        ("ocpp2.0.1", "2.0.1"),
        ("ocpp2.1", "2.1"),
        (None, None),
    ]:
        rows = _record(subprotocol, "CP")
        assert {row["ocpp_version"] for row in rows} == {version}, subprotocol


def test_send_is_well_formed_only_on_an_ocpp21_connection() -> None:
    on_21 = _record("ocpp2.1", "CP")[3]
    assert on_21["message_type"] == 6 and on_21.get("parse_error") is None
    on_201 = _record("ocpp2.0.1", "CP")[3]
    assert "SEND is an OCPP 2.1 message type" in on_201["parse_error"]


def test_callresulterror_is_well_formed_on_an_ocpp21_connection_only() -> None:
    """OCPP 2.1 part 4 section 4.2.3: [5, id, errorCode, errorDescription, errorDetails] answers a
    CALLRESULT that failed validation."""
    for subprotocol, well_formed in [("ocpp2.1", True), ("ocpp2.0.1", False), ("ocpp1.6", False)]:
        rows = _Rows()
        recorder = ConnectionRecorder(rows, "CP")
        recorder.opened(path="/CP", subprotocols_offered=None, subprotocol=subprotocol,
                        remote_address=None)  # fmt: skip
        recorder.message(Direction.CP_TO_CS, '[2,"9","Heartbeat",{}]')
        recorder.message(Direction.CS_TO_CP, '[3,"9",{"currentTime":"x"}]')
        recorder.message(Direction.CP_TO_CS, '[5,"9","FormatViolation","bad currentTime",{}]')
        row = rows[-1]
        if well_formed:
            assert row["message_type"] == 5 and row.get("parse_error") is None
        else:  # flagged as a frame of another version, not read as an answer
            assert "CALLRESULTERROR is an OCPP 2.1 message type" in row["parse_error"], subprotocol


def test_a_capture_written_before_the_column_gets_the_version_from_the_subprotocol(
    tmp_path: Path,
) -> None:
    rows = _record("ocpp2.0.1", "NEW") + _record("ocpp1.6", "OLD16") + _record(None, "OLDNONE")
    write_rows(rows, tmp_path / "new")
    # An old part: schema 1.0, without the ocpp_version column.
    old_rows = [r for r in rows if r["charge_point_id"] != "NEW"]
    fields = [pa.field(c.name, c.type) for c in schema.COLUMNS if c.name != "ocpp_version"]
    table = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k != "ocpp_version"} for r in old_rows],
        schema=pa.schema(fields, metadata={schema.META_SCHEMA_VERSION: b"1.0"}),
    )
    folder = tmp_path / "old" / "frames" / "date=2024-05-01"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-old.parquet")
    for paths in ([tmp_path / "old"], [tmp_path / "old", tmp_path / "new"]):
        con = open_capture(paths)
        versions = dict(
            con.execute(
                "SELECT charge_point_id, list(DISTINCT ocpp_version) FROM frames GROUP BY 1"
            ).fetchall()
        )
        con.close()
        assert versions["OLD16"] == ["1.6"]
        assert versions["OLDNONE"] == [None]
        if len(paths) == 2:
            assert versions["NEW"] == ["2.0.1"]
