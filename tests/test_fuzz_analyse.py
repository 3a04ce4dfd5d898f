"""Random frames and random captures through the recorder and the full ``analyse``.

Frames are random text, binary, and JSON arrays shaped like OCPP-J (message type, unique id, real or
made-up actions, payloads whose keys are OCPP field names holding values of any JSON type). They go
through ``ConnectionRecorder`` (the engines' code path) and ``write_rows`` into a real capture, which
the ``analyse`` command judges with every built-in rule and view. Whatever comes in, the analysis
must not crash, every frame fed must be a row of ``frames``, every rule must give each charger a
verdict, and the exit status is 0 or 1 (never 2: a capture the recorder wrote is never bad input).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpp_audit.analyser.rules import load_rules
from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import ClosedBy, Direction, Event
from ocpp_audit.capture.writer import write_rows
from ocpp_audit.cli import main

START_US = 1_714_521_600_000_000  # 2024-05-01T00:00:00Z

ACTIONS = (
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ChangeAvailability",
    "ChangeConfiguration",
    "GetConfiguration",
    "Reset",
    "UnlockConnector",
    "ClearCache",
    "TriggerMessage",
    "UpdateFirmware",
    "FirmwareStatusNotification",
    "GetDiagnostics",
    "DiagnosticsStatusNotification",
    "SendLocalList",
    "GetLocalListVersion",
    "DataTransfer",
    "ReserveNow",
)
KEYS = (
    "connectorId",
    "idTag",
    "idTagInfo",
    "status",
    "errorCode",
    "transactionId",
    "meterStart",
    "meterStop",
    "timestamp",
    "meterValue",
    "sampledValue",
    "value",
    "measurand",
    "unit",
    "interval",
    "currentTime",
    "chargePointVendor",
    "chargePointModel",
    "chargePointSerialNumber",
    "firmwareVersion",
    "iccid",
    "key",
    "configurationKey",
    "type",
    "reason",
    "transactionData",
    "location",
    "retrieveDate",
    "listVersion",
    "requestedMessage",
)
STATUSES = ("Accepted", "Rejected", "Available", "Charging", "Faulted", "Pending", "Invalid")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(STATUSES),
    st.sampled_from(("2024-05-01T00:00:00Z", "2024-13-45T99:00:00Z", "yesterday", "")),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6) | json_values
unique_ids = st.sampled_from(("1", "2", "3")) | st.text(max_size=8) | st.integers()
ocpp_arrays = st.one_of(
    st.tuples(st.just(2), unique_ids, st.sampled_from(ACTIONS) | st.text(max_size=10), payloads),
    st.tuples(st.sampled_from((3, 4)), unique_ids, payloads),
    st.tuples(st.just(4), unique_ids, st.text(max_size=12), st.text(max_size=12), payloads),
    st.lists(json_values, max_size=6),
).map(lambda value: json.dumps(list(value)))
frame_data = st.one_of(
    ocpp_arrays,
    ocpp_arrays.map(lambda text: text[: len(text) // 2]),  # cut short
    st.text(max_size=40),
    st.binary(max_size=40),
)
# An event of one connection: a frame either way, or the connection closing and opening again.
events = st.one_of(
    st.tuples(st.sampled_from(tuple(Direction)), frame_data),
    st.tuples(st.just("reconnect"), st.sampled_from((1000, 1001, 1006, 1011, 4000))),
    st.tuples(st.just("ping"), st.sampled_from(tuple(Direction))),
)
chargers = st.dictionaries(
    st.sampled_from(("CP1", "CP-2", "charger 3", "ÜBER/4", "'; drop table frames; --")),
    st.lists(st.tuples(events, st.integers(0, 120_000_000)), max_size=25),
    min_size=1,
    max_size=3,
)


def record(capture: Path, feed: dict[str, list]) -> int:
    """Record ``feed`` as the engines would; returns the number of frames fed."""
    rows: list[dict[str, object]] = []
    fed = 0
    ts = START_US
    for charge_point_id, steps in feed.items():
        recorder = ConnectionRecorder(rows, charge_point_id)
        opened = {"path": f"/{charge_point_id}", "subprotocols_offered": ["ocpp1.6"]}
        recorder.opened(**opened, subprotocol="ocpp1.6", remote_address="127.0.0.1", ts=ts)
        for (kind, value), step_us in steps:
            ts += step_us
            if kind == "reconnect":
                recorder.closed(value, None, ClosedBy.CHARGER, ts=ts)
                recorder = ConnectionRecorder(rows, charge_point_id)
                recorder.opened(**opened, subprotocol="ocpp1.6", remote_address="::1", ts=ts)
            elif kind == "ping":
                recorder.ping(value)
                rows[-1]["ts"] = ts
            else:
                recorder.message(kind, value, ts=ts)
                fed += 1
        recorder.closed(1000, "done", ClosedBy.BACKEND, ts=ts + 1)
    write_rows(rows, capture)
    return fed


RULES = load_rules()


@pytest.mark.timeout(300)  # ten whole analyses: beyond the default on a loaded machine
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(feed=chargers)
def test_random_frames_analyse_without_crash(feed: dict[str, list]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "capture"
        fed = record(capture, feed)

        result = CliRunner().invoke(main, ["analyse", str(capture), "-f", "json"])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert result.exit_code in (0, 1), result.output
        document = json.loads(result.stdout)
        assert sorted(c["charge_point_id"] for c in document["chargers"]) == sorted(feed)
        for charger in document["chargers"]:
            judged = [r["rule"] for r in charger["functions"] + charger["checks"]]
            # every rule of the charger's OCPP version (each rule names the versions it judges)
            wanted = [rule.id for rule in RULES if rule.judges(charger["ocpp_version"])]
            assert sorted(judged) == sorted(wanted), charger["charge_point_id"]
            for result_ in charger["functions"] + charger["checks"]:
                assert result_["verdict"] in ("PASS", "FAIL", "NOT_OBSERVED")

        parts = sorted(str(p) for p in capture.rglob("*.parquet"))
        with duckdb.connect() as con:
            stored = con.execute(
                f"SELECT count(*) FROM read_parquet({parts!r}) WHERE event = '{Event.MESSAGE}'"
            ).fetchone()
        assert stored is not None and stored[0] == fed


@settings(max_examples=300, deadline=None)
@given(data=frame_data, direction=st.sampled_from(tuple(Direction)))
def test_every_random_frame_is_one_row(data: str | bytes, direction: Direction) -> None:
    rows: list[dict[str, object]] = []
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.message(direction, data, ts=START_US)
    assert len(rows) == 1
    row = rows[0]
    assert row["event"] == "message" and row["direction"] == direction.value
    assert (row.get("raw") if isinstance(data, str) else row.get("raw_binary")) == data
