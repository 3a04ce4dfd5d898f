"""The OCPP-J codec: exact round trips, malformed frames with reasons, and a parser that never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_audit.protocol.constants import OcppVersion
from ocpp_audit.protocol.frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Malformed,
    MessageType,
    Send,
    parse,
)


def assert_round_trip(raw: str) -> None:
    """A well-formed frame parses, and serializes back to exactly the same text."""
    frame = parse(raw)
    assert not isinstance(frame, Malformed), frame
    assert frame.serialize() == raw


@pytest.mark.parametrize(
    "raw",
    [
        '[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"M1"}]',
        '[2, "a-b-c", "Heartbeat", {}]',
        '[3,"19223201",{"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]',
        '[4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}]',
        # numbers and key case exactly as sent: no reformatting, no snake_case conversion
        '[2,"1","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"t","sampledValue":'
        '[{"value":"2e+01"},{"value":"165333.00"}]}],"x":1.50,"y":2E3}]',
        '\n [ 3 ,\t"1" , { "idTagInfo" : { "status" : "Accepted" } } ] \n',
        '[2,"1","DataTransfer",{"vendorId":"é ü 中","data":"\\u00e9"}]',
    ],
)
def test_round_trip_exact_text(raw: str) -> None:
    assert_round_trip(raw)


def test_payload_json_is_the_wire_text() -> None:
    frame = parse('[2,"1","MeterValues",{"v":2e+01, "w":"165333.00"}]')
    assert isinstance(frame, Call)
    assert frame.payload_json == '{"v":2e+01, "w":"165333.00"}'
    assert frame.payload == {"v": 20.0, "w": "165333.00"}


def test_typed_fields() -> None:
    call = parse('[2,"u1","Authorize",{"idTag":"ABC"}]')
    assert call == Call("u1", "Authorize", {"idTag": "ABC"})
    assert call.message_type is MessageType.CALL
    result = parse('[3,"u1",{"idTagInfo":{"status":"Accepted"}}]')
    assert result == CallResult("u1", {"idTagInfo": {"status": "Accepted"}})
    error = parse('[4,"u1","GenericError","boom",{"hint":1}]')
    assert error == CallError("u1", "GenericError", "boom", {"hint": 1})


def test_created_frames_serialize_compactly() -> None:
    assert Call.create("7", "Heartbeat", {}).serialize() == '[2,"7","Heartbeat",{}]'
    assert CallResult.create("7", {"a": 1}).serialize() == '[3,"7",{"a":1}]'
    assert CallError.create("7", "NotImplemented").serialize() == '[4,"7","NotImplemented","",{}]'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty frame"),
        ("   ", "empty frame"),
        ("Heartbeat", "invalid JSON"),
        ('{"a":1}', "not a JSON array"),
        ("[]", "empty array"),
        ('[2,"1","Heartbeat",{}', "invalid JSON"),
        ('[2,"1","Heartbeat",{},]', "invalid JSON"),  # trailing comma, seen on real chargers
        ('[2,"1","Heartbeat",{}] x', "extra data"),
        ('[2,"1","Heartbeat"]', "CALL has 3 elements"),
        ('[2,"1","Heartbeat",{},{}]', "CALL has 5 elements"),
        ('[2,1,"Heartbeat",{}]', "unique id is not a string"),
        ('[2,"1",7,{}]', "action is not a string"),
        ('[2,"1","Heartbeat",[]]', "payload is not a JSON object"),
        ('[3,"1"]', "CALLRESULT has 2 elements"),
        ('[3,"1",null]', "payload is not a JSON object"),
        ('[4,"1","GenericError",{}]', "CALLERROR has 4 elements"),
        ('[4,"1",5,"",{}]', "errorCode is not a string"),
        ('[5,"1","Heartbeat",{}]', "unknown message type"),
        ('["2","1","Heartbeat",{}]', "unknown message type"),
        ('[2.0,"1","Heartbeat",{}]', "unknown message type"),
        ('[true,"1","Heartbeat",{}]', "unknown message type"),
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ],
)
def test_malformed_frames_have_a_reason(raw: str, reason: str) -> None:
    frame = parse(raw)
    assert isinstance(frame, Malformed)
    assert reason in frame.reason
    assert frame.serialize() == raw


def test_malformed_answer_keeps_its_unique_id_for_pairing() -> None:
    frame = parse('[3,"abc",[1,2]]')
    assert isinstance(frame, Malformed)
    assert (frame.message_type, frame.unique_id) == (3, "abc")
    call = parse('[2,"q","StatusNotification",{"connectorId":1,}]')
    assert isinstance(call, Malformed)
    assert "invalid JSON" in call.reason


def test_binary_frames_are_malformed_and_kept_byte_for_byte() -> None:
    utf8 = parse(b'[2,"1","Heartbeat",{}]')
    assert isinstance(utf8, Malformed)
    assert utf8.reason.startswith("binary frame")
    assert utf8.serialize() == b'[2,"1","Heartbeat",{}]'
    invalid = parse(b"\xff\xfe\x00")
    assert isinstance(invalid, Malformed)
    assert "not UTF-8" in invalid.reason
    assert invalid.raw == b"\xff\xfe\x00"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.text() | st.binary())
def test_parse_never_raises_on_arbitrary_input(data: str | bytes) -> None:
    frame = parse(data)
    if isinstance(frame, Malformed):
        assert frame.reason
        assert frame.raw == data
    else:
        assert frame.serialize() == data


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([2, 3, 4, 9, "2", None]),
    st.text(max_size=10) | st.integers(),
    st.lists(json_values, max_size=4),
)
def test_parse_never_raises_on_arrays(message_type: object, unique_id: object, rest: list) -> None:
    import json

    raw = json.dumps([message_type, unique_id, *rest])
    frame = parse(raw)
    assert frame.serialize() == raw
    if isinstance(frame, Call | CallResult | CallError):
        assert frame.unique_id == unique_id


# --- OCPP 2.1 part 4: CALLRESULTERROR (5) and SEND (6), only on an OCPP 2.1 connection -------------

V21 = OcppVersion.V21


@pytest.mark.parametrize(
    "raw",
    [
        '[5,"g1","FormatViolation","getVariableResult missing",{"at":"$"}]',
        '[6, "s1", "NotifyPeriodicEventStream", {"id":1,"pending":0,"basetime":"t","data":[]}]',
        '[2,"u1","Heartbeat",{}]',  # the 1.6 types stay as they are
    ],
)
def test_ocpp21_frames_round_trip_exact_text(raw: str) -> None:
    frame = parse(raw, V21)
    assert not isinstance(frame, Malformed), frame
    assert frame.serialize() == raw


def test_ocpp21_typed_fields() -> None:
    rejected = parse('[5,"g1","FormatViolation","bad",{"x":1}]', V21)
    assert rejected == CallResultError("g1", "FormatViolation", "bad", {"x": 1})
    assert rejected.message_type is MessageType.CALLRESULTERROR
    sent = parse('[6,"s1","NotifyPeriodicEventStream",{"id":1}]', V21)
    assert sent == Send("s1", "NotifyPeriodicEventStream", {"id": 1})
    assert sent.message_type is MessageType.SEND
    assert Send.create("s2", "A", {"b": 1}).serialize() == '[6,"s2","A",{"b":1}]'
    assert (
        CallResultError.create("s2", "GenericError").serialize() == '[5,"s2","GenericError","",{}]'
    )


@pytest.mark.parametrize("version", [None, OcppVersion.V16, OcppVersion.V201])
def test_types_5_and_6_are_malformed_outside_ocpp21(version: OcppVersion | None) -> None:
    for raw, name in (
        ('[5,"g1","FormatViolation","",{}]', "CALLRESULTERROR"),
        ('[6,"s1","NotifyPeriodicEventStream",{}]', "SEND"),
    ):
        frame = parse(raw, version)
        assert isinstance(frame, Malformed)
        assert f"{name} is an OCPP 2.1 message type" in frame.reason
        assert frame.message_type is None  # as for any unknown type


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('[5,"g1","FormatViolation",{}]', "CALLRESULTERROR has 4 elements"),
        ('[5,"g1",7,"",{}]', "errorCode is not a string"),
        ('[6,"s1","NotifyPeriodicEventStream"]', "SEND has 3 elements"),
        ('[6,"s1","NotifyPeriodicEventStream",[]]', "SEND payload is not a JSON object"),
        ('[7,"s1","X",{}]', "unknown message type 7"),
    ],
)
def test_malformed_ocpp21_frames_keep_type_and_unique_id(raw: str, reason: str) -> None:
    frame = parse(raw, V21)
    assert isinstance(frame, Malformed)
    assert reason in frame.reason
    if "unknown" not in reason:
        assert (frame.message_type, frame.unique_id) == (int(raw[1]), raw.split('"')[1])
