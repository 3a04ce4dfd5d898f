"""Turning one charger connection's events into capture rows. Shared by every engine.

An engine calls :meth:`ConnectionRecorder.message` for each WebSocket message *before* forwarding it
(the row goes to the journal first), and ``opened`` / ``refused`` / ``closed`` around the connection.
The recorder parses each frame with the codec, numbers the events (``seq``), and resolves the
``action`` of CALLRESULT and CALLERROR rows from the CALL they answer, with the protocol's
:class:`~ocpp_audit.protocol.tracker.CallTracker` (which active mode reads too).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ocpp_audit.capture.schema import ClosedBy, Direction, Event
from ocpp_audit.protocol.constants import OcppVersion, version_of_subprotocol
from ocpp_audit.protocol.frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Malformed,
    Send,
    parse,
)
from ocpp_audit.protocol.tracker import (
    MAX_PENDING_CALLS,
    Answered,
    CallStarted,
    CallTracker,
    DuplicateCall,
    TrackerEvent,
    Unpaired,
)

_MESSAGE = Event.MESSAGE.value
_ANSWER_TYPES = (3, 4)  # CALLRESULT, CALLERROR (a CALLRESULTERROR answers a CALLRESULT, not a CALL)


class RowSink(Protocol):
    """Where rows go: the capture writer (or a list, in unit tests)."""

    def append(self, row: dict[str, object]) -> None: ...


def now_us() -> int:
    """The recorder's clock: microseconds since the Unix epoch, UTC."""
    return time.time_ns() // 1000


def charge_point_id_from_path(path: str) -> str:
    """The last non-empty segment of the URL path, percent-decoded (query string ignored).

    OCPP-J 1.6 section 3.1.1: the charge point's endpoint URL ends with its identity,
    e.g. ``ws://csms.example.com/ocpp/CP001``.
    """
    segments = [segment for segment in urlsplit(path).path.split("/") if segment]
    return unquote(segments[-1]) if segments else ""


def format_address(address: object) -> str | None:
    """A socket peer address as the ``remote_address`` column holds it: ``host:port``, an IPv6 host
    in brackets (``[::1]:5000``); None when there is none."""
    if not address:
        return None
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def basic_auth_user(authorization: str | None) -> str | None:
    """The user name of a Basic ``Authorization`` header; the password is never returned.

    OCPP 1.6 security profile 1 and 2 use HTTP Basic authentication with the charge point id as user.
    """
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[0]


class ConnectionRecorder:
    """Records the events of one charger connection into a row sink."""

    def __init__(
        self,
        sink: RowSink,
        charge_point_id: str,
        *,
        connection_id: str | None = None,
        version: OcppVersion | None = None,
        backend: str | None = None,
    ) -> None:
        """``backend``: None for the primary backend's hop; a mirror's name for the rows of its
        read-only copy of the connection (same ``connection_id``, a ``seq`` of its own)."""
        self.sink = sink
        self.charge_point_id = charge_point_id
        self.connection_id = connection_id or uuid.uuid4().hex
        self.backend = backend
        self.seq = 0
        # The CALLs in flight, each tagged with whether it was injected.
        self.tracker = CallTracker(max_pending=MAX_PENDING_CALLS, keep_frames=False)
        # What the last recorded message was to the conversation (active mode reads it).
        # The last message recorded and what the tracker made of it, for the engine's hooks right
        # after (injection, mirrors); forget_last() drops them so no payload outlives its turn.
        self.last_frame: Frame | None = None
        self.last_event: TrackerEvent | None = None
        # From the negotiated subprotocol: OCPP 2.1 frames are read only on an OCPP 2.1 connection.
        # Every row of the connection carries it (the ocpp_version column); an importer whose log
        # has no open line may know it otherwise and pass it here.
        self.version: OcppVersion | None = version

    def _row(self, event: Event, ts: int | None = None, **fields: object) -> dict[str, object]:
        row: dict[str, object] = {
            "event": event.value,
            "ts": now_us() if ts is None else ts,
            "connection_id": self.connection_id,
            "charge_point_id": self.charge_point_id,
            "seq": self.seq,
            "injected": False,
            "ocpp_version": self.version.value if self.version is not None else None,
        }
        if self.backend is not None:
            row["backend"] = self.backend
        row.update(fields)
        self.seq += 1
        return row

    def _write(self, row: dict[str, object]) -> None:
        self.sink.append(row)

    def opened(
        self,
        *,
        path: str,
        subprotocols_offered: list[str] | None,
        subprotocol: str | None,
        remote_address: str | None,
        authorization: str | None = None,
        tls: bool = False,
        ts: int | None = None,
    ) -> None:
        """The WebSocket connection is set up on both hops."""
        # OCPP-J section 3.1.2: the negotiated subprotocol names the OCPP version of the connection.
        self.version = version_of_subprotocol(subprotocol) or self.version
        self._write(
            self._row(
                Event.OPEN,
                ts,
                path=path,
                subprotocols_offered=",".join(subprotocols_offered or []) or None,
                subprotocol=subprotocol,
                remote_address=remote_address,
                auth_user=basic_auth_user(authorization),
                tls=tls,
            )
        )

    def refused(
        self,
        *,
        path: str,
        http_status: int,
        reason: str,
        subprotocols_offered: list[str] | None = None,
        remote_address: str | None = None,
        authorization: str | None = None,
        tls: bool = False,
        ts: int | None = None,
    ) -> None:
        """The handshake failed: the backend refused it, or could not be reached (502)."""
        self._write(
            self._row(
                Event.REFUSED,
                ts,
                path=path,
                subprotocols_offered=",".join(subprotocols_offered or []) or None,
                remote_address=remote_address,
                auth_user=basic_auth_user(authorization),
                tls=tls,
                http_status=http_status,
                detail=json.dumps({"reason": reason}),
            )
        )

    def forget_last(self) -> None:
        """Drop the last message and its event (an engine calls this once it is done with them)."""
        self.last_frame = None
        self.last_event = None

    def message(
        self,
        direction: Direction,
        data: str | bytes,
        *,
        injected: bool = False,
        ts: int | None = None,
    ) -> Frame:
        """Record one message (call before forwarding it); returns the parsed frame."""
        frame = self.last_frame = parse(data, self.version)
        event = self.last_event = self.tracker.feed(direction, frame, tag=injected, seq=self.seq)
        # The hot path of every engine: the row is built once, as one dict literal.
        row: dict[str, object] = {
            "event": _MESSAGE,
            "ts": now_us() if ts is None else ts,
            "connection_id": self.connection_id,
            "charge_point_id": self.charge_point_id,
            "seq": self.seq,
            "injected": injected,
            "direction": direction.value,
            "ocpp_version": self.version.value if self.version is not None else None,
        }
        if self.backend is not None:
            row["backend"] = self.backend
        self.seq += 1
        if type(data) is str:
            row["raw"] = data
        else:
            row["raw_binary"] = bytes(data)
        kind = type(frame)
        event_kind = type(event)
        # The pairing, as the tracker saw it (OCPP-J 1.6 section 4.1.3: an answer carries the unique
        # id of the CALL it answers): a CALL says whether it reused an id in flight, an answer names
        # the seq of its CALL (-1: none in flight). Analyses join on these instead of re-pairing.
        if event_kind is CallStarted:
            row["reused_id"] = False
        elif event_kind is DuplicateCall:
            row["reused_id"] = True
        if kind is Call or kind is Send:
            row["message_type"] = frame.message_type.value
            row["unique_id"] = frame.unique_id
            row["action"] = frame.action
            row["payload"] = frame.payload_json
            return self._append(row, frame)
        # An answer carries the action of the CALL it answers, and is injected when that CALL was.
        action = None
        if event_kind is Answered:
            call = event.call
            action = call.action
            row["injected"] = bool(call.tag) or injected
            row["answers_seq"] = call.seq
        elif event_kind is not Unpaired and frame.message_type in _ANSWER_TYPES:
            row["answers_seq"] = -1  # an orphan, or a second answer to an answered CALL
        if kind is CallResult or kind is CallError or kind is CallResultError:
            row["message_type"] = frame.message_type.value
            row["unique_id"] = frame.unique_id
            row["action"] = action
            row["payload"] = frame.payload_json
            if kind is not CallResult:
                row["error_code"] = frame.error_code
                row["error_description"] = frame.error_description
        else:
            assert isinstance(frame, Malformed)
            row["message_type"] = frame.message_type
            row["unique_id"] = frame.unique_id
            row["action"] = action if frame.action is None else frame.action
            row["parse_error"] = frame.reason
        return self._append(row, frame)

    def _append(self, row: dict[str, object], frame: Frame) -> Frame:
        self.sink.append(row)
        return frame

    def is_pending(self, direction: Direction, unique_id: str) -> bool:
        """Whether a CALL that went ``direction`` with ``unique_id`` awaits its answer."""
        return self.tracker.is_pending(direction, unique_id)

    def ping(self, direction: Direction, *, pong: bool = False) -> None:
        event = Event.PONG if pong else Event.PING
        self._write(self._row(event, direction=direction.value))

    def closed(
        self,
        code: int | None,
        reason: str | None,
        closed_by: ClosedBy | None,
        *,
        ts: int | None = None,
    ) -> None:
        """The connection ended; ``code`` is the close code the closing side sent (1006 if none).

        ``closed_by`` is None when nobody can tell (an imported log that does not say).
        """
        self._write(
            self._row(
                Event.CLOSE,
                ts,
                close_code=code,
                close_reason=reason or None,
                closed_by=closed_by.value if closed_by is not None else None,
            )
        )

    def control_frame(self, direction: Direction, event: Event, data: bytes) -> None:
        """A WebSocket ping or pong (RFC 6455 5.5.2, 5.5.3), its application data as sent, in
        ``raw_binary``."""
        self._write(self._row(event, direction=direction.value, raw_binary=data))

    def event(self, event: Event, detail: dict[str, object]) -> None:
        """Any other event of this connection (gap, upload), with its data as JSON."""
        self._write(self._row(event, detail=json.dumps(detail)))
