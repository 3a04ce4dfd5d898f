"""Replay: a capture made by the simulator through a standalone recorder, replayed against real
built-in central systems over real WebSockets; the replay's own capture read back with DuckDB."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ocpp_audit.capture.schema import Direction
from ocpp_audit.cli import main
from ocpp_audit.lab.central_system import CallErrorReceived, CentralSystem, CentralSystemConfig
from ocpp_audit.lab.simulator import SimulatedCharger
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from ocpp_audit.replay.compare import compare_answers, parse_ignore
from ocpp_audit.replay.replayer import ReplayOptions, replay, target_url
from ocpp_audit.replay.report import render
from ocpp_audit.replay.script import Answer, load_scripts
from tests.capture_builder import CaptureBuilder
from tests.conftest import timeout

CP = "CP-REPLAY"
TAG = "TAG-1"
CONFIG = {"heartbeat_interval": 300}
# How long the recorded charger stays idle before unplugging: the window in which a replay at
# speed 1 is connected and the target can send it CALLs.
IDLE_S = 1.5


async def _record(capture_dir: Path) -> None:
    options = RecordOptions(capture_dir=capture_dir, standalone=True)
    async with RecorderService(options, CentralSystem(CentralSystemConfig(**CONFIG))) as service:
        cs = service.central_system
        assert cs is not None
        charger = SimulatedCharger(CP, service.url, connectors=1)
        await charger.start()
        try:
            await cs.call(CP, "GetConfiguration", {"key": ["HeartbeatInterval"]}, timeout(5))
            await charger.plug_in(1)
            await charger.swipe(TAG, 1)  # Authorize, StartTransaction, MeterValues (Begin)
            await asyncio.sleep(IDLE_S)
            await charger.swipe(TAG, 1)  # StopTransaction with idTag
            await charger.unplug(1)
        finally:
            await charger.stop()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    capture_dir = tmp_path_factory.mktemp("recorded")
    asyncio.run(asyncio.wait_for(_record(capture_dir), timeout(30)))
    return capture_dir


async def _central_system(**config: object) -> CentralSystem:
    cs = CentralSystem(CentralSystemConfig(**{**CONFIG, **config}))  # type: ignore[arg-type]
    await cs.start()
    return cs


def _actions(capture_dir: Path) -> list[str]:
    (script,) = load_scripts([capture_dir])
    return [call.action for connection in script.connections for call in connection.calls]


# --- reading the capture ----------------------------------------------------------------------


def test_the_script_holds_the_chargers_calls_with_their_recorded_answers(recording):
    (script,) = load_scripts([recording])
    assert script.charge_point_id == CP
    (connection,) = script.connections
    assert connection.path == f"/{CP}" and connection.subprotocols == ["ocpp1.6"]
    actions = [call.action for call in connection.calls]
    assert actions[0] == "BootNotification"
    for action in ("Authorize", "StartTransaction", "MeterValues", "StopTransaction"):
        assert action in actions
    assert all(
        call.answer is not None and call.answer.message_type == 3 for call in connection.calls
    )
    assert script.answers["GetConfiguration"][0].payload["configurationKey"]


# --- replays against the built-in central system ----------------------------------------------


async def test_replay_against_the_same_backend_reproduces_the_capture(recording, tmp_path):
    cs = await _central_system()
    try:
        options = ReplayOptions(
            cs.url, speed=None, capture_dir=tmp_path / "replay", auth=(CP, "secret")
        )
        report = await asyncio.wait_for(replay(load_scripts([recording]), options), timeout(20))
    finally:
        await cs.stop()
    assert report.differences == 0, render(report, "table")
    opens = duckdb.sql(
        "SELECT path, subprotocol, auth_user FROM read_parquet("
        f"'{tmp_path / 'replay'}/**/*.parquet', hive_partitioning = true) WHERE event = 'open'"
    ).fetchall()
    assert opens == [(f"/{CP}", "ocpp1.6", CP)]  # same path and subprotocol, Basic auth user
    (charger,) = report.chargers
    assert [c.action for c in charger.calls] == _actions(recording)
    assert all(c.replayed is not None and c.replayed_latency_ms is not None for c in charger.calls)
    # the replay is a capture of its own, with the same CALLs in the same order
    assert _actions(tmp_path / "replay") == _actions(recording)
    assert "no differences" in render(report, "table")
    assert json.loads(render(report, "json"))["differences"] == 0


async def test_a_differently_configured_backend_shows_exactly_those_differences(recording):
    cs = await _central_system(boot_status="Pending", id_tags={TAG: "Blocked"})
    try:
        options = ReplayOptions(cs.url, speed=None)
        report = await asyncio.wait_for(replay(load_scripts([recording]), options), timeout(20))
    finally:
        await cs.stop()
    found = {
        (call.action, d.kind, d.path, d.recorded, d.replayed)
        for call in report.chargers[0].calls
        for d in call.differences
    }
    assert found == {
        ("BootNotification", "field", "$.status", "Accepted", "Pending"),
        ("Authorize", "field", "$.idTagInfo.status", "Accepted", "Blocked"),
        ("StartTransaction", "field", "$.idTagInfo.status", "Accepted", "Blocked"),
        ("StopTransaction", "field", "$.idTagInfo.status", "Accepted", "Blocked"),
    }
    assert report.differences == 4
    junit = render(report, "junit")
    assert junit.count("<failure") == 4 and "$.status: recorded 'Accepted'" in junit


async def test_the_targets_transaction_id_is_carried_forward(recording):
    cs = await _central_system()
    try:
        scripts = load_scripts([recording])
        first = await asyncio.wait_for(replay(scripts, ReplayOptions(cs.url, speed=None)), 20)
        # The same target again: it now assigns the next id, not the recorded one.
        second = await asyncio.wait_for(replay(scripts, ReplayOptions(cs.url, speed=None)), 20)
        transactions = cs.state(CP).transactions
    finally:
        await cs.stop()
    assert first.differences == 0 and second.differences == 0
    start = next(c for c in second.chargers[0].calls if c.action == "StartTransaction")
    recorded_id = start.recorded.payload["transactionId"]
    target_id = start.replayed.payload["transactionId"]
    assert target_id != recorded_id
    later = [c for c in second.chargers[0].calls if c.action in ("MeterValues", "StopTransaction")]
    assert {c.action for c in later} == {"MeterValues", "StopTransaction"}
    assert all(c.transaction_id == (recorded_id, target_id) for c in later)
    # the target saw its own transaction metered and stopped
    assert transactions[target_id].meter_values >= 1
    assert not transactions[target_id].active


async def test_target_calls_are_answered_from_the_recording(recording):
    cs = await _central_system()
    try:
        options = ReplayOptions(cs.url, speed=1.0)
        task = asyncio.create_task(replay(load_scripts([recording]), options))
        await cs.wait_connected(CP, timeout(5))
        answer = await cs.call(CP, "GetConfiguration", {"key": ["HeartbeatInterval"]}, timeout(5))
        with pytest.raises(CallErrorReceived) as error:
            await cs.call(CP, "Reset", {"type": "Soft"}, timeout(5))
        report = await asyncio.wait_for(task, timeout(20))
    finally:
        await cs.stop()
    (recorded,) = load_scripts([recording])[0].answers["GetConfiguration"]
    assert answer == recorded.payload
    assert error.value.error_code == "NotImplemented"
    listed = [(c.action, c.answered_with) for c in report.chargers[0].target_calls]
    assert listed == [("GetConfiguration", "recorded CALLRESULT"), ("Reset", "NotImplemented")]
    assert report.differences == 0


async def test_the_speed_factor_scales_the_recorded_spacing(tmp_path):
    capture = CaptureBuilder()
    charger = capture.charger("CP-SPEED")
    charger.connect(path="/ocpp/CP-SPEED").boot()
    charger.heartbeats(3, every=2.0)  # CALLs 2, 4 and 6 s after the boot
    capture.write(tmp_path / "recorded")
    cs = await _central_system(heartbeat_interval=60)
    try:
        spans = {}
        for speed in (4.0, None):
            replay_dir = tmp_path / f"replay-{speed}"
            options = ReplayOptions(cs.url, speed=speed, capture_dir=replay_dir)
            scripts = load_scripts([tmp_path / "recorded"])
            started_us = time.time_ns() // 1000
            report = await asyncio.wait_for(replay(scripts, options), timeout(20))
            assert report.differences == 0, render(report, "table")
            (script,) = load_scripts([replay_dir])
            last_sent_us = script.connections[0].calls[-1].ts_us
            spans[speed] = (last_sent_us - started_us) / 1e6
    finally:
        await cs.stop()
    # The last heartbeat was recorded 6 s after the first CALL: due 1.5 s into a replay at 4x,
    # never earlier (a late start or a slow answer may delay it, within a generous bound).
    assert 1.5 * 0.99 <= spans[4.0] <= 1.5 + timeout(1.5)
    assert spans[None] < 1.5


async def test_malformed_frames_reach_the_target_as_they_were(tmp_path):
    capture = CaptureBuilder()
    charger = capture.charger("CP-BAD")
    charger.connect().boot()
    bad_call = '[2,"bad-1","Heartbeat",[]]'  # a CALL whose payload is not an object
    charger.wait(0.1).send(Direction.CP_TO_CS, bad_call)
    charger.wait(0.05).error(Direction.CS_TO_CP, "bad-1", "FormationViolation")
    garbage = '[2,"bad-2","Heartbeat",{},]'  # trailing comma: no unique id can be read
    charger.wait(0.1).send(Direction.CP_TO_CS, garbage)
    charger.wait(0.1).heartbeat()
    capture.write(tmp_path / "recorded")
    cs = await _central_system(heartbeat_interval=60)
    try:
        options = ReplayOptions(cs.url, speed=None, capture_dir=tmp_path / "replay")
        scripts = load_scripts([tmp_path / "recorded"])
        report = await asyncio.wait_for(replay(scripts, options), timeout(20))
    finally:
        await cs.stop()
    assert report.differences == 0, render(report, "table")
    calls = report.chargers[0].calls
    assert [c.action for c in calls] == [
        "BootNotification",
        "Heartbeat",
        "(malformed)",
        "Heartbeat",
    ]
    assert calls[1].replayed is not None and calls[1].replayed.error_code == "FormationViolation"
    (script,) = load_scripts([tmp_path / "replay"])
    sent = [c.malformed_raw for c in script.connections[0].calls]
    assert sent == [None, bad_call, garbage, None]


async def test_a_target_that_goes_away_leaves_missing_answers_without_waiting_them_out(recording):
    cs = await _central_system()
    stopped = False
    try:
        options = ReplayOptions(cs.url, speed=1.0, answer_timeout=timeout(30))
        task = asyncio.create_task(replay(load_scripts([recording]), options))
        await cs.wait_connected(CP, timeout(5))
        await asyncio.sleep(0.3)  # the recorded charger is idle for IDLE_S after its first swipe
        await cs.stop()
        stopped = True
        report = await asyncio.wait_for(task, timeout(10))
    finally:
        if not stopped:
            await cs.stop()
    (charger,) = report.chargers
    missing = [c.action for c in charger.calls if c.differences]
    assert "StopTransaction" in missing and "BootNotification" not in missing
    assert all(d.kind == "missing-answer" for c in charger.calls for d in c.differences)
    assert charger.problems and "closed by the target" in charger.problems[0]


async def test_a_refused_connection_is_a_difference(recording):
    cs = await _central_system()
    try:
        # port 1 on loopback: nothing listens there, the handshake cannot even start
        options = ReplayOptions("ws://127.0.0.1:1", speed=None, open_timeout=2)
        report = await asyncio.wait_for(replay(load_scripts([recording]), options), timeout(10))
    finally:
        await cs.stop()
    (charger,) = report.chargers
    assert len(charger.problems) == 1
    assert all(d.kind == "missing-answer" for c in charger.calls for d in c.differences)


# --- pieces -------------------------------------------------------------------------------------


def test_ignore_paths():
    assert parse_ignore("$.status").matches(["status"])
    assert not parse_ignore("$.status").matches(["idTagInfo", "status"])
    assert parse_ignore("$..status").matches(["idTagInfo", "status"])
    assert parse_ignore("$.idTagInfo.expiryDate").matches(["idTagInfo", "expiryDate"])
    assert parse_ignore("$.configurationKey[*].value").matches(["configurationKey", "3", "value"])
    assert not parse_ignore("$.configurationKey[0].value").matches(
        ["configurationKey", "1", "value"]
    )
    for bad in ("status", "$", "$.a b", "$.[x]"):
        with pytest.raises(ValueError):
            parse_ignore(bad)


def test_compare_answers_ignores_time_and_transaction_id_by_default():
    ignore = ReplayOptions("ws://x").ignore_paths()
    recorded = Answer(3, {"currentTime": "a", "transactionId": 1, "idTagInfo": {"status": "X"}})
    replayed = Answer(3, {"currentTime": "b", "transactionId": 2, "idTagInfo": {"status": "X"}})
    assert compare_answers(recorded, replayed, ignore) == []
    extra = Answer(3, {**replayed.payload, "idTagInfo": {"status": "X", "expiryDate": "z"}})
    (difference,) = compare_answers(recorded, extra, ignore)
    assert difference.path == "$.idTagInfo.expiryDate" and difference.to_dict()["recorded"] is None
    more = [*ignore, parse_ignore("$.idTagInfo.expiryDate")]
    assert compare_answers(recorded, extra, more) == []
    error = Answer(4, {}, "InternalError", "boom")
    assert [d.kind for d in compare_answers(recorded, error, ignore)] == ["callerror"]
    assert [d.kind for d in compare_answers(recorded, None, ignore)] == ["missing-answer"]


def test_target_url_keeps_the_recorded_path_or_appends_the_id():
    assert target_url("ws://h:9", "CP1", "/ocpp/CP1?x=1") == "ws://h:9/ocpp/CP1?x=1"
    assert target_url("ws://h:9/csms/", "CP 1", "/ocpp/CP1") == "ws://h:9/csms/CP%201"
    assert target_url("wss://h:9", "CP1", None) == "wss://h:9/CP1"
    with pytest.raises(ValueError):
        target_url("http://h:9", "CP1", None)


# --- the command line ---------------------------------------------------------------------------


async def test_cli_exit_status_0_then_1_on_differences(recording, tmp_path):
    runner = CliRunner()
    for config, expected in (({}, 0), ({"boot_status": "Rejected"}, 1)):
        cs = await _central_system(**config)
        try:
            args = ["replay", str(recording), "--target", cs.url, "--speed", "max", "--format"]
            args += ["json", "--capture", str(tmp_path / f"replay-{expected}")]
            result = await asyncio.wait_for(
                asyncio.to_thread(runner.invoke, main, args), timeout(20)
            )
        finally:
            await cs.stop()
        assert result.exit_code == expected, result.output
        assert json.loads(result.stdout)["differences"] == expected


def test_cli_exit_status_2_on_bad_input(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["replay", str(tmp_path / "none"), "--target", "ws://h:1"])
    assert missing.exit_code == 2
    for bad in (["--speed", "0"], ["--ignore", "status"], ["--auth", "nopass"]):
        result = runner.invoke(main, ["replay", str(tmp_path), "--target", "ws://h:1", *bad])
        assert result.exit_code == 2, result.output


async def test_a_v201_replay_keeps_the_chargers_transaction_ids_and_seq_nos(tmp_path):
    """OCPP 2.0.1 E01: the transactionId is the charger's, so the replay sends every
    TransactionEvent as recorded (no id of the target's to carry forward), seqNo included."""
    from tests.test_rules_v201 import charge, end, online

    builder = CaptureBuilder()
    cp = builder.charger("CP-201")
    online(cp)
    seq_no = charge(cp, "TX-OWN-1", 1, "TAG-1", samples=2, every=1)
    end(cp, "TX-OWN-1", 1, seq_no, "StopAuthorized", "Local")
    builder.write(tmp_path / "recorded")
    cs = await _central_system()
    try:
        report = await replay(
            load_scripts([tmp_path / "recorded"]),
            ReplayOptions(target=cs.url, speed=None, capture_dir=tmp_path / "replayed"),
        )
    finally:
        await cs.stop()
    (outcome,) = report.chargers
    events = [c for c in outcome.calls if c.action == "TransactionEvent"]
    assert len(events) == 5 and all(c.replayed is not None for c in events)
    assert all(c.transaction_id is None for c in outcome.calls)  # nothing substituted
    sent = duckdb.sql(
        "SELECT json_extract_string(payload, '$.transactionInfo.transactionId'),"
        " json_extract(payload, '$.seqNo')::INT FROM read_parquet($glob) WHERE event = 'message'"
        " AND action = 'TransactionEvent' AND direction = 'cp_to_cs' ORDER BY seq",
        params={"glob": str(tmp_path / "replayed" / "frames" / "**" / "*.parquet")},
    ).fetchall()
    assert sent == [("TX-OWN-1", n) for n in range(5)]
    assert cs.state("CP-201").transactions_201["TX-OWN-1"]["events"] == 5
