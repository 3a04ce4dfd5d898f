"""CallTracker and InjectionGate driven with frames only: no sockets, no clocks."""

from __future__ import annotations

import pytest

from ocpp_audit.protocol.constants import Direction, OcppVersion
from ocpp_audit.protocol.frames import parse
from ocpp_audit.protocol.tracker import (
    ANSWERED_KEPT,
    Answered,
    CallStarted,
    CallTracker,
    DuplicateAnswer,
    DuplicateCall,
    InjectionGate,
    Orphan,
    ResultRejected,
    Sent,
    Unpaired,
)

CP, CS = Direction.CP_TO_CS, Direction.CS_TO_CP


def feed(tracker: CallTracker, direction: Direction, text: str, **kwargs: object):
    return tracker.feed(direction, parse(text, kwargs.pop("version", None)), **kwargs)


def test_an_answer_pairs_with_the_call_of_its_unique_id_that_went_the_other_way() -> None:
    tracker = CallTracker()
    started = feed(tracker, CP, '[2,"a","BootNotification",{}]')
    assert isinstance(started, CallStarted) and not started.concurrent
    feed(tracker, CS, '[2,"a","Reset",{"type":"Soft"}]')  # the same id, the other way
    reset_answer = feed(tracker, CP, '[3,"a",{"status":"Accepted"}]')
    boot_answer = feed(tracker, CS, '[4,"a","InternalError","",{}]')
    assert isinstance(reset_answer, Answered) and reset_answer.call.action == "Reset"
    assert isinstance(boot_answer, Answered) and boot_answer.call.action == "BootNotification"
    assert boot_answer.call.answer is boot_answer.frame
    assert tracker.pending() == []


def test_action_of_tells_what_an_answer_would_answer() -> None:
    tracker = CallTracker()
    feed(tracker, CS, '[2,"r1","ChangeAvailability",{"connectorId":0,"type":"Operative"}]')
    assert tracker.action_of(CP, "r1") == "ChangeAvailability"
    assert tracker.action_of(CS, "r1") is None  # an answer going the CALL's way answers nothing
    assert tracker.action_of(CP, "other") is None


def test_a_malformed_answer_still_answers_and_a_malformed_call_is_in_flight() -> None:
    tracker = CallTracker()
    feed(tracker, CS, '[2,"r","Reset",{"type":"Hard"}]')
    event = feed(tracker, CP, '[3,"r",["not an object"]]')
    assert isinstance(event, Answered) and event.call.action == "Reset"
    # OCPP-J 1.6 section 4.2.3: the receiver answers an unreadable CALL with FormationViolation.
    started = feed(tracker, CP, '[2,"m","StatusNotification",[]]')
    assert isinstance(started, CallStarted) and started.call.action == "StatusNotification"
    assert not tracker.may_send(CP)
    assert isinstance(feed(tracker, CS, '[4,"m","FormationViolation","",{}]'), Answered)
    unreadable = feed(tracker, CP, '[3,"x",{"status":}]')
    assert isinstance(unreadable, Unpaired)


def test_an_answer_with_no_call_is_an_orphan() -> None:
    tracker = CallTracker()
    event = feed(tracker, CS, '[3,"zzz",{}]')
    assert isinstance(event, Orphan)
    assert (event.direction, event.unique_id) == (CS, "zzz")
    feed(tracker, CP, '[2,"1","Heartbeat",{}]')
    assert isinstance(feed(tracker, CP, '[3,"1",{}]'), Orphan)  # the CALL's own way


def test_a_second_call_with_an_id_in_flight_and_a_second_answer_are_duplicates() -> None:
    tracker = CallTracker()
    feed(tracker, CP, '[2,"1","Heartbeat",{}]')
    duplicate = feed(tracker, CP, '[2,"1","Authorize",{"idTag":"T"}]')
    assert isinstance(duplicate, DuplicateCall)
    assert (duplicate.previous.action, duplicate.call.action) == ("Heartbeat", "Authorize")
    assert [call.action for call in tracker.pending()] == ["Authorize"]  # the later one stays
    first = feed(tracker, CS, '[3,"1",{"idTagInfo":{"status":"Accepted"}}]')
    second = feed(tracker, CS, '[3,"1",{"idTagInfo":{"status":"Accepted"}}]')
    assert isinstance(first, Answered)
    assert isinstance(second, DuplicateAnswer) and second.call is first.call
    assert tracker.may_send(CP)


def test_one_call_in_flight_per_direction() -> None:
    tracker = CallTracker()
    assert tracker.may_send(CP) and tracker.may_send(CS)
    feed(tracker, CP, '[2,"1","Heartbeat",{}]')
    assert not tracker.may_send(CP)
    assert tracker.may_send(CS)  # section 4.1.1 holds per direction
    second = feed(tracker, CP, '[2,"2","Heartbeat",{}]')
    assert isinstance(second, CallStarted) and second.concurrent
    feed(tracker, CS, '[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]')
    assert not tracker.may_send(CP)
    feed(tracker, CS, '[3,"2",{"currentTime":"2024-01-01T00:00:00Z"}]')
    assert tracker.may_send(CP)


def test_a_timed_out_call_no_longer_blocks_but_a_late_answer_still_pairs() -> None:
    tracker = CallTracker()
    feed(tracker, CS, '[2,"r","Reset",{"type":"Soft"}]')
    call = tracker.timed_out(CS, "r")
    assert call is not None and call.timed_out
    assert tracker.may_send(CS) and tracker.pending() == []
    late = feed(tracker, CP, '[3,"r",{"status":"Accepted"}]')
    assert isinstance(late, Answered) and late.call is call
    assert tracker.may_send(CS)


def test_pending_is_bounded_oldest_first() -> None:
    tracker = CallTracker(max_pending=3)
    for n in range(5):
        feed(tracker, CP, f'[2,"{n}","Heartbeat",{{}}]')
    assert [call.unique_id for call in tracker.pending()] == ["2", "3", "4"]
    assert not tracker.is_pending(CP, "0")
    for n in (2, 3, 4):
        feed(tracker, CS, f'[3,"{n}",{{}}]')
    assert tracker.may_send(CP)  # the forgotten CALLs do not count as in flight


def test_connection_lost_fails_everything_pending() -> None:
    tracker = CallTracker()
    feed(tracker, CP, '[2,"1","Heartbeat",{}]')
    feed(tracker, CS, '[2,"2","Reset",{"type":"Hard"}]', tag="waiter")
    lost = tracker.connection_lost()
    assert [(call.direction, call.action, call.tag) for call in lost] == [
        (CP, "Heartbeat", None),
        (CS, "Reset", "waiter"),
    ]
    assert tracker.pending() == [] and tracker.may_send(CP) and tracker.may_send(CS)
    assert isinstance(feed(tracker, CP, '[3,"2",{}]'), Orphan)


def test_send_expects_no_answer_and_is_never_pending() -> None:
    tracker = CallTracker()
    event = feed(
        tracker, CP, '[6,"s1","NotifyPeriodicEventStream",{"id":1}]', version=OcppVersion.V21
    )
    assert isinstance(event, Sent) and event.frame.action == "NotifyPeriodicEventStream"
    assert tracker.pending() == [] and tracker.may_send(CP)
    assert isinstance(feed(tracker, CS, '[3,"s1",{}]', version=OcppVersion.V21), Orphan)


def test_callresulterror_answers_the_callresult_of_its_call() -> None:
    tracker = CallTracker()
    v21 = {"version": OcppVersion.V21}
    feed(tracker, CS, '[2,"g","GetVariables",{"getVariableData":[]}]', **v21)
    feed(tracker, CP, '[3,"g",{"bogus":1}]', **v21)
    # OCPP 2.1: the CALL's sender says the CALLRESULT failed validation; it travels the CALL's way.
    event = feed(tracker, CS, '[5,"g","FormatViolation","no getVariableResult",{}]', **v21)
    assert isinstance(event, ResultRejected)
    assert event.call.action == "GetVariables" and event.frame.error_code == "FormatViolation"
    assert tracker.may_send(CS)
    # Only a CALLRESULT can be rejected: not a CALLERROR, not a CALL still in flight.
    feed(tracker, CS, '[2,"h","Reset",{"type":"Immediate"}]', **v21)
    assert isinstance(feed(tracker, CS, '[5,"h","GenericError","",{}]', **v21), Orphan)
    feed(tracker, CP, '[4,"h","InternalError","",{}]', **v21)
    assert isinstance(feed(tracker, CS, '[5,"h","GenericError","",{}]', **v21), Orphan)


def test_on_an_ocpp16_connection_types_5_and_6_are_unpaired_malformed_frames() -> None:
    tracker = CallTracker()
    event = feed(tracker, CP, '[6,"s1","NotifyPeriodicEventStream",{}]')
    assert isinstance(event, Unpaired)
    assert "OCPP 2.1 message type" in event.frame.reason


def test_answered_calls_are_remembered_only_for_a_while() -> None:
    tracker = CallTracker()
    for n in range(ANSWERED_KEPT + 1):
        feed(tracker, CP, f'[2,"{n}","Heartbeat",{{}}]')
        feed(tracker, CS, f'[3,"{n}",{{}}]')
    assert isinstance(feed(tracker, CS, '[3,"0",{}]'), Orphan)
    assert isinstance(feed(tracker, CS, f'[3,"{ANSWERED_KEPT}",{{}}]'), DuplicateAnswer)


# --- the hold/release rule of active mode ---------------------------------------------------------


@pytest.fixture
def gate() -> InjectionGate:
    return InjectionGate(CallTracker(), CS)


def test_an_injection_waits_while_a_backend_call_is_unanswered(gate: InjectionGate) -> None:
    tracker = gate.tracker
    assert gate.may_inject()
    backend = feed(tracker, CS, '[2,"b1","GetConfiguration",{}]')
    assert gate.relayed(backend, "b1 text")  # nothing injected: forwarded at once
    assert not gate.may_inject()
    feed(tracker, CP, '[3,"b1",{"configurationKey":[]}]')
    assert gate.may_inject()


def test_a_backend_call_during_an_injection_is_held_then_released_in_order(
    gate: InjectionGate,
) -> None:
    tracker = gate.tracker
    feed(tracker, CS, '[2,"ocpp-audit-1","ClearCache",{}]', tag=True)  # injected
    assert gate.injection_in_flight() is not None and not gate.may_inject()
    assert not gate.relayed(feed(tracker, CS, '[2,"b1","Reset",{"type":"Soft"}]'), "b1")
    assert not gate.relayed(feed(tracker, CS, '[2,"b2","ClearCache",{}]'), "b2")
    assert gate.held == 2
    assert not gate.start_release()  # the injected CALL is not answered yet
    # A charger CALL and the backend's answer to it are not held: 4.1.1 is per direction.
    assert gate.relayed(feed(tracker, CP, '[2,"c1","Heartbeat",{}]'), "c1")
    assert gate.relayed(feed(tracker, CS, '[3,"c1",{"currentTime":"x"}]'), "answer")
    answer = feed(tracker, CP, '[3,"ocpp-audit-1",{"status":"Accepted"}]')
    assert isinstance(answer, Answered) and answer.call.tag is True
    assert gate.start_release()
    assert not gate.start_release()  # one release at a time
    # A backend CALL arriving during the release queues behind the held ones.
    assert not gate.relayed(feed(tracker, CS, '[2,"b3","ClearCache",{}]'), "b3")
    assert [gate.next_held(), gate.next_held(), gate.next_held()] == ["b1", "b2", "b3"]
    assert gate.next_held() is None and not gate.releasing
    assert not gate.may_inject()  # the released CALLs are in flight until the charger answers
    for unique_id in ("b1", "b2", "b3"):
        feed(tracker, CP, f'[3,"{unique_id}",{{"status":"Accepted"}}]')
    assert gate.may_inject()


def test_a_timed_out_injection_releases_the_held_calls(gate: InjectionGate) -> None:
    tracker = gate.tracker
    feed(tracker, CS, '[2,"ocpp-audit-1","ClearCache",{}]', tag=True)
    assert not gate.relayed(feed(tracker, CS, '[2,"b1","Reset",{"type":"Soft"}]'), "b1")
    tracker.timed_out(CS, "ocpp-audit-1")
    assert gate.start_release() and gate.next_held() == "b1"


def test_connection_lost_drops_what_is_held(gate: InjectionGate) -> None:
    tracker = gate.tracker
    feed(tracker, CS, '[2,"ocpp-audit-1","ClearCache",{}]', tag=True)
    assert not gate.relayed(feed(tracker, CS, '[2,"b1","Reset",{"type":"Soft"}]'), "b1")
    assert [call.unique_id for call in tracker.connection_lost()] == ["ocpp-audit-1", "b1"]
    gate.connection_lost()
    assert gate.held == 0 and gate.may_inject()
