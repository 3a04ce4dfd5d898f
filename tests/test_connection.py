"""ConnectionRecorder: the rows an engine writes for one charger connection."""

from __future__ import annotations

import base64
import json

import pytest

from ocpp_audit.capture.connection import (
    MAX_PENDING_CALLS,
    ConnectionRecorder,
    basic_auth_user,
    charge_point_id_from_path,
)
from ocpp_audit.capture.schema import COLUMN_NAMES, ClosedBy, Direction, Event


class Rows(list):
    def append(self, row: dict[str, object]) -> None:  # the RowSink protocol
        super().append(row)


@pytest.fixture
def rows() -> Rows:
    return Rows()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ocpp/CP001", "CP001"),
        ("/ocpp/CP001/", "CP001"),
        ("/CP%20with%2Fslash?token=1", "CP with/slash"),
        ("/a/b/c/%C3%A9t%C3%A9", "été"),
        ("/", ""),
    ],
)
def test_charge_point_id_from_path(path: str, expected: str) -> None:
    assert charge_point_id_from_path(path) == expected


def test_basic_auth_user_never_returns_the_password() -> None:
    header = "Basic " + base64.b64encode(b"CP001:s3cret:with:colons").decode()
    assert basic_auth_user(header) == "CP001"
    assert basic_auth_user("Bearer abc") is None
    assert basic_auth_user("Basic !!!") is None
    assert basic_auth_user(None) is None


def test_rows_use_only_schema_columns_and_count_seq(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.opened(
        path="/ocpp/CP1",
        subprotocols_offered=["ocpp1.6", "ocpp2.0.1"],
        subprotocol="ocpp1.6",
        remote_address="127.0.0.1:5000",
        authorization="Basic " + base64.b64encode(b"CP1:pw").decode(),
    )
    recorder.message(Direction.CP_TO_CS, '[2,"1","Heartbeat",{}]')
    recorder.closed(1000, "bye", ClosedBy.CHARGER)
    assert [row["seq"] for row in rows] == [0, 1, 2]
    assert [row["event"] for row in rows] == ["open", "message", "close"]
    for row in rows:
        assert set(row) <= set(COLUMN_NAMES)
        assert row["connection_id"] == recorder.connection_id
    assert rows[0]["subprotocols_offered"] == "ocpp1.6,ocpp2.0.1"
    assert rows[0]["auth_user"] == "CP1"
    assert "pw" not in json.dumps(rows)
    assert (rows[2]["close_code"], rows[2]["closed_by"]) == (1000, "charger")


def test_answers_carry_the_action_of_the_call_they_answer(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.message(Direction.CP_TO_CS, '[2,"a","BootNotification",{}]')
    recorder.message(Direction.CS_TO_CP, '[2,"a","Reset",{"type":"Soft"}]')  # same id, other way
    recorder.message(Direction.CP_TO_CS, '[3,"a",{"status":"Accepted"}]')  # answers Reset
    recorder.message(Direction.CS_TO_CP, '[4,"a","InternalError","",{}]')  # answers the boot
    recorder.message(Direction.CS_TO_CP, '[3,"zzz",{}]')  # answers nothing we saw
    actions = [(row["direction"], row["message_type"], row["action"]) for row in rows]
    assert actions == [
        ("cp_to_cs", 2, "BootNotification"),
        ("cs_to_cp", 2, "Reset"),
        ("cp_to_cs", 3, "Reset"),
        ("cs_to_cp", 4, "BootNotification"),
        ("cs_to_cp", 3, None),
    ]
    assert rows[3]["error_code"] == "InternalError"


def test_malformed_frames_are_rows_with_their_reason(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.message(Direction.CS_TO_CP, '[2,"r","Reset",{"type":"Hard"}]')
    recorder.message(Direction.CP_TO_CS, '[3,"r",{"status":}]')
    recorder.message(Direction.CP_TO_CS, b"\x00\x01binary")
    bad_json, binary = rows[1], rows[2]
    assert bad_json["raw"] == '[3,"r",{"status":}]'
    assert bad_json["parse_error"].startswith("invalid JSON")
    assert bad_json["message_type"] is None  # the array itself could not be read
    assert binary["raw_binary"] == b"\x00\x01binary"
    assert "raw" not in binary
    assert binary["parse_error"].startswith("binary frame")


def test_malformed_answer_still_pairs_with_its_call(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.message(Direction.CS_TO_CP, '[2,"r","Reset",{"type":"Hard"}]')
    recorder.message(Direction.CP_TO_CS, '[3,"r",["not an object"]]')
    assert (rows[1]["action"], rows[1]["message_type"]) == ("Reset", 3)
    assert rows[1]["parse_error"] == "CALLRESULT payload is not a JSON object"


def test_answer_to_an_injected_call_is_marked_injected(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.message(Direction.CS_TO_CP, '[2,"oa-1","ClearCache",{}]', injected=True)
    recorder.message(Direction.CP_TO_CS, '[3,"oa-1",{"status":"Accepted"}]')
    assert [row["injected"] for row in rows] == [True, True]


def test_pending_calls_are_bounded(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    for n in range(MAX_PENDING_CALLS + 50):
        recorder.message(Direction.CP_TO_CS, f'[2,"{n}","Heartbeat",{{}}]')
    assert not recorder.is_pending(Direction.CP_TO_CS, "0")
    assert recorder.is_pending(Direction.CP_TO_CS, str(MAX_PENDING_CALLS + 49))


def test_refused_and_other_events(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.refused(path="/ocpp/CP1", http_status=401, reason="backend refused")
    recorder.event(Event.UPLOAD, {"file_name": "diag.zip", "size": 10})
    assert rows[0]["event"] == "refused"
    assert rows[0]["http_status"] == 401
    assert json.loads(rows[1]["detail"]) == {"file_name": "diag.zip", "size": 10}


def test_an_ocpp21_connection_records_send_and_callresulterror(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.opened(
        path="/ocpp/CP1",
        subprotocols_offered=["ocpp2.1"],
        subprotocol="ocpp2.1",
        remote_address=None,
    )
    recorder.message(Direction.CS_TO_CP, '[2,"g","GetVariables",{"getVariableData":[]}]')
    recorder.message(Direction.CP_TO_CS, '[3,"g",{"bogus":1}]')
    recorder.message(Direction.CS_TO_CP, '[5,"g","FormatViolation","no getVariableResult",{}]')
    recorder.message(Direction.CP_TO_CS, '[6,"s","NotifyPeriodicEventStream",{"id":1}]')
    rejected, sent = rows[3], rows[4]
    assert (rejected["message_type"], rejected["error_code"]) == (5, "FormatViolation")
    assert rejected["payload"] == "{}" and "parse_error" not in rejected
    assert (sent["message_type"], sent["action"], sent["payload"]) == (
        6,
        "NotifyPeriodicEventStream",
        '{"id":1}',
    )
    assert not recorder.tracker.pending()  # a SEND expects no answer


def test_on_an_ocpp16_connection_types_5_and_6_stay_malformed(rows: Rows) -> None:
    recorder = ConnectionRecorder(rows, "CP1")
    recorder.opened(
        path="/ocpp/CP1",
        subprotocols_offered=["ocpp1.6"],
        subprotocol="ocpp1.6",
        remote_address=None,
    )
    recorder.message(Direction.CP_TO_CS, '[6,"s","NotifyPeriodicEventStream",{"id":1}]')
    assert rows[1]["message_type"] is None
    assert "SEND is an OCPP 2.1 message type" in rows[1]["parse_error"]
