"""The built-in central system: answers chargers when there is no backend.

Used for lab work, the demo, the tests and the benchmarks. One ``websockets`` server; per connection
one session that dispatches the charger's CALLs to a handler per action and pairs the answers to its
own CALLs with the protocol's :class:`~ocpp_audit.protocol.tracker.CallTracker`. From the ``ocpp``
library it takes only the public schema validation (``ocpp.messages.validate_payload``) and its
error classes, because a recorder's test double must not rewrite what crosses the wire:

- frames are parsed with our own codec (``frames.parse``), so every charger CALL is logged with its
  camelCase payload exactly as sent, and a malformed CALL gets a CALLERROR instead of silence;
- handlers take and return camelCase payloads, and server-initiated CALLs
  (:meth:`CentralSystem.call`) send the payload as given;
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
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError, OCPPError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ocpp_audit.capture.connection import charge_point_id_from_path
from ocpp_audit.protocol import frames
from ocpp_audit.protocol.constants import (
    SUBPROTOCOLS,
    Direction,
    OcppVersion,
    actions,
    version_of_subprotocol,
)
from ocpp_audit.protocol.errors import CallErrorReceived
from ocpp_audit.protocol.tracker import (
    Answered,
    CallStarted,
    CallTracker,
    DuplicateCall,
    PendingCall,
)

__all__ = [
    "CallErrorReceived",
    "CentralSystem",
    "CentralSystemConfig",
    "ChargePointState",
    "ReceivedCall",
    "Transaction",
]

logger = logging.getLogger(__name__)

SUBPROTOCOL = SUBPROTOCOLS[OcppVersion.V16]
# The versions it answers, by subprotocol. OCPP 2.1 is left out: its CALLs share 2.0.1's names but
# not all their payloads, and nothing here answers its new actions.
SUPPORTED_SUBPROTOCOLS = (SUBPROTOCOL, SUBPROTOCOLS[OcppVersion.V201])
# The log of received charger CALLs keeps at most this many, and payloads of at most this many bytes
# (their JSON text; the oldest go first): a charger sending large CALLs must not fill the memory of
# a central system that runs for weeks (100,000 DataTransfers of 16 MiB each would be 1.6 TB).
MAX_LOGGED_CALLS = 100_000
MAX_LOGGED_BYTES = 64 * 1024 * 1024
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
    # The transactionId of the first StartTransaction answered (then counting up): a second
    # central system with another start assigns other ids, as a new platform would (mirrors).
    first_transaction_id: int = 1

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
    diagnostics_status: str | None = None  # 1.6 DiagnosticsStatusNotification, 2.0.1 LogStatus...
    # OCPP 2.0.1: transactionId (the charger's) -> events seen, last seqNo, stoppedReason
    transactions_201: dict[str, dict[str, Any]] = field(default_factory=dict)

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


Payload = dict[str, Any]


class _ChargePointSession:
    """One charger connection: answers its CALLs and carries the central system's CALLs to it."""

    def __init__(
        self, charge_point_id: str, connection: ServerConnection, central_system: CentralSystem
    ) -> None:
        self.id = charge_point_id
        self.connection = connection
        self.central_system = central_system
        self.config = central_system.config
        self.state = central_system._state_of(charge_point_id)
        # OCPP-J section 3.1.2: the negotiated subprotocol is the version the connection speaks.
        self.version = version_of_subprotocol(connection.subprotocol) or OcppVersion.V16
        # Each CALL we send is tagged with the future of its caller.
        self.tracker = CallTracker()
        # OCPP-J 1.6 section 4.1.1: a sender has at most one CALL outstanding.
        self._call_lock = asyncio.Lock()
        self._handlers: dict[str, Callable[[Payload], Payload]] = {
            "BootNotification": self.on_boot_notification,
            "Heartbeat": self.on_heartbeat,
            "Authorize": self.on_authorize,
            "StartTransaction": self.on_start_transaction,
            "StopTransaction": self.on_stop_transaction,
            "MeterValues": self.on_meter_values,
            "StatusNotification": self.on_status_notification,
            "FirmwareStatusNotification": self.on_firmware_status_notification,
            "DiagnosticsStatusNotification": self.on_diagnostics_status_notification,
            "DataTransfer": self.on_data_transfer,
        }
        if self.version is OcppVersion.V201:
            self._handlers = {
                "BootNotification": self.on_boot_notification,
                "Heartbeat": self.on_heartbeat,
                "Authorize": self.on_authorize_201,
                "TransactionEvent": self.on_transaction_event,
                "MeterValues": self.on_meter_values_201,
                "StatusNotification": self.on_status_notification_201,
                "FirmwareStatusNotification": self.on_firmware_status_notification,
                "LogStatusNotification": self.on_log_status_notification,
                "NotifyReport": self.on_notify,
                "NotifyEvent": self.on_notify,
                "SecurityEventNotification": self.on_notify,
                "DataTransfer": self.on_data_transfer,
            }

    # -- the receive loop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Handle the charger's messages one at a time until the connection closes."""
        async for message in self.connection:
            await self.route_message(message)

    async def route_message(self, raw_msg: str | bytes) -> None:
        frame = frames.parse(raw_msg)
        event = self.tracker.feed(Direction.CP_TO_CS, frame)
        if isinstance(frame, frames.Call):
            entry = self.central_system._log_call(self.id, frame)
            try:
                await self._send(await self._answer(frame))
            finally:
                self.central_system._handled(entry)
        elif isinstance(event, Answered):
            self._resolve(event.call, frame)
        elif isinstance(frame, frames.Malformed):
            logger.warning("%s: malformed frame (%s)", self.id, frame.reason)
            if isinstance(event, CallStarted | DuplicateCall):
                # OCPP-J 1.6 section 4.2.3: "FormationViolation: Payload for Action is
                # syntactically incorrect or not conform the PDU structure for Action".
                assert frame.unique_id is not None
                error = frames.CallError.create(frame.unique_id, "FormationViolation", frame.reason)
                await self._send(error)
        else:
            unique_id = getattr(frame, "unique_id", None)
            logger.warning("%s: answer to unknown or expired unique id %r", self.id, unique_id)

    def _resolve(self, call: PendingCall, frame: frames.Frame) -> None:
        future = call.tag
        if not isinstance(future, asyncio.Future) or future.done():
            logger.warning("%s: answer to expired unique id %r", self.id, call.unique_id)
        elif isinstance(frame, frames.Malformed):
            future.set_exception(ValueError(f"{self.id}: malformed answer: {frame.reason}"))
        else:
            future.set_result(frame)

    async def _send(self, frame: frames.Call | frames.CallResult | frames.CallError) -> None:
        self.tracker.feed(Direction.CS_TO_CP, frame)
        message = frame.serialize()
        logger.debug("%s: send %s", self.id, message)
        await self.connection.send(message)

    # -- answers to the charger's CALLs ----------------------------------------------------------

    async def _answer(self, call: frames.Call) -> frames.CallResult | frames.CallError:
        """The CALLRESULT to a charger's CALL, or the CALLERROR that says why there is none."""
        validate = not self.config.skip_schema_validation
        message = ocpp.messages.Call(call.unique_id, call.action, call.payload)
        try:
            handler = self._handlers.get(call.action)
            if handler is None:
                # OCPP-J 1.6 section 4.2.3: NotImplemented "Requested Action is not known by
                # receiver"; NotSupported "Requested Action is recognized but not supported".
                # The library's choice, kept: NotImplemented for an action of the version we have
                # no handler for, NotSupported for an action that is not of the version.
                if call.action in actions(self.version):
                    raise OcppNotImplemented(
                        details={"cause": f"No handler for {call.action} registered."}
                    )
                raise NotSupportedError(
                    details={"cause": f"{call.action} not supported by OCPP{self.version.value}."}
                )
            if validate:
                await ocpp.messages.validate_payload(message, self.version.value)
            payload = handler(call.payload)
            if validate:
                await ocpp.messages.validate_payload(
                    ocpp.messages.CallResult(call.unique_id, payload, call.action),
                    self.version.value,
                )
        except OCPPError as error:
            # Schema validation failed, or no handler. The library names some codes as OCPP 2.0
            # does; OCPP-J 1.6 section 4.2.3 spells them its own way.
            code = error.code
            if self.version is OcppVersion.V16:
                code = _OCPP16_ERROR_CODES.get(error.code, error.code)
            logger.info("%s: %s answered with %s", self.id, call.action, code)
            # The library's own CALLERROR text (its details may hold objects it knows to encode).
            answer = message.create_call_error(error)
            answer.error_code = code
            error_frame = frames.parse(answer.to_json())
            assert isinstance(error_frame, frames.CallError)
            return error_frame
        except Exception:
            logger.exception("%s: handling %s failed", self.id, call.action)
            return frames.CallError.create(
                call.unique_id, "InternalError", "An unexpected error occurred."
            )
        return frames.CallResult.create(call.unique_id, payload)

    def _id_tag_info(self, id_tag: str | None) -> Payload:
        return {"status": self.central_system.authorization_status(id_tag)}

    def on_boot_notification(self, payload: Payload) -> Payload:
        # 4.2: "interval: ... the heartbeat interval in seconds" when Accepted; otherwise the
        # minimum wait before the charge point retries the BootNotification.
        self.state.boot = payload
        self.state.boots += 1
        return {
            "currentTime": _now_iso(),
            "interval": self.config.heartbeat_interval,
            "status": self.config.boot_status,
        }

    def on_heartbeat(self, payload: Payload) -> Payload:
        self.state.heartbeats += 1
        return {"currentTime": _now_iso()}

    def on_authorize(self, payload: Payload) -> Payload:
        return {"idTagInfo": self._id_tag_info(payload.get("idTag"))}

    def on_start_transaction(self, payload: Payload) -> Payload:
        # 4.8: the answer always carries a transactionId, even when the idTag is not Accepted
        # (the charge point then stops the transaction itself).
        id_tag = payload.get("idTag", "")
        id_tag_info = self._id_tag_info(id_tag)
        transaction_id = self.central_system._next_transaction_id()
        self.state.transactions[transaction_id] = Transaction(
            transaction_id=transaction_id,
            id_tag=id_tag,
            connector_id=payload.get("connectorId", 0),
            meter_start=payload.get("meterStart", 0),
            start_timestamp=payload.get("timestamp", ""),
            id_tag_status=id_tag_info["status"],
        )
        return {"transactionId": transaction_id, "idTagInfo": id_tag_info}

    def on_stop_transaction(self, payload: Payload) -> Payload:
        transaction_id = payload.get("transactionId")
        transaction = self.state.transactions.get(transaction_id)  # type: ignore[arg-type]
        if transaction is None:
            # 4.10: the Central System must accept a StopTransaction even for a transaction it
            # does not know (it may come from a charger's offline queue); log it, answer anyway.
            logger.warning(
                "%s: StopTransaction for unknown transaction %r", self.id, transaction_id
            )
        else:
            transaction.meter_stop = payload.get("meterStop")
            transaction.stop_timestamp = payload.get("timestamp") or _now_iso()
            # 7.45 Reason: "Local" is the default when the field is omitted.
            transaction.stop_reason = payload.get("reason") or "Local"
        id_tag = payload.get("idTag")
        return {} if id_tag is None else {"idTagInfo": self._id_tag_info(id_tag)}

    def on_meter_values(self, payload: Payload) -> Payload:
        transaction = self.state.transactions.get(payload.get("transactionId"))  # type: ignore[arg-type]
        if transaction is not None:
            transaction.meter_values += 1
        return {}

    def on_status_notification(self, payload: Payload) -> Payload:
        self.state.connector_status[payload.get("connectorId", 0)] = payload
        return {}

    def on_firmware_status_notification(self, payload: Payload) -> Payload:
        self.state.firmware_status = payload.get("status")
        return {}

    def on_diagnostics_status_notification(self, payload: Payload) -> Payload:
        self.state.diagnostics_status = payload.get("status")
        return {}

    def on_data_transfer(self, payload: Payload) -> Payload:
        # OCPP 1.6 section 4.3: "If the recipient of the request has no implementation for the
        # specific vendorId it SHALL return a status 'UnknownVendorId'". This central system
        # implements no vendor extension, so that is the truthful answer for every vendorId.
        return {"status": "UnknownVendorId"}

    # -- OCPP 2.0.1 ------------------------------------------------------------------------------

    def _id_token_info(self, id_token: Any) -> Payload:
        token = id_token.get("idToken") if isinstance(id_token, dict) else None
        return {"status": self.central_system.authorization_status(token)}

    def on_authorize_201(self, payload: Payload) -> Payload:
        # OCPP 2.0.1 C01: AuthorizeResponse {idTokenInfo{status}}.
        return {"idTokenInfo": self._id_token_info(payload.get("idToken"))}

    def on_transaction_event(self, payload: Payload) -> Payload:
        """OCPP 2.0.1 E01-E07: the transaction and its id are the charger's; idTokenInfo answers
        an idToken when the event carries one (E01.FR.xx)."""
        info = payload.get("transactionInfo") or {}
        transaction_id = str(info.get("transactionId", ""))
        transactions = self.state.transactions_201
        transaction = transactions.setdefault(transaction_id, {"events": 0})
        transaction["events"] += 1
        transaction["last_seq_no"] = payload.get("seqNo")
        if payload.get("eventType") == "Ended":
            transaction["stopped_reason"] = info.get("stoppedReason") or "Local"
        if "idToken" in payload:
            return {"idTokenInfo": self._id_token_info(payload["idToken"])}
        return {}

    def on_meter_values_201(self, payload: Payload) -> Payload:
        return {}

    def on_status_notification_201(self, payload: Payload) -> Payload:
        # Keyed by (evseId, connectorId): a 2.0.1 connector is numbered within its EVSE.
        key = (payload.get("evseId", 0), payload.get("connectorId", 0))
        self.state.connector_status[key] = payload  # type: ignore[index]
        return {}

    def on_log_status_notification(self, payload: Payload) -> Payload:
        self.state.diagnostics_status = payload.get("status")
        return {}

    def on_notify(self, payload: Payload) -> Payload:
        # NotifyReport, NotifyEvent, SecurityEventNotification: the answers have no fields.
        return {}

    # -- server-initiated CALLs ------------------------------------------------------------------

    async def call_action(self, action: str, payload: Payload) -> Payload:
        """Send ``[2, id, action, payload]`` with the payload as given; the caller bounds the time.

        OCPP-J 1.6 section 4.1.1: a sender has at most one CALL outstanding, hence the lock.
        """
        async with self._call_lock:
            call = frames.Call.create(str(uuid.uuid4()), action, payload)
            future: asyncio.Future[frames.Frame] = asyncio.get_running_loop().create_future()
            self.tracker.feed(Direction.CS_TO_CP, call, tag=future)
            try:
                await self.connection.send(call.serialize())
                answer = await future
            finally:
                if not future.done() or future.cancelled():
                    # Not answered: section 4.1.1 lets the next CALL go once this one "timed out".
                    self.tracker.timed_out(Direction.CS_TO_CP, call.unique_id)
        if isinstance(answer, frames.CallError):
            raise CallErrorReceived(
                answer.error_code, answer.error_description, answer.error_details
            )
        assert isinstance(answer, frames.CallResult)
        return answer.payload

    def connection_lost(self) -> None:
        for call in self.tracker.connection_lost():
            future = call.tag
            if isinstance(future, asyncio.Future) and not future.done():
                future.set_exception(
                    ConnectionError(f"charge point {self.id!r} disconnected before answering")
                )


def _select_subprotocol(connection: ServerConnection, subprotocols: Any) -> str | None:
    # OCPP-J 1.6 section 3.1.2: the charge point offers "ocpp1.6" in Sec-WebSocket-Protocol;
    # OCPP 2.0.1 part 4 section 3.1.2 likewise "ocpp2.0.1". The first offered that we speak, in the
    # charger's order of preference; a charger that offers nothing (or only something else) is
    # still accepted, without a subprotocol, as lenient central systems do.
    for offered in subprotocols:
        if offered in SUPPORTED_SUBPROTOCOLS:
            return str(offered)
    return None


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
        self._transaction_ids = itertools.count(self.config.first_transaction_id)
        self._log: deque[tuple[ReceivedCall, int]] = deque()  # with each payload's JSON size
        self._log_bytes = 0
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
                previous.connection.close(1000, "replaced by a new connection")
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
        """The logged charger CALLs (the last 100,000, at most 64 MiB of payloads), oldest first,
        optionally filtered."""
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
        return (entry for entry, _ in itertools.islice(self._log, max(0, after - first), None))

    def _log_call(self, charge_point_id: str, frame: frames.Call) -> ReceivedCall:
        entry = ReceivedCall(
            self._logged,
            charge_point_id,
            frame.unique_id,
            frame.action,
            frame.payload,
            time.time(),
        )
        size = len(frame.payload_json)
        self._log.append((entry, size))
        self._log_bytes += size
        self._logged += 1
        while len(self._log) > 1 and (
            len(self._log) > MAX_LOGGED_CALLS or self._log_bytes > MAX_LOGGED_BYTES
        ):
            self._log_bytes -= self._log.popleft()[1]
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
