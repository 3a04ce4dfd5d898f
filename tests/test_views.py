"""The analyser's views on a small built capture, including the awkward cases: an unanswered CALL,
a duplicate unique id, an answer to an unknown id, "2e+01" values, an offline gap with late delivery.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ocpp_audit.analyser import views
from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.capture.schema import Direction
from tests.capture_builder import CaptureBuilder


def build(tmp_path: Path) -> Path:
    capture = CaptureBuilder()
    cp = capture.charger("CP1").connect()
    cp.boot(iccid=None)  # at t=0, answered 0.05 s later
    cp.status(0, "Available")
    cp.status(1, "Available")
    cp.cs("GetConfiguration", {}, {"configurationKey": [
        {"key": "HeartbeatInterval", "value": "60", "readonly": False},
        {"key": "NumberOfConnectors", "value": "1", "readonly": True},
    ]})  # fmt: skip
    cp.cs("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "10"}, "NotSupported")
    cp.cs("Reset", {"type": "Soft"}, None)  # never answered
    # The same unique id twice in flight, then one answer (to the second).
    cp.call(Direction.CP_TO_CS, "Heartbeat", {}, unique_id="dup")
    cp.call(Direction.CP_TO_CS, "Heartbeat", {}, unique_id="dup")
    cp.wait(0.5).result(Direction.CS_TO_CP, "dup", {"currentTime": cp.stamp()})
    cp.result(Direction.CS_TO_CP, "nobody-asked", {})  # answer to an unknown id
    cp.status(1, "Preparing")
    transaction_id = cp.start_transaction(1, "TAG1", meter_start=165333)
    cp.status(1, "Charging")
    cp.wait(10).meter_values(
        transaction_id,
        meter_value=[
            {
                "timestamp": cp.stamp(),
                "sampledValue": [
                    {"value": "2e+01", "measurand": "Voltage", "phase": "L1", "unit": "V"},
                    {"value": "165333.00"},  # measurand and context left to their defaults
                    {"value": "n/a", "measurand": "Current.Import", "context": "Sample.Clock"},
                ],
            }
        ],
    )
    cp.wait(5).disconnect(1006)  # at 10.55 + 5
    cp.wait(100).connect()  # offline for 100 s
    cp.stop_transaction(
        transaction_id,
        meter_stop=170000,
        reason=None,
        seconds_ago=50,  # stopped while offline, delivered now
        transaction_data=[cp.sample(context="Transaction.End", seconds_ago=50)],
    )
    cp.cp("FirmwareStatusNotification", {"status": "Downloading"}, {})
    cp.cp("DiagnosticsStatusNotification", {"status": "Uploaded"}, {})
    cp.upload("diag.zip", 4096)
    cp.send(Direction.CP_TO_CS, "not json")
    capture.write(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    connection = open_capture([build(tmp_path_factory.mktemp("views"))])
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, object]]:
    relation = con.sql(sql)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


@pytest.mark.parametrize("view", views.VIEWS, ids=lambda view: view.name)
def test_columns_are_documented_in_order(con: duckdb.DuckDBPyConnection, view: views.View) -> None:
    assert con.sql(f"SELECT * FROM {view.name} LIMIT 0").columns == [
        name for name, _ in view.columns
    ]
    assert all(meaning.strip() for _, meaning in view.columns)
    assert view.description.strip()


def test_messages_are_the_message_events(con: duckdb.DuckDBPyConnection) -> None:
    counts = rows(
        con,
        "SELECT (SELECT count(*) FROM messages) AS messages,"
        " (SELECT count(*) FROM frames WHERE event = 'message') AS frames",
    )[0]
    assert counts["messages"] == counts["frames"] > 20


def test_calls_pair_answers_and_keep_the_awkward_ones(con: duckdb.DuckDBPyConnection) -> None:
    boot = rows(con, "SELECT * FROM calls WHERE action = 'BootNotification'")[0]
    assert boot["answered"] and boot["status"] == "Accepted"
    assert boot["latency_s"] == pytest.approx(0.05)
    assert boot["direction"] == "cp_to_cs" and boot["answer_type"] == "CALLRESULT"

    reset = rows(con, "SELECT * FROM calls WHERE action = 'Reset'")[0]
    assert reset["direction"] == "cs_to_cp"
    assert not reset["answered"] and reset["answer_ts"] is None and reset["latency_s"] is None

    change = rows(con, "SELECT * FROM calls WHERE action = 'ChangeConfiguration'")[0]
    assert change["answer_type"] == "CALLERROR" and change["error_code"] == "NotSupported"
    assert change["status"] is None

    duplicates = rows(con, "SELECT * FROM calls WHERE unique_id = 'dup' ORDER BY call_seq")
    assert [(d["answered"], d["duplicate_id"]) for d in duplicates] == [
        (False, False),
        (True, True),
    ]
    assert duplicates[1]["latency_s"] == pytest.approx(0.5)

    orphan = rows(con, "SELECT * FROM calls WHERE orphan_answer")
    assert len(orphan) == 1
    assert orphan[0]["unique_id"] == "nobody-asked" and orphan[0]["call_ts"] is None
    assert orphan[0]["direction"] == "cp_to_cs"  # the CALL it would answer went charger to backend


def test_connections_give_intervals_and_offline_gaps(con: duckdb.DuckDBPyConnection) -> None:
    connections = rows(
        con,
        "SELECT connection_id, closed, close_code, closed_by, offline_s, messages,"
        " epoch(closed_at) - epoch(opened_at) AS lasted_s FROM connections ORDER BY opened_at",
    )
    first, second = connections
    assert first["closed"] and first["close_code"] == 1006 and first["closed_by"] == "charger"
    assert first["offline_s"] is None
    assert second["offline_s"] == pytest.approx(100)
    assert not second["closed"]  # the capture ends while it is up
    assert first["messages"] > 20


def test_boots(con: duckdb.DuckDBPyConnection) -> None:
    boot = rows(con, "SELECT * FROM boots")[0]
    assert (boot["vendor"], boot["model"], boot["serial_number"]) == (
        "ACME",
        "Wallbox 22",
        "SN-0001",
    )
    assert boot["iccid"] is None and boot["firmware_version"] == "1.0.0"
    assert boot["status"] == "Accepted" and boot["interval_s"] == 60


def test_status_notifications_know_the_previous_status(con: duckdb.DuckDBPyConnection) -> None:
    statuses = rows(
        con,
        "SELECT connector_id, status, previous_status, error_code FROM status_notifications"
        " WHERE connector_id = 1 ORDER BY ts",
    )
    assert [(s["previous_status"], s["status"]) for s in statuses] == [
        (None, "Available"),
        ("Available", "Preparing"),
        ("Preparing", "Charging"),
    ]
    assert {s["error_code"] for s in statuses} == {"NoError"}


def test_meter_samples_parse_values_and_fill_in_defaults(con: duckdb.DuckDBPyConnection) -> None:
    samples = rows(
        con,
        "SELECT source, measurand, phase, unit, context, location, format, value_text, value,"
        " transaction_id, connector_id FROM meter_samples ORDER BY source, value_text",
    )
    periodic = {s["value_text"]: s for s in samples if s["source"] == "MeterValues"}
    assert periodic["2e+01"]["value"] == 20.0
    assert periodic["2e+01"]["measurand"] == "Voltage" and periodic["2e+01"]["phase"] == "L1"
    assert periodic["165333.00"]["value"] == 165333.0
    # OCPP 1.6 section 7.31: measurand defaults to Energy.Active.Import.Register, context to
    # Sample.Periodic, location to Outlet, format to Raw.
    assert periodic["165333.00"]["measurand"] == "Energy.Active.Import.Register"
    assert periodic["165333.00"]["context"] == "Sample.Periodic"
    assert (periodic["165333.00"]["location"], periodic["165333.00"]["format"]) == ("Outlet", "Raw")
    assert periodic["n/a"]["value"] is None and periodic["n/a"]["context"] == "Sample.Clock"
    assert {s["connector_id"] for s in periodic.values()} == {1}
    from_stop = [s for s in samples if s["source"] == "StopTransaction"]
    assert len(from_stop) == 4 and {s["context"] for s in from_stop} == {"Transaction.End"}
    assert {s["transaction_id"] for s in samples} == {1001}


def test_transactions_link_start_stop_and_mark_late_delivery(
    con: duckdb.DuckDBPyConnection,
) -> None:
    (transaction,) = rows(con, "SELECT * FROM transactions")
    assert transaction["transaction_id"] == 1001 and transaction["connector_id"] == 1
    assert (transaction["meter_start"], transaction["meter_stop"]) == (165333, 170000)
    assert transaction["id_tag"] == "TAG1" and transaction["id_tag_status"] == "Accepted"
    assert transaction["reason"] is None and transaction["stop_reason"] == "Local"
    assert transaction["start_connection_id"] != transaction["stop_connection_id"]
    assert transaction["transaction_data"] == 1
    assert not transaction["start_late"]
    assert transaction["stop_late"]  # its timestamp lies inside the offline gap


def test_a_stop_stamped_just_before_the_reconnect_is_not_late(tmp_path: Path) -> None:
    """The charger's clock cuts to whole milliseconds or seconds: a StopTransaction sent right after
    the reconnect can carry a timestamp a little before the recorder saw the connection open. It
    was not queued; one stamped seconds before the reconnect was (found with the import test)."""
    capture = CaptureBuilder()
    cp = capture.charger("CP1").connect()
    first = cp.start_transaction()
    second = cp.start_transaction(connector_id=2)
    cp.wait(5).disconnect().wait(10).connect()
    cp.wait(0.2).stop_transaction(first, seconds_ago=0.5)  # 0.3 s before the open, by its clock
    cp.stop_transaction(second, seconds_ago=3.0)  # 2.8 s before the open: from the queue
    capture.write(tmp_path)
    query = "SELECT transaction_id, stop_late FROM transactions ORDER BY transaction_id"
    default = open_capture([tmp_path])
    exact = open_capture([tmp_path], view_params={"clock_tolerance_s": 0})
    try:
        assert default.execute(query).fetchall() == [(first, False), (second, True)]
        assert exact.execute(query).fetchall() == [(first, True), (second, True)]
    finally:
        default.close()
        exact.close()


def test_late_after_s_is_a_view_parameter(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = capture.charger("CP1").connect()
    cp.start_transaction(seconds_ago=30)  # no offline gap, but 30 s old on delivery
    capture.write(tmp_path)
    lenient = open_capture([tmp_path])
    strict = open_capture([tmp_path], view_params={"late_after_s": 10, "unrelated": "x"})
    try:
        assert lenient.execute("SELECT start_late FROM transactions").fetchone() == (False,)
        assert strict.execute("SELECT start_late FROM transactions").fetchone() == (True,)
    finally:
        lenient.close()
        strict.close()
    with pytest.raises(ValueError, match="late_after_s"):
        views.view_params({"late_after_s": "soon"})


def test_configuration(con: duckdb.DuckDBPyConnection) -> None:
    configuration = rows(
        con,
        "SELECT source, key, value, readonly, status, error_code FROM configuration ORDER BY key",
    )
    assert configuration == [
        {
            "source": "GetConfiguration",
            "key": "HeartbeatInterval",
            "value": "60",
            "readonly": False,
            "status": None,
            "error_code": None,
        },
        {
            "source": "ChangeConfiguration",
            "key": "MeterValueSampleInterval",
            "value": "10",
            "readonly": None,
            "status": None,
            "error_code": "NotSupported",
        },
        {
            "source": "GetConfiguration",
            "key": "NumberOfConnectors",
            "value": "1",
            "readonly": True,
            "status": None,
            "error_code": None,
        },
    ]


def test_firmware_and_diagnostics_status(con: duckdb.DuckDBPyConnection) -> None:
    assert con.sql("SELECT status FROM firmware_status").fetchall() == [("Downloading",)]
    assert con.sql(
        "SELECT event, status, file_name, size FROM diagnostics_status ORDER BY event"
    ).fetchall() == [("status", "Uploaded", None, None), ("upload", None, "diag.zip", 4096)]


def test_views_are_plain_sql_that_a_stored_database_keeps(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    build(capture)
    database = tmp_path / "capture.duckdb"
    open_capture([capture], database=database).close()
    with duckdb.connect(str(database)) as stored:  # another program, no ocpp-audit functions
        assert stored.execute("SELECT count(*) FROM calls WHERE orphan_answer").fetchone() == (1,)
        assert stored.execute("SELECT count(*) FROM meter_samples").fetchone() == (7,)


def test_view_files_are_the_views_in_dependency_order() -> None:
    # views/<name>.sql, one per view; each names itself and uses every parameter its header declares.
    assert tuple(view.name for view in views.VIEWS) == views.VIEW_NAMES
    for view in views.VIEWS:
        for name, _default in view.params:
            assert f"${name}" in view.sql, (view.name, name)
    assert views.DEFAULT_PARAMS == {"late_after_s": 60.0, "clock_tolerance_s": 1.0}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 1", "does not start with"),
        ('/*+++\nname = "x"\ndescription = "d"\n+++*/\nSELECT 1', "lacks its \\[columns\\]"),
        ('/*+++\nname = "x"\nextra = 1\n[columns]\na = "b"\n+++*/\nSELECT 1', "unknown header"),
        ("/*+++\nname = \n+++*/\nSELECT 1", "not valid TOML"),
    ],
)
def test_malformed_view_file_is_named(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        views.parse_view(text, "views/x.sql")
    assert str(raised.value).startswith("views/x.sql: ")
