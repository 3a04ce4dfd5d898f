"""The built-in central system: answers chargers when there is no backend.

Used for lab work, the demo, the tests and the benchmarks. One ``websockets`` server; per connection
one :class:`ocpp.v16.ChargePoint` whose ``@on`` handlers answer the charger's CALLs. Three things
are done here rather than by the library, because a recorder's test double must not rewrite what
crosses the wire:

- frames are parsed with our own codec (``frames.parse``), so every charger CALL is logged with its
  camelCase payload exactly as sent, and a malformed CALL gets a CALLERROR instead of silence;
- server-initiated CALLs (:meth:`CentralSystem.call`) take and return camelCase dicts, sent as given
  (the library's ``call()`` wants dataclasses and converts keys);
- a CALLERROR from the charger is raised (:class:`CallErrorReceived`), never swallowed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ocpp.messages
import ocpp.v16
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import call_result, datatypes
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ocpp_audit.capture.connection import charge_point_id_from_path
from ocpp_audit.protocol import frames

__all__ = [
    "CallErrorReceived",
    "CentralSystem",
    "CentralSystemConfig",
    "ChargePointState",
    "ReceivedCall",
    "Transaction",
]

logger = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
# The log of received charger CALLs keeps this many (the oldest go first).
MAX_LOGGED_CALLS = 100_000
# Frames up to 16 MiB, like the recorder engines.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# How long stop() waits for closing handshakes before it drops the remaining connections.
STOP_TIMEOUT = 5.0

# The ocpp library raises some errors with their OCPP 2.0 names; OCPP-J 1.6 section 4.2.3 lists
# "FormationViolation" and (sic) "OccurenceConstraintViolation".
_OCPP16_ERROR_CODES = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}
# OCPP 1.6 section 7.2 AuthorizationStatus.
AUTHORIZATION_STATUSES = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})
# OCPP 1.6 section 7.40 RegistrationStatus.
REGISTRATION_STATUSES = frozenset({"Accepted", "Pending", "Rejected"})


@dataclass
class CentralSystemConfig:
    boot_status: str = "Accepted"  # BootNotification answer: Accepted | Pending | Rejected
    heartbeat_interval: int = 60  # seconds, the BootNotification answer's interval
    # None: every idTag is Accepted; else idTag -> AuthorizationStatus, unknown idTags are Invalid.
    id_tags: dict[str, str] | None = None
    # Switch off the ocpp library's JSON-schema validation of requests and answers (speed).
    skip_schema_validation: bool = False

    def __post_init__(self) -> None:
        if self.boot_status not in REGISTRATION_STATUSES:
            raise ValueError(
                f"boot_status must be one of {sorted(REGISTRATION_STATUSES)}, "
                f"not {self.boot_status!r}"
            )
        for id_tag, status in (self.id_tags or {}).items():
            if status not in AUTHORIZATION_STATUSES:
                raise ValueError(
                    f"id_tags[{id_tag!r}] must be one of {sorted(AUTHORIZATION_STATUSES)}, "
                    f"not {status!r}"
                )


class CallErrorReceived(Exception):
    """The charger answered a server-initiated CALL with a CALLERROR (OCPP-J 1.6 section 4.2.3)."""

    def __init__(
        self, error_code: str, error_description: str, error_details: dict[str, Any]
    ) -> None:
        super().__init__(f"{error_code}: {error_description}" if error_description else error_code)
        self.error_code = error_code
        self.error_description = error_description
        self.error_details = error_details


@dataclass(slots=True)
class ReceivedCall:
    """One CALL a charger sent, as logged: ``position`` orders it among all received CALLs."""

    position: int
    charge_point_id: str
    unique_id: str
    action: str
    payload: dict[str, Any]  # camelCase, as on the wire
    received_at: float  # time.time()
    handled: bool = False  # answered (or failed) and its effect on the state applied


@dataclass
class Transaction:
    transaction_id: int
    id_tag: str
    connector_id: int
    meter_start: int
    start_timestamp: str
    id_tag_status: str = "Accepted"  # the idTagInfo status given in the StartTransaction answer
    meter_stop: int | None = None
    stop_timestamp: str | None = None
    stop_reason: str | None = None
    meter_values: int = 0  # MeterValues messages received for this transaction

    @property
    def active(self) -> bool:
        return self.stop_timestamp is None


@dataclass
class ChargePointState:
    """What the central system remembers about one charger, across its connections."""

    charge_point_id: str
    boot: dict[str, Any] | None = None  # last BootNotification payload
    boots: int = 0
    # connectorId -> last StatusNotification payload (connector 0 is the charger itself)
    connector_status: dict[int, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[int, Transaction] = field(default_factory=dict)
    heartbeats: int = 0
    firmware_status: str | None = None
    diagnostics_status: str | None = None

    def status(self, connector_id: int) -> str | None:
        """The last status the charger reported for a connector."""
        payload = self.connector_status.get(connector_id)
        return None if payload is None else payload.get("status")


def _now_iso() -> str:
    """UTC now as ISO 8601 with milliseconds and a Z, as OCPP 1.6 dateTime fields carry it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Waiter:
    __slots__ = ("after", "future", "predicate")

    def __init__(
        self,
        after: int,
        predicate: Callable[[dict[str, Any]], bool] | None,
        future: asyncio.Future[dict[str, Any]],
    ) -> None:
        self.after = after
        self.predicate = predicate
        self.future = future


class _ChargePointSession(ocpp.v16.ChargePoint):
    """One charger connection: answers its CALLs and carries the central system's CALLs to it."""

    def __init__(
        self, charge_point_id: str, connection: ServerConnection, central_system: CentralSystem
    ) -> None:
        super().__init__(charge_point_id, connection, logger=logging.getLogger(f"{__name__}.ocpp"))
        self.central_system = central_system
        self.config = central_system.config
        self.state = central_system._state_of(charge_point_id)
        self._pending: dict[str, asyncio.Future[frames.CallResult | frames.CallError]] = {}
        self._payload: dict[str, Any] = {}  # camelCase payload of the CALL being handled
        for handlers in self.route_map.values():
            handlers["_skip_schema_validation"] = self.config.skip_schema_validation

    # -- the receive loop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Handle the charger's messages one at a time until the connection closes."""
        async for message in self._connection:
            await self.route_message(message)

    async def route_message(self, raw_msg: str | bytes) -> None:
        frame = frames.parse(raw_msg)
        if isinstance(frame, frames.Call):
            entry = self.central_system._log_call(self.id, frame)
            self._payload = frame.payload
            msg = ocpp.messages.Call(frame.unique_id, frame.action, frame.payload)
            try:
                await self._handle_call(msg)
            except OCPPError as error:
                # Schema validation failed, or no handler: NotImplemented for an OCPP 1.6 action,
                # NotSupported for an unknown one (the library's choice of code).
                code = _OCPP16_ERROR_CODES.get(error.code, error.code)
                logger.info("%s: %s answered with %s", self.id, frame.action, code)
                answer = msg.create_call_error(error)
                answer.error_code = code
                await self._send(answer.to_json())
            finally:
                self.central_system._handled(entry)
        elif isinstance(frame, frames.CallResult | frames.CallError):
            future = self._pending.get(frame.unique_id)
            if future is None or future.done():
                logger.warning(
                    "%s: answer to unknown or expired unique id %r", self.id, frame.unique_id
                )
            else:
                future.set_result(frame)
        else:
            assert isinstance(frame, frames.Malformed)
            logger.warning("%s: malformed frame (%s)", self.id, frame.reason)
            future = self._pending.get(frame.unique_id) if frame.unique_id is not None else None
            if frame.message_type in (3, 4) and future is not None and not future.done():
                future.set_exception(ValueError(f"{self.id}: malformed answer: {frame.reason}"))
            elif frame.message_type == frames.MessageType.CALL and frame.unique_id is not None:
                # OCPP-J 1.6 section 4.2.3: "FormationViolation: Payload for Action is
                # syntactically incorrect or not conform the PDU structure for Action".
                error = frames.CallError.create(frame.unique_id, "FormationViolation", frame.reason)
                await self._send(error.serialize())

    async def _send(self, message: str) -> None:
        logger.debug("%s: send %s", self.id, message)
        await self._connection.send(message)

    # -- server-initiated CALLs ------------------------------------------------------------------

    async def call_action(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send ``[2, id, action, payload]`` with the payload as given; the caller bounds the time.

        OCPP-J 1.6 section 4.1.1: a sender has at most one CALL outstanding, hence the lock.
        """
        async with self._call_lock:
            unique_id = str(uuid.uuid4())
            future: asyncio.Future[frames.CallResult | frames.CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending[unique_id] = future
            try:
                await self._send(frames.Call.create(unique_id, action, payload).serialize())
                answer = await future
            finally:
                del self._pending[unique_id]
        if isinstance(answer, frames.CallError):
            raise CallErrorReceived(
                answer.error_code, answer.error_description, answer.error_details
            )
        return answer.payload

    def connection_lost(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionError(f"charge point {self.id!r} disconnected before answering")
                )

    # -- answers to the charger's CALLs (OCPP 1.6 section 4) ------------------------------------

    def _id_tag_info(self, id_tag: str | None) -> datatypes.IdTagInfo:
        return datatypes.IdTagInfo(status=self.central_system.authorization_status(id_tag))

    @on(Action.boot_notification)
    def on_boot_notification(self, **kwargs: Any) -> call_result.BootNotification:
        # 4.2: "interval: ... the heartbeat interval in seconds" when Accepted; otherwise the
        # minimum wait before the charge point retries the BootNotification.
        self.state.boot = self._payload
        self.state.boots += 1
        return call_result.BootNotification(
            current_time=_now_iso(),
            interval=self.config.heartbeat_interval,
            status=self.config.boot_status,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        self.state.heartbeats += 1
        return call_result.Heartbeat(current_time=_now_iso())

    @on(Action.authorize)
    def on_authorize(self, id_tag: str | None = None, **kwargs: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=self._id_tag_info(id_tag))

    @on(Action.start_transaction)
    def on_start_transaction(
        self,
        id_tag: str = "",
        connector_id: int = 0,
        meter_start: int = 0,
        timestamp: str = "",
        **kwargs: Any,
    ) -> call_result.StartTransaction:
        # 4.8: the answer always carries a transactionId, even when the idTag is not Accepted
        # (the charge point then stops the transaction itself).
        id_tag_info = self._id_tag_info(id_tag)
        transaction_id = self.central_system._next_transaction_id()
        self.state.transactions[transaction_id] = Transaction(
            transaction_id=transaction_id,
            id_tag=id_tag,
            connector_id=connector_id,
            meter_start=meter_start,
            start_timestamp=timestamp,
            id_tag_status=id_tag_info.status,
        )
        return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info=id_tag_info)

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self,
        transaction_id: int | None = None,
        meter_stop: int | None = None,
        timestamp: str = "",
        id_tag: str | None = None,
        reason: str | None = None,
        **kwargs: Any,
    ) -> call_result.StopTransaction:
        transaction = self.state.transactions.get(transaction_id)  # type: ignore[arg-type]
        if transaction is None:
            # 4.10: the Central System must accept a StopTransaction even for a transaction it
            # does not know (it may come from a charger's offline queue); log it, answer anyway.
            logger.warning(
                "%s: StopTransaction for unknown transaction %r", self.id, transaction_id
            )
        else:
            transaction.meter_stop = meter_stop
            transaction.stop_timestamp = timestamp or _now_iso()
            # 7.45 Reason: "Local" is the default when the field is omitted.
            transaction.stop_reason = reason or "Local"
        return call_result.StopTransaction(
            id_tag_info=None if id_tag is None else self._id_tag_info(id_tag)
        )

    @on(Action.meter_values)
    def on_meter_values(
        self, transaction_id: int | None = None, **kwargs: Any
    ) -> call_result.MeterValues:
        transaction = self.state.transactions.get(transaction_id)  # type: ignore[arg-type]
        if transaction is not None:
            transaction.meter_values += 1
        return call_result.MeterValues()

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_id: int = 0, **kwargs: Any
    ) -> call_result.StatusNotification:
        self.state.connector_status[connector_id] = self._payload
        return call_result.StatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(
        self, status: str | None = None, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        self.state.firmware_status = status
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, status: str | None = None, **kwargs: Any
    ) -> call_result.DiagnosticsStatusNotification:
        self.state.diagnostics_status = status
        return call_result.DiagnosticsStatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str = "", **kwargs: Any) -> call_result.DataTransfer:
        # OCPP 1.6 section 4.3: "If the recipient of the request has no implementation for the
        # specific vendorId it SHALL return a status 'UnknownVendorId'". This central system
        # implements no vendor extension, so that is the truthful answer for every vendorId.
        return call_result.DataTransfer(status="UnknownVendorId")


def _select_subprotocol(connection: ServerConnection, subprotocols: Any) -> str | None:
    # OCPP-J 1.6 section 3.1.2: the charge point offers "ocpp1.6" in Sec-WebSocket-Protocol.
    # Choose it when offered; a charger that offers nothing (or only something else) is still
    # accepted, without a subprotocol, as lenient central systems do.
    return SUBPROTOCOL if SUBPROTOCOL in subprotocols else None


def _process_request(connection: ServerConnection, request: Request) -> Response | None:
    if not charge_point_id_from_path(request.path):
        # OCPP-J 1.6 section 3.1.1: the URL ends with the charge point's identity.
        return connection.respond(404, "The URL must end with the charge point id.\n")
    return None


class CentralSystem:
    """A central system on a WebSocket server: answers chargers, and sends them CALLs on request."""

    def __init__(self, config: CentralSystemConfig | None = None) -> None:
        self.config = config or CentralSystemConfig()
        # Every charger seen since start, with what we remember about it.
        self.charge_points: dict[str, ChargePointState] = {}
        self._server: Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._sessions: dict[str, _ChargePointSession] = {}
        self._transaction_ids = itertools.count(1)
        self._log: deque[ReceivedCall] = deque(maxlen=MAX_LOGGED_CALLS)
        self._logged = 0  # position of the next CALL to be logged
        self._message_waiters: dict[tuple[str, str], list[_Waiter]] = {}
        self._connect_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- server life -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); returns the bound port."""
        if self._server is not None:
            raise RuntimeError("central system already started")
        self._server = await serve(
            self._serve_connection,
            host,
            port,
            select_subprotocol=_select_subprotocol,
            process_request=_process_request,
            # Chargers rarely negotiate permessage-deflate, and with thousands of connections
            # its per-connection buffers cost more memory than OCPP's small frames save.
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            close_timeout=2,
        )
        self._host = host
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("central system listening on %s", self.url)
        return self._port

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Where chargers connect: ``url + "/" + charge_point_id``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self._port}"

    async def stop(self) -> None:
        """Close every charger connection (1001 going away) and stop listening."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await server.wait_closed()
        except TimeoutError:
            logger.warning("central system: closing handshakes timed out, dropping connections")
            for connection in list(server.all_connections):
                connection.transport.abort()
        logger.info("central system stopped")

    async def _serve_connection(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        charge_point_id = charge_point_id_from_path(connection.request.path)
        session = _ChargePointSession(charge_point_id, connection, self)
        previous = self._sessions.get(charge_point_id)
        self._sessions[charge_point_id] = session
        logger.info(
            "%s connected from %s (subprotocol %s)",
            charge_point_id,
            connection.remote_address,
            connection.subprotocol,
        )
        if previous is not None:
            # A charger that reconnects has left its old connection behind (often half-open
            # after a network loss): the new one is the charger, the old one goes.
            logger.info("%s: new connection replaces the previous one", charge_point_id)
            previous.connection_lost()
            task = asyncio.create_task(
                previous._connection.close(1000, "replaced by a new connection")
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        for future in self._connect_waiters.pop(charge_point_id, []):
            if not future.done():
                future.set_result(None)
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            session.connection_lost()
            if self._sessions.get(charge_point_id) is session:
                del self._sessions[charge_point_id]
            logger.info(
                "%s disconnected (%s %s)",
                charge_point_id,
                connection.close_code,
                connection.close_reason or "",
            )

    # -- chargers --------------------------------------------------------------------------------

    def connected(self) -> list[str]:
        """The ids of the charge points connected now."""
        return list(self._sessions)

    async def wait_connected(self, charge_point_id: str, timeout: float = 10) -> None:
        """Return once ``charge_point_id`` is connected; TimeoutError after ``timeout`` seconds."""
        if charge_point_id in self._sessions:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._connect_waiters.setdefault(charge_point_id, [])
        waiters.append(future)
        try:
            async with asyncio.timeout(timeout):
                await future
        finally:
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._connect_waiters.pop(charge_point_id, None)

    def state(self, charge_point_id: str) -> ChargePointState:
        """What is known about a charger (an empty state if it never connected)."""
        return self._state_of(charge_point_id)

    def _state_of(self, charge_point_id: str) -> ChargePointState:
        state = self.charge_points.get(charge_point_id)
        if state is None:
            state = self.charge_points[charge_point_id] = ChargePointState(charge_point_id)
        return state

    def authorization_status(self, id_tag: str | None) -> str:
        """OCPP 1.6 AuthorizationStatus for an idTag: all Accepted, or from the id_tags map."""
        if self.config.id_tags is None:
            return "Accepted"
        return self.config.id_tags.get(id_tag or "", "Invalid")

    def _next_transaction_id(self) -> int:
        return next(self._transaction_ids)

    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send a CALL to a connected charger and return its CALLRESULT payload (camelCase).

        ``payload`` goes on the wire as given (camelCase, e.g. ``{"connectorId": 1, "type":
        "Inoperative"}``). Raises :class:`CallErrorReceived` on a CALLERROR, ``TimeoutError``
        when no answer comes within ``timeout`` (waiting for an earlier CALL included),
        ``LookupError`` if the charger is not connected, ``ConnectionError`` if it disconnects
        before answering, ``ValueError`` if its answer is not valid OCPP-J.
        """
        session = self._sessions.get(charge_point_id)
        if session is None:
            raise LookupError(f"charge point {charge_point_id!r} is not connected")
        try:
            async with asyncio.timeout(timeout):
                return await session.call_action(action, payload)
        except TimeoutError:
            raise TimeoutError(
                f"{charge_point_id}: no answer to {action} within {timeout:g} s"
            ) from None

    # -- the log of received CALLs ---------------------------------------------------------------

    def mark(self) -> int:
        """The position the next received charger CALL will get (for ``wait_for_message``)."""
        return self._logged

    def received(
        self, charge_point_id: str | None = None, action: str | None = None, *, after: int = 0
    ) -> list[ReceivedCall]:
        """The logged charger CALLs (the last 100k), oldest first, optionally filtered."""
        return [
            entry
            for entry in self._entries_from(after)
            if (charge_point_id is None or entry.charge_point_id == charge_point_id)
            and (action is None or entry.action == action)
        ]

    async def wait_for_message(
        self,
        charge_point_id: str,
        action: str,
        *,
        after: int = 0,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10,
    ) -> dict[str, Any]:
        """The payload of the first ``action`` CALL from the charger at log position >= ``after``
        that satisfies ``predicate``; waits for it up to ``timeout`` seconds (TimeoutError).

        It returns once the CALL has been answered, so the state reflects it.
        """
        for entry in self._entries_from(after):
            if (
                entry.handled
                and entry.charge_point_id == charge_point_id
                and entry.action == action
                and (predicate is None or predicate(entry.payload))
            ):
                return entry.payload
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(after, predicate, future)
        key = (charge_point_id, action)
        waiters = self._message_waiters.setdefault(key, [])
        waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(
                f"{charge_point_id}: no matching {action} within {timeout:g} s"
            ) from None
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._message_waiters.get(key) is waiters:
                del self._message_waiters[key]

    def _entries_from(self, after: int) -> Any:
        first = self._logged - len(self._log)
        return itertools.islice(self._log, max(0, after - first), None)

    def _log_call(self, charge_point_id: str, frame: frames.Call) -> ReceivedCall:
        entry = ReceivedCall(
            self._logged,
            charge_point_id,
            frame.unique_id,
            frame.action,
            frame.payload,
            time.time(),
        )
        self._log.append(entry)
        self._logged += 1
        return entry

    def _handled(self, entry: ReceivedCall) -> None:
        entry.handled = True
        waiters = self._message_waiters.get((entry.charge_point_id, entry.action))
        if not waiters:
            return
        for waiter in list(waiters):
            if waiter.future.done() or entry.position < waiter.after:
                continue
            try:
                matches = waiter.predicate is None or waiter.predicate(entry.payload)
            except Exception as exc:  # the caller's predicate failed: tell the caller
                waiter.future.set_exception(exc)
                continue
            if matches:
                waiter.future.set_result(entry.payload)
