"""The OCPP-J CALL tracker: which CALLs are in flight on one connection, and what each answer answers.

Sans-I/O, in the manner of python-websockets' ``Protocol``: feed it every frame with the direction
it travelled (:meth:`CallTracker.feed`) and it returns one event saying what the frame was to the
conversation. It holds no sockets, futures, locks or clocks; the recorder, active mode, the
built-in central system and the replayer wrap it with what they need (a row, a future, a lock).

The rules it keeps:

- OCPP-J 1.6 section 4.1.1: "A Charge Point or Central System SHOULD NOT send a CALL message to the
  other party unless all the CALL messages it sent before have been responded to or have timed
  out." :meth:`CallTracker.may_send` answers that per direction;
- section 4.1.3: "The UniqueId of a CALLRESULT [or CALLERROR] MUST be equal to the UniqueId of the
  CALL"; so an answer travelling one way answers the CALL with its unique id that travelled the
  other way (:class:`Answered`), or nothing (:class:`Orphan`); a CALL whose unique id is already
  in flight the same way is a :class:`DuplicateCall`, a second answer a :class:`DuplicateAnswer`;
- section 4.2.3: a CALL the receiver cannot read is still answered (FormationViolation), so a
  malformed CALL whose unique id can be read is in flight like any other;
- OCPP 2.1 part 4 section 4.2.3: a CALLRESULTERROR travels the CALL's way and answers the
  CALLRESULT of that CALL (:class:`ResultRejected`); section 4.2.4: a SEND "does not expect a
  response", so it is never in flight (:class:`Sent`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ocpp_audit.protocol.constants import Direction
from ocpp_audit.protocol.frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Malformed,
    MessageType,
    Send,
)

__all__ = [
    "Answered",
    "CallStarted",
    "CallTracker",
    "DuplicateAnswer",
    "DuplicateCall",
    "InjectionGate",
    "Orphan",
    "PendingCall",
    "ResultRejected",
    "Sent",
    "TrackerEvent",
    "Unpaired",
]

# A peer that never answers must not make the table of CALLs grow without bound. OCPP-J allows one
# outstanding CALL per direction; this keeps far more than a conforming peer ever needs.
MAX_PENDING_CALLS = 256
# Answered CALLs remembered to tell a second answer (or a CALLRESULTERROR) from an orphan.
ANSWERED_KEPT = 64

_OPPOSITE = {
    Direction.CP_TO_CS: Direction.CS_TO_CP,
    Direction.CS_TO_CP: Direction.CP_TO_CS,
}


@dataclass(slots=True)
class PendingCall:
    """A CALL that went out, and what came back for it (``answer`` is None while in flight)."""

    direction: Direction  # the way the CALL travelled
    unique_id: str
    action: str | None  # None for a malformed CALL whose action could not be read
    frame: Call | Malformed | None  # None when fed as parts (track_call)
    tag: object = None  # whatever the feeder attached (the recorder: was it injected)
    seq: int | None = None  # where the feeder numbered the CALL (the recorder: its row's seq)
    answer: CallResult | CallError | Malformed | None = None
    answered_ok: bool = False  # answered with a CALLRESULT (kept when the frames are not)
    # The sender gave up waiting (section 4.1.1: "or have timed out"): no longer in flight, but a
    # late answer still pairs with it.
    timed_out: bool = False


@dataclass(slots=True)
class CallStarted:
    """A CALL is now in flight. ``concurrent``: another CALL was already in flight that way,
    which OCPP-J 1.6 section 4.1.1 says the sender should not do."""

    call: PendingCall
    concurrent: bool = False


@dataclass(slots=True)
class DuplicateCall:
    """A CALL whose unique id was already in flight the same way; it replaces ``previous``."""

    call: PendingCall
    previous: PendingCall


@dataclass(slots=True)
class Answered:
    """``frame`` (a CALLRESULT, CALLERROR, or a malformed answer) answers ``call``."""

    call: PendingCall
    frame: CallResult | CallError | Malformed | None


@dataclass(slots=True)
class DuplicateAnswer:
    """A second answer to ``call``, which was answered already."""

    call: PendingCall
    frame: CallResult | CallError | Malformed | None


@dataclass(slots=True)
class Orphan:
    """An answer (or CALLRESULTERROR) to a unique id with no CALL it could answer."""

    direction: Direction  # the way the answer travelled
    unique_id: str
    frame: Frame | None


@dataclass(slots=True)
class ResultRejected:
    """OCPP 2.1: ``frame``, a CALLRESULTERROR, says the CALLRESULT to ``call`` failed validation."""

    call: PendingCall
    frame: CallResultError | Malformed


@dataclass(slots=True)
class Sent:
    """OCPP 2.1: a SEND, which expects no answer."""

    direction: Direction
    frame: Send | Malformed


@dataclass(slots=True)
class Unpaired:
    """A malformed frame whose message type or unique id could not be read: nothing to pair."""

    direction: Direction
    frame: Malformed


TrackerEvent = (
    CallStarted
    | DuplicateCall
    | Answered
    | DuplicateAnswer
    | Orphan
    | ResultRejected
    | Sent
    | Unpaired
)


class CallTracker:
    """The CALLs in flight on one connection, both ways. Feed it every frame, in wire order.

    ``max_pending`` bounds the unanswered CALLs kept, timed out or not (the oldest is forgotten
    first). None: no bound (a capture read back, whose size is known).
    """

    def __init__(
        self, *, max_pending: int | None = MAX_PENDING_CALLS, keep_frames: bool = True
    ) -> None:
        self.max_pending = max_pending
        # False (the recorder): PendingCall keeps the CALL's parts, not its frame or its answer's,
        # so a peer sending large CALLs it never gets answered holds no payloads in memory.
        self.keep_frames = keep_frames
        # (direction the CALL travelled, unique id) -> the CALL, oldest first
        self._pending: OrderedDict[tuple[str, str], PendingCall] = OrderedDict()
        self._answered: OrderedDict[tuple[str, str], PendingCall] = OrderedDict()
        # CALLs in flight per direction, so that may_send does not scan the table
        self._in_flight = {Direction.CP_TO_CS: 0, Direction.CS_TO_CP: 0}

    # --- feeding ----------------------------------------------------------------------------------

    def feed(
        self, direction: Direction, frame: Frame, *, tag: object = None, seq: int | None = None
    ) -> TrackerEvent:
        """What ``frame``, travelling ``direction``, is to the conversation. ``tag`` and ``seq``
        are kept on the :class:`PendingCall` when the frame is a CALL."""
        if isinstance(frame, Call):
            return self.track_call(
                direction, frame.unique_id, frame.action, frame=frame, tag=tag, seq=seq
            )
        if isinstance(frame, (CallResult, CallError)):
            return self.track_answer(direction, frame.unique_id, frame)
        if isinstance(frame, Send):
            return Sent(direction, frame)
        if isinstance(frame, CallResultError):
            return self._result_error(direction, frame.unique_id, frame)
        unique_id = frame.unique_id
        message_type = frame.message_type
        if unique_id is None or message_type is None:
            return Unpaired(direction, frame)
        if message_type == MessageType.CALL:
            return self.track_call(
                direction, unique_id, frame.action, frame=frame, tag=tag, seq=seq
            )
        if message_type in (MessageType.CALLRESULT, MessageType.CALLERROR):
            return self.track_answer(direction, unique_id, frame)
        if message_type == MessageType.CALLRESULTERROR:
            return self._result_error(direction, unique_id, frame)
        return Sent(direction, frame)

    def track_call(
        self,
        direction: Direction,
        unique_id: str,
        action: str | None,
        *,
        frame: Call | Malformed | None = None,
        tag: object = None,
        seq: int | None = None,
    ) -> CallStarted | DuplicateCall:
        """A CALL given by its parts (a capture's row, say); :meth:`feed` of a CALL comes here."""
        call = PendingCall(
            direction, unique_id, action, frame if self.keep_frames else None, tag, seq=seq
        )
        key = (direction, unique_id)
        pending = self._pending
        previous = pending.pop(key, None)
        pending[key] = call
        if previous is not None and not previous.timed_out:
            return DuplicateCall(call, previous)
        in_flight = self._in_flight[direction]
        self._in_flight[direction] = in_flight + 1
        if previous is not None:
            return DuplicateCall(call, previous)
        if self.max_pending is not None and len(pending) > self.max_pending:
            forgotten = pending.popitem(last=False)[1]
            if not forgotten.timed_out:
                self._in_flight[forgotten.direction] -= 1
        return CallStarted(call, in_flight > 0)

    def track_answer(
        self,
        direction: Direction,
        unique_id: str,
        frame: CallResult | CallError | Malformed | None = None,
    ) -> Answered | DuplicateAnswer | Orphan:
        """A CALLRESULT or CALLERROR given by its parts; :meth:`feed` of an answer comes here."""
        key = (_OPPOSITE[direction], unique_id)
        call = self._pending.pop(key, None)
        if call is None:
            earlier = self._answered.get(key)
            if earlier is not None:
                return DuplicateAnswer(earlier, frame)
            return Orphan(direction, unique_id, frame)
        if not call.timed_out:
            self._in_flight[call.direction] -= 1
        if self.keep_frames:
            call.answer = frame
        call.answered_ok = type(frame) is CallResult
        answered = self._answered
        answered[key] = call
        if len(answered) > ANSWERED_KEPT:
            answered.popitem(last=False)
        return Answered(call, frame)

    def _result_error(
        self, direction: Direction, unique_id: str, frame: CallResultError | Malformed
    ) -> ResultRejected | Orphan:
        # OCPP 2.1 part 4 section 4.2.3: sent by the CALL's sender, about the CALLRESULT it got.
        call = self._answered.pop((direction, unique_id), None)
        if call is None or not call.answered_ok:
            return Orphan(direction, unique_id, frame)
        return ResultRejected(call, frame)

    def timed_out(self, direction: Direction, unique_id: str) -> PendingCall | None:
        """The sender stopped waiting for the answer to this CALL (its clock, not ours).

        OCPP-J 1.6 section 4.1.1: a CALL no longer holds back the next one once it has "timed
        out". A late answer still pairs with it (:class:`Answered`, ``call.timed_out`` set).
        """
        call = self._pending.get((direction, unique_id))
        if call is not None and not call.timed_out:
            call.timed_out = True
            self._in_flight[call.direction] -= 1
        return call

    def connection_lost(self) -> list[PendingCall]:
        """The connection is gone: every CALL in flight will never be answered. Returns them
        (oldest first) and forgets them, so that the wrappers fail their waiters."""
        lost = [call for call in self._pending.values() if not call.timed_out]
        self._pending.clear()
        self._answered.clear()
        self._in_flight = dict.fromkeys(self._in_flight, 0)
        return lost

    # --- state ------------------------------------------------------------------------------------

    def may_send(self, direction: Direction) -> bool:
        """OCPP-J 1.6 section 4.1.1: whether a CALL may go ``direction`` now (none in flight)."""
        return self._in_flight[direction] == 0

    def pending(self, direction: Direction | None = None) -> list[PendingCall]:
        """The CALLs in flight (only those that travelled ``direction``), oldest first."""
        return [
            call
            for call in self._pending.values()
            if not call.timed_out and (direction is None or call.direction == direction)
        ]

    def pending_call(self, direction: Direction, unique_id: str) -> PendingCall | None:
        """The unanswered CALL with ``unique_id`` that went ``direction``, timed out or not."""
        return self._pending.get((direction, unique_id))

    def is_pending(self, direction: Direction, unique_id: str) -> bool:
        """Whether an answer to this CALL (it went ``direction``) would pair with it."""
        return (direction, unique_id) in self._pending

    def action_of(self, direction: Direction, unique_id: str) -> str | None:
        """The action that an answer with ``unique_id`` travelling ``direction`` would answer."""
        call = self._pending.get((_OPPOSITE[direction], unique_id))
        return None if call is None else call.action


class InjectionGate:
    """OCPP-J 1.6 section 4.1.1 for a third party that adds CALLs to one direction of a connection
    it relays (active mode: the recorder injecting CALLs toward a charger the backend also calls).

    The rule, kept over a :class:`CallTracker` fed with every frame (the injected CALLs with a true
    ``tag``):

    - an injection may go only while no CALL is in flight that way (:meth:`may_inject`);
    - a relayed CALL that arrives while an injected one is in flight, or while earlier ones are
      held, is held (:meth:`relayed`), so that the receiver never has two CALLs from us at once;
    - once the injected CALL is answered, the held messages are released in the order they came
      (:meth:`start_release`, then :meth:`next_held` until None).

    The held messages are opaque items (the wrapper's raw text); the gate sends nothing.
    """

    def __init__(self, tracker: CallTracker, direction: Direction = Direction.CS_TO_CP) -> None:
        self.tracker = tracker
        self.direction = direction
        self._held: list[object] = []
        self.releasing = False

    @property
    def held(self) -> int:
        return len(self._held)

    def injection_in_flight(self) -> PendingCall | None:
        for call in self.tracker.pending(self.direction):
            if call.tag:
                return call
        return None

    def may_inject(self) -> bool:
        return self.tracker.may_send(self.direction) and not self._held and not self.releasing

    def relayed(self, event: TrackerEvent, item: object) -> bool:
        """A relayed message going ``direction`` was fed to the tracker (``event``): True to
        forward it now, False when the gate holds it."""
        if type(event) is not CallStarted and type(event) is not DuplicateCall:
            return True  # answers and the rest are not CALLs: section 4.1.1 says nothing of them
        if event.call.direction != self.direction:
            return True  # the rule holds per direction
        if self._held or self.releasing or self.injection_in_flight() is not None:
            self._held.append(item)
            return False
        return True

    def start_release(self) -> bool:
        """After the injected CALL is answered (or failed): True when held messages are now to be
        forwarded (take them with :meth:`next_held`); False if none, or a release is running."""
        if self.releasing or not self._held or self.injection_in_flight() is not None:
            return False
        self.releasing = True
        return True

    def stop_release(self) -> None:
        """The wrapper could not forward the rest; they stay held until the next release."""
        self.releasing = False

    def next_held(self) -> object | None:
        """The next held message to forward, in arrival order; None ends the release."""
        if self._held:
            return self._held.pop(0)
        self.releasing = False
        return None

    def connection_lost(self) -> None:
        """Nothing held will be forwarded any more."""
        self._held.clear()
        self.releasing = False
