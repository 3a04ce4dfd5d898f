"""The recorder's pairing of CALLs and answers (``answers_seq``, ``reused_id``; schema 1.3, issue 16).

The ``calls`` view pairs the rows of a capture written since schema 1.3 with one equi-join on the
pairing the recorder wrote, and pairs the rows of older parts in arrival order with a window. Both
must say the same thing: here every capture is also read with the pairing columns taken out (as a
part written before 1.3 is), and the ``calls`` view and the report must not change (one
difference is intended: an answer whose CALL a ``--since`` left out). The
conversations are the awkward ones (ids reused while in flight, second answers, orphans, CALLERRORs
after a CALLRESULT, malformed frames, the same id both ways, OCPP 2.1 SEND and CALLRESULTERROR), the
rule cases, a synthetic fleet, and random conversations from hypothesis.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpp_audit.analyser.capture import find_parts, open_capture
from ocpp_audit.analyser.engine import analyse
from ocpp_audit.analyser.render import render
from ocpp_audit.capture import schema
from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import Direction
from ocpp_audit.capture.writer import write_rows
from ocpp_audit.importers import import_files
from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
from tests.capture_builder import CaptureBuilder

ROOT = Path(__file__).resolve().parent.parent
PAIRING = ("answers_seq", "reused_id")
CP, CS = Direction.CP_TO_CS, Direction.CS_TO_CP


def without_recorded_pairing(capture: Path, copy: Path) -> Path:
    """The capture as a recorder before schema 1.3 wrote it: no pairing columns, version 1.2."""
    for part in find_parts([capture]):
        table = pq.read_table(part, partitioning=None)
        table = table.drop_columns([c for c in PAIRING if c in table.column_names])
        metadata = dict(table.schema.metadata or {})
        metadata[schema.META_SCHEMA_VERSION] = b"1.2"
        target = copy / part.relative_to(capture.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(metadata), target)
    return copy


def calls_rows(capture: Path) -> list[tuple]:
    con = open_capture([capture])
    try:
        return con.execute("SELECT * FROM calls ORDER BY ALL").fetchall()
    finally:
        con.close()


def report_json(capture: Path) -> dict:
    document = json.loads(render(analyse([capture]), "json"))
    document.pop("elapsed_s", None)
    document.pop("captures", None)
    return document


def assert_same_both_ways(capture: Path, tmp_path: Path, *, report: bool = True) -> list[tuple]:
    old = without_recorded_pairing(capture, tmp_path / f"{capture.name}-before-1.3")
    recorded = calls_rows(capture)
    assert recorded == calls_rows(old)
    if report:
        assert report_json(capture) == report_json(old)
    return recorded


def awkward_conversations(capture: CaptureBuilder) -> None:
    cp = capture.charger("CP-AWKWARD").connect()
    cp.boot()
    # An id reused while its CALL is in flight, then one answer (it answers the second CALL).
    cp.send(CP, '[2,"r1","Heartbeat",{}]').wait(1).send(CP, '[2,"r1","Heartbeat",{}]')
    cp.wait(1).send(CS, '[3,"r1",{"currentTime":"2024-05-01T10:00:02Z"}]')
    # A second answer to an answered CALL, and an answer to an id nobody sent.
    cp.wait(1).send(CS, '[3,"r1",{"currentTime":"2024-05-01T10:00:03Z"}]')
    cp.wait(1).send(CS, '[3,"nobody",{}]')
    # A backend CALL answered with a CALLRESULT, then a CALLERROR about that CALLRESULT.
    cp.wait(1).send(CS, '[2,"b1","Reset",{"type":"Soft"}]')
    cp.wait(1).send(CP, '[3,"b1",{"status":"Accepted"}]')
    cp.wait(1).send(CS, '[4,"b1","FormationViolation","bad answer",{}]')
    # The same id both ways at once, answered in the other order.
    cp.wait(1).send(CP, '[2,"x","StatusNotification",{"connectorId":1}]')
    cp.send(CS, '[2,"x","GetConfiguration",{}]')
    cp.wait(1).send(CP, '[3,"x",{"configurationKey":[]}]').send(CS, '[3,"x",{}]')
    # Malformed: a CALL whose payload is not an object but whose id reads, and its CALLERROR; an
    # answer with a readable id and a broken payload; a frame with no readable id.
    cp.wait(1).send(CP, '[2,"m1","Heartbeat","not an object"]')
    cp.wait(1).send(CS, '[4,"m1","FormationViolation","payload",{}]')
    cp.wait(1).send(CS, '[2,"m2","ClearCache",{}]').wait(1).send(CP, '[3,"m2"]')
    cp.wait(1).send(CP, "[2,")
    # Two CALLs in flight one way; the first is answered late; one is never answered.
    cp.wait(1).send(CP, '[2,"o1","Heartbeat",{}]').send(CP, '[2,"o2","Heartbeat",{}]')
    cp.wait(1).send(CS, '[3,"o2",{"currentTime":"2024-05-01T10:00:20Z"}]')
    cp.wait(1).send(CS, '[3,"o1",{"currentTime":"2024-05-01T10:00:21Z"}]')
    cp.wait(1).send(CP, '[2,"lost","Heartbeat",{}]')
    cp.wait(1).disconnect()
    # A new connection reusing every id of the old one.
    again = capture.charger("CP-AWKWARD").connect()
    again.send(CS, '[3,"lost",{}]').send(CP, '[2,"r1","Heartbeat",{}]')
    again.wait(1).send(CS, '[3,"r1",{"currentTime":"2024-05-01T10:01:00Z"}]')
    # OCPP 2.1: a SEND expects nothing; a CALLRESULTERROR answers a CALLRESULT, not a CALL.
    v21 = capture.charger("CS-21").connect(version="2.1")
    v21.send(
        CP, '[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"x","data":[]}]'
    )
    v21.send(CS, '[2,"g1","GetBaseReport",{"requestId":1,"reportBase":"FullInventory"}]')
    v21.wait(1).send(CP, '[3,"g1",{"status":"Accepted"}]')
    v21.wait(1).send(CS, '[5,"g1","FormationViolation","bad",{}]')
    v21.wait(1).send(CS, '[5,"never","FormationViolation","bad",{}]')


def test_the_recorder_writes_each_answer_its_calls_seq_and_each_reused_id(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    awkward_conversations(capture)
    rows = [r for r in capture.rows if r["event"] == "message"]
    by_seq = {(r["connection_id"], r["seq"]): r for r in rows}
    answers = [r for r in rows if r.get("message_type") in (3, 4) and r.get("unique_id")]
    assert all(r["answers_seq"] == -1 or by_seq[(r["connection_id"], r["answers_seq"])]
               ["unique_id"] == r["unique_id"] for r in answers)  # fmt: skip
    first, second = [r for r in rows if r.get("unique_id") == "r1" and r["message_type"] == 2][:2]
    assert (first["reused_id"], second["reused_id"]) == (False, True)
    r1_answers = [r["answers_seq"] for r in answers if r["unique_id"] == "r1"][:2]
    assert r1_answers == [second["seq"], -1]  # the second CALL's; the second answer: none
    # Neither a SEND, a CALLRESULTERROR nor an unreadable frame takes part in the pairing.
    assert all(
        r.get("answers_seq") is None and r.get("reused_id") is None
        for r in rows
        if r.get("message_type") in (5, 6, None)
    )


def test_awkward_conversations_pair_the_same_with_and_without_the_recorded_pairing(
    tmp_path: Path,
) -> None:
    capture = CaptureBuilder()
    awkward_conversations(capture)
    capture.write(tmp_path / "awkward")
    calls = assert_same_both_ways(tmp_path / "awkward", tmp_path)
    con = open_capture([tmp_path / "awkward"])
    try:
        counts = con.execute(
            "SELECT count(*) FILTER (duplicate_id), count(*) FILTER (orphan_answer),"
            " count(*) FILTER (answers_result), count(*) FILTER (NOT answered)"
            " FROM calls"
        ).fetchone()
    finally:
        con.close()
    # r1 reused; orphans: r1's second answer, "nobody", b1's CALLERROR, "lost" on the new
    # connection; b1's CALLERROR replies to a CALLRESULT; unanswered: the first r1 and "lost".
    assert counts == (1, 4, 1, 2)
    assert len(calls) > 15


def test_an_answer_whose_call_the_slice_left_out_is_no_unknown_answer(tmp_path: Path) -> None:
    """A slice (``--since``, the guided run's judging) can begin between a CALL and its answer.
    The recorder saw that CALL in flight, so its answer is no answer to an unknown id; an answer
    that answered nothing in flight still is, inside the slice as outside it."""
    capture = CaptureBuilder()
    cp = capture.charger("CP-SLICED").connect()
    cp.boot()
    cp.wait(10).send(CP, '[2,"hb-before","Heartbeat",{}]')
    since = cp.wait(0.5).now
    cp.wait(0.5).send(CS, '[3,"hb-before",{"currentTime":"2024-05-01T10:00:11Z"}]')
    cp.wait(1).send(CS, '[3,"nobody",{}]')
    cp.wait(1).heartbeat()
    capture.write(tmp_path / "sliced")

    def judged(capture_dir: Path) -> tuple[list[tuple], dict[str, list[str]]]:
        con = open_capture([capture_dir], since=since)
        try:
            orphans = con.execute(
                "SELECT unique_id, answer_ts FROM calls WHERE orphan_answer ORDER BY ALL"
            ).fetchall()
        finally:
            con.close()
        [charger] = analyse([capture_dir], since=since).chargers
        [unknown] = [r for r in charger.results if r.rule.id == "protocol-unknown-answer"]
        failing = [f.detail or "" for f in unknown.findings if f.verdict == "fail"]
        return orphans, {unknown.verdict: failing}

    orphans, unknown = judged(tmp_path / "sliced")
    assert [unique_id for unique_id, _ in orphans] == ["nobody"]
    [details] = unknown.values()
    assert list(unknown) == ["FAIL"] and len(details) == 1 and "nobody" in details[0], unknown
    # Without the recorder's pairing, arrival order cannot tell the two apart: both are orphans.
    old = without_recorded_pairing(tmp_path / "sliced", tmp_path / "sliced-before-1.3")
    orphans, _ = judged(old)
    assert [unique_id for unique_id, _ in orphans] == ["hb-before", "nobody"]


def test_rule_cases_pair_the_same_with_and_without_the_recorded_pairing(tmp_path: Path) -> None:
    cases = sorted((ROOT / "rules" / "cases").glob("*/*.jsonl"))
    assert len(cases) >= 40
    capture = tmp_path / "cases"
    import_files(cases, "jsonl", capture)
    assert_same_both_ways(capture, tmp_path)


def test_a_synthetic_fleet_pairs_the_same_with_and_without_the_recorded_pairing(
    tmp_path: Path,
) -> None:
    generate_fleet_capture(tmp_path / "fleet", chargers=6, days=1)
    calls = assert_same_both_ways(tmp_path / "fleet", tmp_path)
    assert len(calls) > 6 * 500


_frames = st.lists(
    st.tuples(
        st.sampled_from([CP, CS]),
        st.sampled_from([2, 3, 4]),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=30,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(conversation=_frames)
def test_any_conversation_pairs_the_same_with_and_without_the_recorded_pairing(
    tmp_path_factory: pytest.TempPathFactory, conversation: list[tuple[Direction, int, str]]
) -> None:
    rows: list[dict[str, object]] = []
    recorder = ConnectionRecorder(rows, "CP-ANY")  # a list is a row sink
    recorder.opened(path="/ocpp/CP-ANY", subprotocols_offered=["ocpp1.6"], subprotocol="ocpp1.6",
                    remote_address="127.0.0.1:1", ts=1_714_557_600_000_000)  # fmt: skip
    for number, (direction, message_type, unique_id) in enumerate(conversation, start=1):
        text = {
            2: f'[2,"{unique_id}","Heartbeat",{{}}]',
            3: f'[3,"{unique_id}",{{}}]',
            4: f'[4,"{unique_id}","InternalError","",{{}}]',
        }[message_type]
        recorder.message(direction, text, ts=1_714_557_600_000_000 + number * 1000)
    folder = tmp_path_factory.mktemp("any")
    write_rows(rows, folder / "capture")
    assert_same_both_ways(folder / "capture", folder, report=False)
