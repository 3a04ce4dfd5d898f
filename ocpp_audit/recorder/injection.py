"""Active mode: injecting server-initiated CALLs toward live chargers.

Both engines keep one :class:`ChargerLink` per live charger connection in a :class:`ChargerRegistry`
and pass every message through it after recording it (journal first, as always):

- a charger's answer to an injected CALL is recorded (``injected = true``, which
  ``ConnectionRecorder`` sets on an answer to an injected CALL) and *not* forwarded: the backend never
  asked;
- OCPP-J 1.6 section 4.1.1 allows one outstanding CALL per direction ("A Charge Point or Central
  System SHOULD NOT send a CALL message to the other party unless all the CALL messages it sent
  before have been responded to or have timed out"). So an injection waits while a backend CALL to
  that charger is unanswered, and a backend CALL that arrives while an injected one is pending is
  held and forwarded right after the charger's answer;
- a charger that disconnects fails its pending injection at once (:class:`ChargerDisconnected`).

The pairing and the rule are the protocol's (:class:`~ocpp_audit.protocol.tracker.CallTracker`,
the recorder's, and :class:`~ocpp_audit.protocol.tracker.InjectionGate`); this module adds the
asyncio parts: the waiter's future, one injection at a time, sending the held CALLs.

Injected CALLs carry unique ids starting with :data:`INJECTED_ID_PREFIX`, which no backend uses.

The HTTP control API that serves the registry is in :mod:`ocpp_audit.recorder.control`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ocpp_audit.capture.connection import ConnectionRecorder, now_us
from ocpp_audit.protocol.constants import MAX_UNIQUE_ID_LENGTH, Direction
from ocpp_audit.protocol.frames import Call, CallError, CallResult, Frame, Malformed
from ocpp_audit.protocol.tracker import (
    Answered,
    CallStarted,
    DuplicateAnswer,
    DuplicateCall,
    InjectionGate,
    PendingCall,
    TrackerEvent,
)

logger = logging.getLogger(__name__)

# Unique ids of injected CALLs start with this (and stay within MAX_UNIQUE_ID_LENGTH).
INJECTED_ID_PREFIX = "ocpp-audit-"
DEFAULT_CALL_TIMEOUT_S = 30.0
MAX_CALL_TIMEOUT_S = 3600.0
MESSAGE_LOG_SIZE = 500  # charger CALLs kept per followed charge point id (the messages feed)


class InjectionError(Exception):
    """An injection that could not be done; ``status`` is the HTTP status the API answers with."""

    status = 500


class UnknownCharger(InjectionError):
    status = 404


class InvalidPayload(InjectionError):
    status = 400


class ChargerDisconnected(InjectionError):
    status = 502


class InjectionTimeout(InjectionError):
    status = 504


def new_unique_id() -> str:
    """A unique id no backend uses: the prefix and 24 hex digits (35 characters in all)."""
    return INJECTED_ID_PREFIX + uuid.uuid4().hex[:24]


assert len(new_unique_id()) <= MAX_UNIQUE_ID_LENGTH  # OCPP-J 1.6 section 4.1.4


def schema_complaint(
    action: str, payload: dict[str, Any], version: str | None = None
) -> str | None:
    """Why ``payload`` is not a valid ``action`` CALL of the OCPP ``version`` (the connection's;
    None: 1.6), or None when it is."""
    from ocpp_audit.protocol.schema_validation import schema_error

    return schema_error(action, 2, json.dumps(payload), version)


@dataclass
class InjectionAnswer:
    """The charger's answer to an injected CALL."""

    charge_point_id: str
    unique_id: str
    action: str
    frame: CallResult | CallError | Malformed

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "charge_point_id": self.charge_point_id,
            "unique_id": self.unique_id,
            "action": self.action,
        }
        frame = self.frame
        if isinstance(frame, CallResult):
            answer.update(message_type=3, payload=frame.payload)
        elif isinstance(frame, CallError):
            answer.update(
                message_type=4,
                error_code=frame.error_code,
                error_description=frame.error_description,
                error_details=frame.error_details,
            )
        else:
            # The text as the charger sent it; bytes (a binary frame) as their repr.
            raw = frame.raw if isinstance(frame.raw, str) else repr(frame.raw)
            answer.update(message_type=frame.message_type, malformed=frame.reason, raw=raw)
        return answer

    @property
    def ok(self) -> bool:
        return isinstance(self.frame, CallResult)


SendToCharger = Callable[[str | bytes], Awaitable[None]]


class ChargerLink:
    """One live charger connection as active mode sees it. Engines call the ``from_*`` hooks."""

    def __init__(
        self,
        recorder: ConnectionRecorder,
        send_to_charger: SendToCharger,
        *,
        subprotocol: str | None = None,
    ) -> None:
        self.recorder = recorder
        self.charge_point_id = recorder.charge_point_id
        self.subprotocol = subprotocol
        self.connected_since = now_us()
        self._send_to_charger = send_to_charger
        # The recorder's tracker sees every frame of the connection, injected ones too.
        self.tracker = recorder.tracker
        self.gate = InjectionGate(self.tracker, Direction.CS_TO_CP)
        self._lock = asyncio.Lock()  # one injection at a time per charger
        self._changed = asyncio.Event()  # a CALL toward the charger was answered, or it went
        self._injection: tuple[PendingCall, asyncio.Future[Frame]] | None = None
        self.closed = False
        self.message_log: MessageLog | None = None  # set by ChargerRegistry.add

    def _event_of(self, frame: Frame) -> TrackerEvent | None:
        """What the recorder's tracker made of ``frame``, the message it recorded last."""
        if self.recorder.last_frame is not frame:
            return None
        return self.recorder.last_event

    # --- hooks the engines call, after recording the message ------------------------------------

    def from_backend(self, frame: Frame, data: str | bytes) -> bool:
        """A backend message toward the charger was recorded: True to forward it now, else held."""
        event = self._event_of(frame)
        if event is None:
            return True
        if not self.gate.relayed(event, data):
            logger.info(
                "%s: holding backend %s until the injected CALL is answered",
                self.charge_point_id,
                getattr(frame, "action", None),
            )
            return False
        if not isinstance(event, CallStarted | DuplicateCall):
            self._changed.set()
        return True

    def from_charger(self, frame: Frame) -> bool:
        """A charger message was recorded: True to forward it to the backend, False to keep it."""
        if isinstance(frame, Call):
            if self.message_log is not None:
                self.message_log.append(frame.action, frame.payload)
            return True
        event = self._event_of(frame)
        if isinstance(event, Answered | DuplicateAnswer) and event.call.tag:
            injection = self._injection
            if injection is not None and injection[0] is event.call:
                if not injection[1].done():
                    injection[1].set_result(frame)
                self._end_injection()
            return False  # the backend never asked: its answer stays with us
        self._changed.set()
        return True

    def disconnected(self) -> None:
        """The connection ended: fail a pending injection at once."""
        self.closed = True
        self.tracker.connection_lost()
        self.gate.connection_lost()
        injection = self._injection
        if injection is not None and not injection[1].done():
            injection[1].set_exception(
                ChargerDisconnected(
                    f"charger {self.charge_point_id} disconnected before answering "
                    f"the injected {injection[0].action}"
                )
            )
        self._injection = None
        self._changed.set()

    # --- state ------------------------------------------------------------------------------------

    def pending_calls(self) -> list[dict[str, object]]:
        """The CALLs on this connection still waiting for an answer, oldest first."""
        return [
            {
                "direction": call.direction.value,
                "unique_id": call.unique_id,
                "action": call.action,
                "injected": bool(call.tag),
            }
            for call in self.tracker.pending()
        ]

    def describe(self) -> dict[str, object]:
        return {
            "charge_point_id": self.charge_point_id,
            "connection_id": self.recorder.connection_id,
            "connected_since": _iso(self.connected_since),
            "subprotocol": self.subprotocol,
            "ocpp_version": self.recorder.version.value if self.recorder.version else None,
            "pending_calls": self.pending_calls(),
            "held_backend_calls": self.gate.held,
        }

    # --- injection --------------------------------------------------------------------------------

    async def call(
        self, action: str, payload: dict[str, Any], timeout: float = DEFAULT_CALL_TIMEOUT_S
    ) -> InjectionAnswer:
        """Send one CALL to the charger (after any backend CALL is answered); wait for its answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                async with self._lock:
                    # OCPP-J 1.6 section 4.1.1: one outstanding CALL toward the charger.
                    while not self.closed and not self.gate.may_inject():
                        self._changed.clear()
                        await self._changed.wait()
                    if self.closed:
                        raise ChargerDisconnected(f"charger {self.charge_point_id} disconnected")
                    return await self._call_now(action, payload)
        except TimeoutError:
            waiting_for = (
                "a backend CALL to be answered" if self._injection is None else "its answer"
            )
            raise InjectionTimeout(
                f"{action} to {self.charge_point_id}: no answer within {timeout:g} s "
                f"(waited for {waiting_for})"
            ) from None

    async def _call_now(self, action: str, payload: dict[str, Any]) -> InjectionAnswer:
        call = Call.create(new_unique_id(), action, payload)
        text = call.serialize()
        answer: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        try:
            frame = self.recorder.message(Direction.CS_TO_CP, text, injected=True)  # journal first
            event = self._event_of(frame)
            assert isinstance(event, CallStarted | DuplicateCall)
            self._injection = (event.call, answer)
            await self._send_to_charger(text)
            frame = await answer
        except BaseException:
            # Not answered (timed out, not sent, or the connection went): OCPP-J 1.6 section
            # 4.1.1 lets the next CALL go once this one "timed out".
            self.tracker.timed_out(Direction.CS_TO_CP, call.unique_id)
            if self._injection is not None and self._injection[1] is answer:
                self._end_injection()
            raise
        assert isinstance(frame, CallResult | CallError | Malformed)
        return InjectionAnswer(self.charge_point_id, call.unique_id, action, frame)

    def _end_injection(self) -> None:
        self._injection = None
        self._changed.set()
        if not self.closed and self.gate.start_release():
            task = asyncio.get_running_loop().create_task(self._release_held())
            task.add_done_callback(_log_failure)

    async def _release_held(self) -> None:
        """Forward the backend CALLs held during the injection, in the order they came."""
        try:
            while not self.closed:
                data = self.gate.next_held()
                if data is None:
                    return
                try:
                    await self._send_to_charger(data)  # type: ignore[arg-type]
                except Exception as exc:
                    logger.warning(
                        "%s: could not forward a held CALL: %s", self.charge_point_id, exc
                    )
                    return
        finally:
            self.gate.stop_release()
            self._changed.set()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("releasing held CALLs failed", exc_info=task.exception())


def _iso(ts_us: int) -> str:
    return dt.datetime.fromtimestamp(ts_us / 1e6, dt.UTC).isoformat().replace("+00:00", "Z")


class MessageLog:
    """The CALLs one charge point sent, numbered from 0, the last ``size`` kept; awaitable."""

    def __init__(self, size: int = MESSAGE_LOG_SIZE) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.next_index = 0
        self._changed = asyncio.Event()

    def append(self, action: str, payload: Any) -> None:
        ts = now_us()
        self._entries.append(
            {
                "index": self.next_index,
                "ts": _iso(ts),
                "ts_us": ts,
                "action": action,
                "payload": payload,
            }
        )
        self.next_index += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def since(self, after: int, action: str | None = None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self._entries
            if entry["index"] >= after and (action is None or entry["action"] == action)
        ]

    async def wait(self, after: int, action: str | None, wait: float) -> list[dict[str, Any]]:
        """Entries at index >= after (of ``action``), waiting up to ``wait`` s for the first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            found = self.since(after, action)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()


class ChargerRegistry:
    """The live chargers of one engine, by charge point id (a reconnect replaces the old link)."""

    def __init__(self) -> None:
        self._links: dict[str, ChargerLink] = {}
        self._logs: dict[str, MessageLog] = {}

    def add(self, link: ChargerLink) -> None:
        self._links[link.charge_point_id] = link
        link.message_log = self._logs.get(link.charge_point_id)

    def message_log(self, charge_point_id: str) -> MessageLog:
        """The charger's CALL log, kept across its reconnects.

        Made on first use (the first ``GET .../messages``), so that only chargers someone follows
        (a guided run) keep one: a recorder of thousands of chargers keeps no copies otherwise.
        """
        log = self._logs.get(charge_point_id)
        if log is None:
            log = self._logs[charge_point_id] = MessageLog()
            link = self._links.get(charge_point_id)
            if link is not None:
                link.message_log = log
        return log

    def remove(self, link: ChargerLink) -> None:
        """Forget ``link`` (if it is still the current one for its charger) and fail its injection."""
        if self._links.get(link.charge_point_id) is link:
            del self._links[link.charge_point_id]
        link.disconnected()

    def get(self, charge_point_id: str) -> ChargerLink | None:
        return self._links.get(charge_point_id)

    def __len__(self) -> int:
        """How many chargers are connected now."""
        return len(self._links)

    def chargers(self) -> list[dict[str, object]]:
        return [self._links[key].describe() for key in sorted(self._links)]

    async def inject(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> InjectionAnswer:
        """Validate against the schemas of the charger's OCPP version, send one CALL to the
        connected charger, and wait for its answer."""
        link = self._links.get(charge_point_id)
        version = link.recorder.version if link is not None else None
        complaint = schema_complaint(action, payload, version.value if version else None)
        if complaint is not None:
            raise InvalidPayload(complaint)
        if link is None:
            raise UnknownCharger(f"charger {charge_point_id!r} is not connected")
        return await link.call(action, payload, timeout)
