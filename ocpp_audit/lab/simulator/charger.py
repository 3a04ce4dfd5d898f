"""A simulated OCPP 1.6-J charger over a real WebSocket, built on the ``ocpp`` library's v16
``ChargePoint`` (used here as the client side).

The charger keeps its physical state (cables, faults, meters, transactions) in
:class:`SimulatedCharger`; each WebSocket connection gets a fresh :class:`_Link` (the ``ocpp``
``ChargePoint``) that answers the central system's CALLs and sends the charger's own. Every physical
step (plug in, swipe a card, lose the network, ...) is a coroutine that returns once the charger's
resulting messages are sent (or queued, while offline).

Timing is real: payload timestamps are the real UTC time, intervals are real seconds (small in the
tests). One CALL in flight at a time, as OCPP-J 1.6 section 4.1.1 asks: "A Charge Point or Central
System SHOULD NOT send a CALL message to the other party unless all the CALL messages it sent
before have been responded to or have timed out."
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import logging
import random
import re
import uuid
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16 import call as ocpp_call
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ocpp_audit.display import wire_logger
from ocpp_audit.lab.simulator.configuration import ConfigurationStore
from ocpp_audit.lab.simulator.profiles import ALL_PROFILES, PROFILES, PROFILES_V201, Profile
from ocpp_audit.lab.simulator.transfers import (
    download_firmware,
    is_loopback_location,
    upload_diagnostics,
)
from ocpp_audit.protocol.constants import SUBPROTOCOLS, OcppVersion

__all__ = ["ChargerTiming", "SimulatedCharger"]

logger = logging.getLogger(__name__)

SUBPROTOCOL = SUBPROTOCOLS[OcppVersion.V16]
PHASES = ("L1", "L2", "L3")
NOMINAL_VOLTAGE = 230.0


@dataclass
class ChargerTiming:
    """Real seconds; small values for the tests, realistic ones for a fleet."""

    heartbeat_interval: int = 60  # HeartbeatInterval before the BootNotification answer sets one
    meter_value_sample_interval: int = 10  # MeterValueSampleInterval at power-on
    connection_timeout: int = 30  # ConnectionTimeOut: plugged in without a start -> Available
    reboot_delay: float = 0.3  # from Reset / firmware install to the new connection
    reconnect_delay: float = 1.0  # after the backend closed the connection unexpectedly
    boot_retry: float = 10.0  # BootNotification retry when Pending/Rejected came with interval 0
    transfer_step: float = 0.2  # between firmware / diagnostics status notifications
    response_timeout: float = 10.0  # waiting for a CALLRESULT
    open_timeout: float = 10.0  # WebSocket handshake
    charging_power_w: float = 11_000.0  # three phases, 16 A, 230 V


class _State(enum.Enum):
    OFFLINE = "offline"  # no connection
    BOOTING = "booting"  # connected: BootNotification and the offline queue go first
    READY = "ready"  # connected, booted, queue delivered: new messages flow


@dataclass
class Transaction:
    connector_id: int
    id_tag: str
    transaction_id: int  # negative (local) until the central system's answer gives the real one
    meter_start: int
    reservation_id: int | None = None


@dataclass
class Reservation:
    reservation_id: int
    id_tag: str
    expiry: datetime
    expiry_task: asyncio.Task[None] | None = None


@dataclass
class Connector:
    connector_id: int
    status: str = "Available"
    error_code: str = "NoError"
    info: str | None = None
    reported: tuple[str, str] | None = None  # (status, errorCode) the central system last got
    plugged: bool = False
    operative: bool = True
    inoperative_scheduled: bool = False  # ChangeAvailability Scheduled: applied after the tx ends
    faulted: bool = False
    authorized_id_tag: str | None = None  # authorized, waiting for the cable
    transaction: Transaction | None = None
    reservation: Reservation | None = None
    energy_wh: float = 0.0
    meter_updated: float = 0.0  # loop time of the last energy update
    meter_task: asyncio.Task[None] | None = None
    timeout_task: asyncio.Task[None] | None = None
    # one start or stop at a time per connector, as the charger's firmware would do
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Queued:
    payload: Any  # an ocpp.v16.call dataclass: StartTransaction, MeterValues or StopTransaction
    transaction: Transaction | None = None


@dataclass
class ChargerStats:
    connects: int = 0
    boots: int = 0
    calls_sent: int = 0
    call_errors: int = 0
    call_timeouts: int = 0
    commands_answered: int = 0
    transactions: int = 0
    queued: int = 0
    queue_delivered: int = 0
    queue_discarded: int = 0
    dropped_offline: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def utc_now() -> str:
    """OCPP 1.6 dateTime: ISO 8601 UTC, e.g. 2024-05-01T12:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SimulatedCharger:
    """One OCPP 1.6-J charger with ``connectors`` connectors and a behaviour ``profile``."""

    vendor = "OcppAudit"
    model = "SimCharger-22"
    ocpp_version = OcppVersion.V16  # the profiles it runs: those of its version
    subprotocol = SUBPROTOCOL

    def __init__(
        self,
        charge_point_id: str,
        target_url: str,
        *,
        profile: str = "good",
        connectors: int = 2,
        auth: tuple[str, str] | None = None,
        timing: ChargerTiming | None = None,
        firmware_version: str = "1.4.0",
    ) -> None:
        known = PROFILES if self.ocpp_version is OcppVersion.V16 else PROFILES_V201
        if profile not in known:
            if profile in ALL_PROFILES:
                raise ValueError(
                    f"profile {profile!r} is an OCPP {ALL_PROFILES[profile].ocpp_version} "
                    "profile: simulated_charger() makes the charger of its version"
                )
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(known)}")
        if connectors < 1:
            raise ValueError("a charger has at least one connector")
        self.charge_point_id = charge_point_id
        self.url = f"{target_url.rstrip('/')}/{charge_point_id}"
        self.profile: Profile = known[profile]
        self.auth = auth
        self.timing = timing or ChargerTiming()
        self.firmware_version = firmware_version
        # CiString25 fields: derived from the id, short whatever the id's length
        digest = zlib.crc32(charge_point_id.encode())
        self.serial_number = f"SIM-{digest:08X}"
        self.meter_serial_number = f"MTR-{digest:08X}"
        self.iccid = "8931" + f"{digest * 7919 % 10**15:015d}"
        self.config = ConfigurationStore(
            connectors=connectors,
            heartbeat_interval=self.timing.heartbeat_interval,
            meter_value_sample_interval=self.timing.meter_value_sample_interval,
            connection_timeout=self.timing.connection_timeout,
        )
        self.config.set("SimBackendUrl", self.url)
        # connector 0 is the charger itself (OCPP 1.6 section 4.9)
        self.connectors = [Connector(i) for i in range(connectors + 1)]
        self.stats = ChargerStats()
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.local_list_version = 0
        self.local_list: dict[str, str] = {}  # idTag -> status
        self.auth_cache: dict[str, str] = {}  # idTag -> status (OCPP 1.6 section 3.5.1)
        self._random = random.Random(charge_point_id)
        self._state = _State.OFFLINE
        self._ws: ClientConnection | None = None
        self._link: _Link | None = None
        self._recv_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._send_lock = asyncio.Lock()
        self._queue: list[_Queued] = []
        self._next_local_id = -1
        self._network_up = asyncio.Event()
        self._network_up.set()
        self._ready = asyncio.Event()
        self._offline = asyncio.Event()
        self._offline.set()
        self._startup: asyncio.Future[None] | None = None
        self._boot_needed = True
        self._reboot_pending = False
        self._new_firmware_version: str | None = None
        self._malformed_sent = False
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._supervisor is not None and not self._supervisor.done()

    @property
    def online(self) -> bool:
        return self._state is _State.READY

    @property
    def heartbeat_interval(self) -> int:
        return self.config.get_int("HeartbeatInterval")

    @property
    def meter_value_sample_interval(self) -> int:
        return self.config.get_int("MeterValueSampleInterval")

    async def start(self) -> None:
        """Connect, send BootNotification, then StatusNotification for connectors 0..n.

        Returns once the charger is booted (or the first BootNotification was answered Pending or
        Rejected; it then retries in the background). Raises the connection error if the first
        connection fails (e.g. ``websockets.exceptions.InvalidStatus`` for a 401).
        """
        if self.started:
            return
        self._stopping = False
        self._startup = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"charger {self.charge_point_id}"
        )
        try:
            await self._startup
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the connection (1000) and stop every task; the charger can be started again."""
        self._stopping = True
        for connector in self.connectors:
            _cancel(connector.meter_task)
            _cancel(connector.timeout_task)
            if connector.reservation is not None:
                _cancel(connector.reservation.expiry_task)
        _cancel(self._heartbeat_task)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(1000, "charger stopped"), 5)
        tasks = [*self._tasks, self._supervisor]
        for task in tasks:
            _cancel(task)
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        self._tasks.clear()
        self._supervisor = None

    async def wait_ready(self, timeout: float = 10) -> None:
        """Wait until connected, booted and the offline queue is delivered."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    # ------------------------------------------------------------------ physical steps

    async def plug_in(self, connector_id: int = 1) -> None:
        """The driver plugs the cable in (OCPP 1.6 section 4.9: Available -> Preparing)."""
        connector = self._connector(connector_id)
        connector.plugged = True
        if connector.faulted or not connector.operative or connector.transaction is not None:
            return
        if connector.authorized_id_tag is not None:
            await self._start_transaction(connector, connector.authorized_id_tag)
            return
        await self._set_status(connector, "Preparing")
        self._arm_connection_timeout(connector)

    async def unplug(self, connector_id: int = 1) -> None:
        """The driver pulls the cable: a running transaction stops with reason EVDisconnected."""
        connector = self._connector(connector_id)
        connector.plugged = False
        _cancel(connector.timeout_task)
        connector.authorized_id_tag = None
        if connector.transaction is not None:
            # StopTransactionOnEVSideDisconnect = true: "the transaction SHALL be stopped when
            # the cable is disconnected from the EV" (OCPP 1.6 section 9.1).
            await self._stop_transaction(connector, "EVDisconnected")
        elif connector.status in ("Preparing", "Finishing"):
            await self._set_status(connector, self._idle_status(connector))

    async def swipe(self, id_tag: str, connector_id: int = 1) -> None:
        """Present an RFID card: Authorize, then start (or stop the running transaction)."""
        connector = self._connector(connector_id)
        transaction = connector.transaction
        if transaction is not None:
            # The tag that started the transaction may stop it without a new Authorize.
            if id_tag == transaction.id_tag or await self._authorize(id_tag) == "Accepted":
                await self._stop_transaction(connector, "Local", id_tag=id_tag)
            return
        if connector.faulted or not connector.operative:
            return
        reservation = connector.reservation
        if reservation is not None and reservation.id_tag != id_tag:
            logger.info(
                "%s: connector %d reserved for another tag", self.charge_point_id, connector_id
            )
            return
        if await self._authorize(id_tag) != "Accepted":
            return  # "If not approved the sequence must stop"
        await self._authorized(connector, id_tag)

    async def lose_network(self) -> None:
        """Drop the connection abruptly (no closing handshake); transaction messages queue."""
        self._network_up.clear()
        self._ready.clear()
        if self._ws is not None and self._ws.transport is not None:
            self._ws.transport.abort()
        await asyncio.wait_for(self._offline.wait(), self.timing.open_timeout)

    async def restore_network(self) -> None:
        """Reconnect, boot if needed, deliver the offline queue in order, then new messages."""
        self._network_up.set()
        await asyncio.wait_for(
            self._ready.wait(), self.timing.open_timeout + self.timing.response_timeout * 3
        )

    async def raise_fault(self, connector_id: int = 1, error_code: str = "GroundFailure") -> None:
        """A hardware error; on connector 0 it is the charger itself (OCPP 1.6 section 4.9)."""
        connector = self._connector(connector_id, allow_zero=True)
        connector.faulted = True
        _cancel(connector.timeout_task)
        if connector.transaction is not None:
            await self._stop_transaction(connector, "Other", send_status=False)
        await self._set_status(
            connector,
            "Faulted",
            error_code=error_code,
            info=f"simulated {error_code}",
        )

    async def clear_fault(self, connector_id: int = 1) -> None:
        connector = self._connector(connector_id, allow_zero=True)
        connector.faulted = False
        await self._set_status(connector, self._idle_status(connector))

    # ------------------------------------------------------------------ summaries

    def transaction_id(self, connector_id: int = 1) -> int | None:
        transaction = self._connector(connector_id).transaction
        return None if transaction is None else transaction.transaction_id

    def summary(self) -> dict[str, object]:
        s = self.stats
        return {
            "charge_point_id": self.charge_point_id,
            "profile": self.profile.name,
            "state": self._state.value,
            "firmware_version": self.firmware_version,
            "connects": s.connects,
            "boots": s.boots,
            "calls_sent": s.calls_sent,
            "call_errors": s.call_errors,
            "call_timeouts": s.call_timeouts,
            "commands_answered": s.commands_answered,
            "transactions": s.transactions,
            "queued": s.queued,
            "queue_delivered": s.queue_delivered,
            "queue_discarded": s.queue_discarded,
        }

    # ------------------------------------------------------------------ connection

    async def _supervise(self) -> None:
        """Keep one connection up while the network is; reboot when asked to."""
        while not self._stopping:
            await self._network_up.wait()
            if self._reboot_pending:
                await asyncio.sleep(self.timing.reboot_delay)
                self._power_on()
            try:
                await self._connect()
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                if self._startup is not None and not self._startup.done():
                    self._startup.set_exception(exc)
                    return
                logger.warning("%s: cannot connect: %s", self.charge_point_id, exc)
                await asyncio.sleep(self.timing.reconnect_delay)
                continue
            try:
                await self._bring_up()
                if self._recv_task is not None:
                    await self._recv_task
            finally:
                self._went_offline()
            if self._startup is not None and not self._startup.done():
                self._startup.set_exception(ConnectionError("connection closed during boot"))
                return
            if self._stopping or self._reboot_pending or not self._network_up.is_set():
                continue
            logger.info(
                "%s: connection closed by the other side, reconnecting", self.charge_point_id
            )
            await asyncio.sleep(self.timing.reconnect_delay)

    async def _connect(self) -> None:
        headers = {}
        if self.auth is not None:
            # OCPP 1.6 security whitepaper, profile 1: HTTP Basic authentication.
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        ws = await connect(
            self.url,
            subprotocols=[self.subprotocol],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=self.timing.open_timeout,
            compression=None,
            ping_interval=None,  # the OCPP Heartbeat keeps the connection alive
            proxy=None,
            logger=wire_logger(__name__ + ".wire"),  # no Basic-auth header or frame at -vv
            max_size=16 * 1024 * 1024,
        )
        if ws.subprotocol != self.subprotocol:
            logger.warning("%s: backend chose subprotocol %r", self.charge_point_id, ws.subprotocol)
        self.stats.connects += 1
        self._ws = ws
        self._link = self._new_link(ws)
        self._offline.clear()
        self._state = _State.BOOTING
        self._recv_task = asyncio.create_task(self._receive(self._link))

    def _new_link(self, connection: ClientConnection) -> Any:
        """The ``ocpp`` ChargePoint that answers the central system on this connection."""
        return _Link(self, connection)

    async def _receive(self, link: _Link) -> None:
        with contextlib.suppress(ConnectionClosed):
            await link.start()

    async def _bring_up(self) -> None:
        booted_now = False
        if self._boot_needed:
            if not await self._boot():
                return
            booted_now = True
        # OCPP 1.6 section 4.7/4.8: transaction messages kept while offline are sent first,
        # in the order they were produced.
        if not await self._deliver_queue():
            return
        if booted_now:
            for connector in self.connectors:
                connector.reported = None
        for connector in self.connectors:
            if connector.reported != (connector.status, connector.error_code):
                await self._send_status(connector, early=True)
        if self._state is not _State.BOOTING:
            return
        self._state = _State.READY
        self._ready.set()
        self._restart_heartbeat()
        if self._startup is not None and not self._startup.done():
            self._startup.set_result(None)
        if self.profile.malformed_frame_after_boot and not self._malformed_sent:
            await self._send_malformed_frame()

    def _went_offline(self) -> None:
        self._state = _State.OFFLINE
        self._ready.clear()
        _cancel(self._heartbeat_task)
        self._ws = None
        self._link = None
        self._offline.set()

    def _power_on(self) -> None:
        """The state a charger has after a reboot: no transactions, everything re-reported."""
        self._reboot_pending = False
        self._boot_needed = True
        if self._new_firmware_version is not None:
            self.firmware_version = self._new_firmware_version
            self._new_firmware_version = None
            self.firmware_status = "Idle"
        for connector in self.connectors:
            connector.authorized_id_tag = None
            connector.reported = None
            if connector.connector_id and not connector.faulted and connector.operative:
                connector.status = "Preparing" if connector.plugged else "Available"
                connector.error_code = "NoError"
                connector.info = None
                if connector.plugged:
                    self._arm_connection_timeout(connector)

    async def _boot(self) -> bool:
        """BootNotification until Accepted (OCPP 1.6 section 4.2)."""
        while self._state is _State.BOOTING:
            payload = ocpp_call.BootNotification(
                charge_point_model=self.model,
                charge_point_vendor=self.vendor,
                firmware_version=self.firmware_version,
                charge_point_serial_number=(
                    self.serial_number if self.profile.send_serial_and_iccid else None
                ),
                iccid=self.iccid if self.profile.send_serial_and_iccid else None,
                meter_type="SimMeter 3P",
                meter_serial_number=self.meter_serial_number,
            )
            result = await self._call(payload, early=True)
            if result is None:
                if self._state is not _State.BOOTING:
                    return False
                await asyncio.sleep(self.timing.boot_retry)
                continue
            self.stats.boots += 1
            if result.status == "Accepted":
                # "interval: ... the heartbeat interval in seconds" once Accepted.
                if result.interval > 0:
                    self.config.set("HeartbeatInterval", str(result.interval))
                self._boot_needed = False
                return True
            # "If the Central System returns something other than Accepted, the value of the
            # interval field indicates the minimum wait time before sending a next
            # BootNotification request."
            if self._startup is not None and not self._startup.done():
                self._startup.set_result(None)
            await asyncio.sleep(result.interval if result.interval > 0 else self.timing.boot_retry)
        return False

    async def _deliver_queue(self) -> bool:
        """Send the offline queue in order; True when it is empty."""
        while self._queue:
            if self._state is not _State.BOOTING:
                return False
            item = self._queue[0]
            if self._discarded_from_queue(item.payload):
                self._queue.pop(0)
                self.stats.queue_discarded += 1
                continue
            result = await self._call(item.payload, early=True, from_queue=True)
            if result is None and self._state is not _State.BOOTING:
                return False  # connection lost: the item stays at the head of the queue
            self._queue.pop(0)
            self.stats.queue_delivered += 1
            if isinstance(item.payload, ocpp_call.StartTransaction) and result is not None:
                self._confirm_transaction(item.transaction, result)
        return True

    def _discarded_from_queue(self, payload: Any) -> bool:
        """The faulty profile's loss: queued MeterValues are dropped instead of delivered."""
        return (
            isinstance(payload, ocpp_call.MeterValues)
            and not self.profile.deliver_queued_meter_values
        )

    def _confirm_transaction(self, transaction: Transaction | None, result: Any) -> None:
        """The real transactionId replaces the local one, here and in later queued messages."""
        if transaction is None:
            return
        local_id, real_id = transaction.transaction_id, result.transaction_id
        transaction.transaction_id = real_id
        for item in self._queue:
            payload = item.payload
            if getattr(payload, "transaction_id", None) == local_id:
                payload.transaction_id = real_id
        status = (result.id_tag_info or {}).get("status")
        if status not in (None, "Accepted"):
            logger.info(
                "%s: StartTransaction idTagInfo %s for transaction %s",
                self.charge_point_id,
                status,
                real_id,
            )

    async def _call(
        self, payload: Any, *, queue: bool = False, early: bool = False, from_queue: bool = False
    ) -> Any | None:
        """Send one CALL and return the answer (an ``ocpp.v16.call_result`` object), or None.

        ``queue``: a transaction message; queued while offline (or behind earlier queued ones).
        ``early``: may go before the charger is READY (BootNotification, the queue, statuses).
        None when queued, dropped offline, answered with a CALLERROR or not answered in time.
        """
        action = type(payload).__name__
        if queue and not from_queue and (self._state is not _State.READY or self._queue):
            self._queue.append(_Queued(payload, self._transaction_of(payload)))
            self.stats.queued += 1
            return None
        if not early and self._state is _State.BOOTING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self.timing.response_timeout)
        if self._state is _State.OFFLINE or (not early and self._state is not _State.READY):
            self.stats.dropped_offline += 1
            logger.debug("%s: offline, %s not sent", self.charge_point_id, action)
            return None
        link, recv_task = self._link, self._recv_task
        assert link is not None and recv_task is not None
        async with self._send_lock:
            if self._link is not link:
                return await self._requeue(payload, queue, from_queue)
            self.stats.calls_sent += 1
            call_task = asyncio.ensure_future(link.call(payload, suppress=False))
            # if this coroutine is cancelled (stop, a stopped meter), the answer is not awaited
            call_task.add_done_callback(_retrieve)
            await asyncio.wait({call_task, recv_task}, return_when=asyncio.FIRST_COMPLETED)
            if not call_task.done():
                call_task.cancel()
                with contextlib.suppress(BaseException):
                    await call_task
                return await self._requeue(payload, queue, from_queue)
            try:
                return call_task.result()
            except OCPPError as exc:
                self.stats.call_errors += 1
                logger.warning("%s: %s failed: %r", self.charge_point_id, action, exc)
            except TimeoutError:
                self.stats.call_timeouts += 1
                logger.warning("%s: %s not answered in time", self.charge_point_id, action)
            except ConnectionClosed:
                return await self._requeue(payload, queue, from_queue)
            return None

    async def _requeue(self, payload: Any, queue: bool, from_queue: bool) -> None:
        """The connection went while the CALL was in flight: keep a transaction message."""
        if queue and not from_queue:
            # at-least-once, as real chargers do: it goes first, it is the oldest one
            self._queue.insert(0, _Queued(payload, self._transaction_of(payload)))
            self.stats.queued += 1
        return None

    def _transaction_of(self, payload: Any) -> Transaction | None:
        transaction_id = getattr(payload, "transaction_id", None)
        if isinstance(payload, ocpp_call.StartTransaction):
            connector = self.connectors[payload.connector_id]
            return connector.transaction
        for connector in self.connectors:
            tx = connector.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                return tx
        return None

    async def _send_malformed_frame(self) -> None:
        """One StatusNotification with a trailing comma: not JSON, so not OCPP-J."""
        self._malformed_sent = True
        raw = (
            f'[2,"{uuid.uuid4()}","StatusNotification",{{"connectorId":0,"errorCode":"NoError",'
            f'"status":"{self.connectors[0].status}","timestamp":"{utc_now()}",}}]'
        )
        async with self._send_lock:
            if self._ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self._ws.send(raw)
                    self.stats.extra["malformed_frames"] = 1

    # ------------------------------------------------------------------ heartbeat

    def _restart_heartbeat(self) -> None:
        _cancel(self._heartbeat_task)
        if self._state is _State.READY:
            self._heartbeat_task = asyncio.create_task(self._heartbeats())

    async def _heartbeats(self) -> None:
        """OCPP 1.6 section 4.6: a Heartbeat every HeartbeatInterval seconds."""
        while True:
            interval = self.heartbeat_interval
            if interval <= 0:
                return
            await asyncio.sleep(interval * self.profile.heartbeat_factor)
            await self._call(self._heartbeat())

    def _heartbeat(self) -> Any:
        return ocpp_call.Heartbeat()

    # ------------------------------------------------------------------ status

    def _connector(self, connector_id: int, *, allow_zero: bool = False) -> Connector:
        low = 0 if allow_zero else 1
        if not low <= connector_id < len(self.connectors):
            raise ValueError(f"{self.charge_point_id} has no connector {connector_id}")
        return self.connectors[connector_id]

    def _idle_status(self, connector: Connector) -> str:
        if connector.faulted:
            return "Faulted"
        if not connector.operative:
            return "Unavailable"
        if connector.connector_id == 0:
            return "Available"
        if connector.reservation is not None:
            return "Reserved"
        return "Available"

    async def _set_status(
        self,
        connector: Connector,
        status: str,
        *,
        error_code: str = "NoError",
        info: str | None = None,
    ) -> None:
        if connector.status == status and connector.error_code == error_code:
            return
        connector.status, connector.error_code, connector.info = status, error_code, info
        await self._send_status(connector)

    async def _send_status(self, connector: Connector, *, early: bool = False) -> None:
        """StatusNotification (OCPP 1.6 section 4.9); kept as pending while offline."""
        payload = ocpp_call.StatusNotification(
            connector_id=connector.connector_id,
            error_code=connector.error_code,
            status=connector.status,
            timestamp=utc_now(),
            info=connector.info,
            vendor_error_code=(
                None if connector.error_code == "NoError" else f"E-{connector.error_code[:8]}"
            ),
        )
        reported = (connector.status, connector.error_code)
        if await self._call(payload, early=early) is not None:
            connector.reported = reported

    def _arm_connection_timeout(self, connector: Connector) -> None:
        _cancel(connector.timeout_task)
        connector.timeout_task = self._spawn(self._connection_timeout(connector))

    async def _connection_timeout(self, connector: Connector) -> None:
        """ConnectionTimeOut: "Interval ... from beginning of status: 'Preparing' until
        incipient Transaction is automatically canceled, due to failure of EV driver to
        (correctly) insert the charging cable connector(s) into the appropriate socket(s)."
        """
        await asyncio.sleep(self.config.get_int("ConnectionTimeOut"))
        if connector.transaction is None and connector.status == "Preparing":
            connector.authorized_id_tag = None
            connector.timeout_task = None
            await self._set_status(connector, self._idle_status(connector))

    # ------------------------------------------------------------------ authorization

    async def _authorize(self, id_tag: str) -> str:
        """Authorize online; offline use the local list, the cache, or AllowOfflineTxForUnknownId."""
        if self._state is _State.READY:
            result = await self._call(ocpp_call.Authorize(id_tag=id_tag))
            if result is not None:
                status = (result.id_tag_info or {}).get("status", "Invalid")
                if self.config.get_bool("AuthorizationCacheEnabled"):
                    self.auth_cache[id_tag] = status
                return status
        if self.config.get_bool("LocalAuthorizeOffline"):
            known = self.local_list.get(id_tag) or self.auth_cache.get(id_tag)
            if known is not None:
                return known
        return "Accepted" if self.config.get_bool("AllowOfflineTxForUnknownId") else "Invalid"

    async def _authorized(self, connector: Connector, id_tag: str) -> None:
        connector.authorized_id_tag = id_tag
        if connector.plugged:
            await self._start_transaction(connector, id_tag)
            return
        # OCPP 1.6 section 4.9, A2: Available -> Preparing "when a user presents a tag".
        await self._set_status(connector, "Preparing")
        self._arm_connection_timeout(connector)

    # ------------------------------------------------------------------ transactions

    def _advance_meter(self, connector: Connector) -> None:
        now = asyncio.get_running_loop().time()
        if connector.transaction is not None and connector.status == "Charging":
            connector.energy_wh += (
                self.timing.charging_power_w * (now - connector.meter_updated) / 3600
            )
        connector.meter_updated = now

    def _sampled_values(self, connector: Connector, context: str) -> list[dict[str, str]]:
        """One reading of the measurands in MeterValuesSampledData (OCPP 1.6 section 9.1)."""
        self._advance_meter(connector)
        charging = connector.transaction is not None and connector.status == "Charging"
        wanted = set(self.config.get("MeterValuesSampledData").split(","))
        base = {"context": context, "format": "Raw", "location": "Outlet"}
        values: list[dict[str, str]] = []
        if "Energy.Active.Import.Register" in wanted:
            values.append(
                {
                    "value": str(int(connector.energy_wh)),
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                    **base,
                }
            )
        voltages = [NOMINAL_VOLTAGE + self._random.uniform(-3, 3) for _ in PHASES]
        per_phase_w = self.timing.charging_power_w / 3 if charging else 0.0
        currents = [
            per_phase_w / v * self._random.uniform(0.97, 1.0) if charging else 0.0 for v in voltages
        ]
        if "Power.Active.Import" in wanted:
            power = sum(v * i for v, i in zip(voltages, currents, strict=True))
            values.append(
                {"value": f"{power:.1f}", "measurand": "Power.Active.Import", "unit": "W", **base}
            )
        if "Current.Import" in wanted:
            for phase, current in zip(PHASES, currents, strict=True):
                values.append(
                    {
                        "value": f"{current:.2f}",
                        "measurand": "Current.Import",
                        "phase": phase,
                        "unit": "A",
                        **base,
                    }
                )
        if "Voltage" in wanted:
            for phase, voltage in zip(PHASES, voltages, strict=True):
                values.append(
                    {
                        "value": f"{voltage:.1f}",
                        "measurand": "Voltage",
                        "phase": f"{phase}-N",
                        "unit": "V",
                        **base,
                    }
                )
        return values

    def _meter_value(self, connector: Connector, context: str) -> dict[str, object]:
        return {"timestamp": utc_now(), "sampledValue": self._sampled_values(connector, context)}

    async def _start_transaction(self, connector: Connector, id_tag: str) -> None:
        """StartTransaction (OCPP 1.6 section 4.10), then Charging and a Transaction.Begin sample."""
        async with connector.lock:
            if connector.transaction is None:
                await self._start_transaction_locked(connector, id_tag)

    async def _start_transaction_locked(self, connector: Connector, id_tag: str) -> None:
        _cancel(connector.timeout_task)
        connector.authorized_id_tag = None
        self._advance_meter(connector)
        reservation = connector.reservation
        transaction = Transaction(
            connector_id=connector.connector_id,
            id_tag=id_tag,
            transaction_id=self._next_local_id,
            meter_start=int(connector.energy_wh),
            reservation_id=reservation.reservation_id if reservation else None,
        )
        self._next_local_id -= 1
        if reservation is not None:
            _cancel(reservation.expiry_task)
            connector.reservation = None
        connector.transaction = transaction
        self.stats.transactions += 1
        result = await self._call(
            ocpp_call.StartTransaction(
                connector_id=connector.connector_id,
                id_tag=id_tag,
                meter_start=transaction.meter_start,
                timestamp=utc_now(),
                reservation_id=transaction.reservation_id,
            ),
            queue=True,
        )
        if result is not None:
            self._confirm_transaction(transaction, result)
        await self._set_status(connector, "Charging")
        await self._call(
            ocpp_call.MeterValues(
                connector_id=connector.connector_id,
                transaction_id=transaction.transaction_id,
                meter_value=[self._meter_value(connector, "Transaction.Begin")],
            ),
            queue=True,
        )
        self._restart_meter(connector)

    async def _stop_transaction(
        self,
        connector: Connector,
        reason: str,
        *,
        id_tag: str | None = None,
        send_status: bool = True,
    ) -> None:
        """StopTransaction with transactionData (OCPP 1.6 section 4.10 and 6.50)."""
        async with connector.lock:
            await self._stop_transaction_locked(connector, reason, id_tag, send_status)

    async def _stop_transaction_locked(
        self, connector: Connector, reason: str, id_tag: str | None, send_status: bool
    ) -> None:
        transaction = connector.transaction
        if transaction is None:
            return
        _cancel(connector.meter_task)
        end_sample = self._meter_value(connector, "Transaction.End")
        connector.transaction = None
        await self._call(
            ocpp_call.StopTransaction(
                meter_stop=int(connector.energy_wh),
                timestamp=utc_now(),
                transaction_id=transaction.transaction_id,
                reason=reason,
                id_tag=id_tag,
                transaction_data=[end_sample],
            ),
            queue=True,
        )
        if connector.inoperative_scheduled:
            connector.inoperative_scheduled = False
            connector.operative = False
        if not send_status:
            return
        if connector.plugged and connector.operative and not connector.faulted:
            # C6: Charging -> Finishing, "transaction stopped ... cable still plugged in"
            await self._set_status(connector, "Finishing")
        else:
            await self._set_status(connector, self._idle_status(connector))

    def _restart_meter(self, connector: Connector) -> None:
        _cancel(connector.meter_task)
        if connector.transaction is not None:
            connector.meter_task = self._spawn(self._sample_meter(connector))

    async def _sample_meter(self, connector: Connector) -> None:
        """MeterValueSampleInterval: "samples are acquired and transmitted periodically at this
        interval from the start of the charging transaction. A value of "0" ... means that no
        sampled data should be transmitted." (OCPP 1.6 section 9.1.18)
        """
        while connector.transaction is not None:
            interval = self.meter_value_sample_interval
            if interval <= 0:
                return
            period = max(
                interval * self.profile.meter_interval_factor, self.profile.meter_interval_floor_s
            )
            await asyncio.sleep(period)
            transaction = connector.transaction
            if transaction is None:
                return
            await self._call(
                ocpp_call.MeterValues(
                    connector_id=connector.connector_id,
                    transaction_id=transaction.transaction_id,
                    meter_value=[self._meter_value(connector, "Sample.Periodic")],
                ),
                queue=True,
            )

    # ------------------------------------------------------------------ reboot, firmware, diagnostics

    async def _reboot(self, reason: str, *, hard: bool) -> None:
        """Reset: stop transactions (reason SoftReset/HardReset), drop the connection, boot again.

        OCPP 1.6 section 5.14: "At receipt of a soft reset, the Charge Point SHALL ... If any
        transaction is in progress it SHALL be terminated normally, before the reset"; for a hard
        reset "If possible the Charge Point sends a StopTransaction.req".
        """
        for connector in self.connectors[1:]:
            if connector.transaction is not None:
                await self._stop_transaction(connector, reason, send_status=False)
            _cancel(connector.timeout_task)
        self._reboot_pending = True
        ws = self._ws
        if ws is None:
            return
        if hard and ws.transport is not None:
            # The Reset answer went out before this ran, but may still sit in the socket's write
            # buffer, which abort() discards, or unread at the backend, which loses it to the
            # reset that abort() sends when frames to us are unread: a real charger answers, then
            # cuts the power, so let the answer drain and be read first (at most one second).
            for _ in range(100):
                if ws.transport.is_closing() or not ws.transport.get_write_buffer_size():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            ws.transport.abort()  # a power cycle: no closing handshake
        else:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "reset"), 5)

    async def _update_firmware(self, location: str, retrieve_date: str) -> None:
        """UpdateFirmware (OCPP 1.6 section 5.19, 6.22): Downloading, Downloaded, Installing,
        Installed, then reboot with the new firmwareVersion."""
        with contextlib.suppress(ValueError):
            start = datetime.fromisoformat(retrieve_date.replace("Z", "+00:00"))
            delay = (start - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(min(delay, 3600))
        await self._firmware_status("Downloading")
        if is_loopback_location(location):
            try:
                await download_firmware(location, timeout=self.timing.response_timeout * 3)
            except (OSError, ValueError) as exc:
                logger.warning("%s: firmware download failed: %s", self.charge_point_id, exc)
                await self._firmware_status("DownloadFailed")
                return
        else:
            await asyncio.sleep(self.timing.transfer_step)
        await self._firmware_status("Downloaded")
        await asyncio.sleep(self.timing.transfer_step)
        await self._firmware_status("Installing")
        await asyncio.sleep(self.timing.transfer_step)
        self._new_firmware_version = _next_version(self.firmware_version, location)
        await self._firmware_status("Installed")
        # "Automatically reboot if connectors are available": wait for running transactions.
        while any(c.transaction is not None for c in self.connectors):
            await asyncio.sleep(1)
        await self._reboot("Reboot", hard=False)

    async def _firmware_status(self, status: str) -> None:
        self.firmware_status = status
        await self._call(ocpp_call.FirmwareStatusNotification(status=status))

    def _diagnostics_file_name(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"diagnostics-{self.charge_point_id}-{stamp}.log"

    async def _upload_diagnostics(self, location: str, file_name: str) -> None:
        """GetDiagnostics (OCPP 1.6 section 5.9): Uploading, then Uploaded or UploadFailed."""
        await self._diagnostics_status("Uploading")
        if is_loopback_location(location):
            content = "\n".join(
                [
                    f"{utc_now()} {self.charge_point_id} {self.vendor} {self.model}",
                    f"firmware {self.firmware_version}",
                    *(
                        f"connector {c.connector_id}: {c.status} {c.error_code}"
                        for c in self.connectors
                    ),
                    *(
                        f"{k}={self.config.get(k)}"
                        for k in ("HeartbeatInterval", "MeterValueSampleInterval")
                    ),
                ]
            ).encode()
            try:
                await upload_diagnostics(
                    location, file_name, content, timeout=self.timing.response_timeout * 3
                )
            except Exception as exc:  # aioftp raises its own errors besides OSError
                logger.warning("%s: diagnostics upload failed: %s", self.charge_point_id, exc)
                await self._diagnostics_status("UploadFailed")
                return
        else:
            await asyncio.sleep(self.timing.transfer_step)
        await self._diagnostics_status("Uploaded")

    async def _diagnostics_status(self, status: str) -> None:
        self.diagnostics_status = status
        await self._call(ocpp_call.DiagnosticsStatusNotification(status=status))

    # ------------------------------------------------------------------ tasks

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%s: background step failed", self.charge_point_id, exc_info=task.exception()
            )


def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done() and task is not asyncio.current_task():
        task.cancel()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _next_version(current: str, location: str) -> str:
    """The version the new image carries: from its file name if it has one, else current + 1."""
    name = location.rstrip("/").rsplit("/", 1)[-1]
    found = re.search(r"(\d+(?:\.\d+)+)", name)
    if found and found.group(1) != current:
        return found.group(1)
    parts = current.split(".")
    if parts[-1].isdigit():
        parts[-1] = str(int(parts[-1]) + 1)
        return ".".join(parts)
    return current + ".1"


class _Link(ChargePoint):
    """One WebSocket connection of a charger: the ``ocpp`` ChargePoint answering the CS's CALLs.

    ``@on`` handlers answer at once (they run inside the receive loop, so they never await a CALL
    of their own); follow-up messages go in ``@after`` handlers, which spawn a task.
    """

    def __init__(self, charger: SimulatedCharger, connection: ClientConnection) -> None:
        super().__init__(
            charger.charge_point_id, connection, response_timeout=charger.timing.response_timeout
        )
        self.charger = charger

    def _answered(self) -> None:
        self.charger.stats.commands_answered += 1

    # --- Core profile

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        """OCPP 1.6 section 5.2; connectorId 0 means the whole charger."""
        self._answered()
        charger = self.charger
        if not 0 <= connector_id < len(charger.connectors):
            return call_result.ChangeAvailability(status="Rejected")
        targets = charger.connectors if connector_id == 0 else [charger.connectors[connector_id]]
        operative = type == "Operative"
        scheduled = False
        for connector in targets:
            if not operative and connector.transaction is not None:
                # "When a transaction is in progress ... the Charge Point SHALL respond with
                # availability status 'Scheduled'"
                connector.inoperative_scheduled = True
                scheduled = True
            else:
                connector.operative = operative
                connector.inoperative_scheduled = False
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @after(Action.change_availability)
    def after_change_availability(self, connector_id: int, **_: Any) -> None:
        charger = self.charger
        if not 0 <= connector_id < len(charger.connectors):
            return
        targets = charger.connectors if connector_id == 0 else [charger.connectors[connector_id]]

        async def report() -> None:
            for connector in targets:
                if connector.transaction is None:
                    status = charger._idle_status(connector)
                    if status == "Available" and connector.plugged and connector.connector_id:
                        status = "Preparing"
                    await charger._set_status(connector, status)

        charger._spawn(report())

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        self._answered()
        if not self.charger.profile.accept_change_configuration:
            return call_result.ChangeConfiguration(status="Rejected")
        return call_result.ChangeConfiguration(status=self.charger.config.change(key, value))

    @after(Action.change_configuration)
    def after_change_configuration(self, key: str, **_: Any) -> None:
        # HeartbeatInterval and MeterValueSampleInterval take effect at once.
        charger = self.charger
        if not charger.profile.accept_change_configuration:
            return
        if key == "HeartbeatInterval":
            charger._restart_heartbeat()
        elif key == "MeterValueSampleInterval":
            for connector in charger.connectors[1:]:
                charger._restart_meter(connector)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        self._answered()
        self.charger.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> Any:
        self._answered()
        if vendor_id != self.charger.vendor:
            return call_result.DataTransfer(status="UnknownVendorId")
        if message_id not in (None, "echo"):
            return call_result.DataTransfer(status="UnknownMessageId")
        return call_result.DataTransfer(status="Accepted", data=data)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        self._answered()
        known, unknown = self.charger.config.report(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        """OCPP 1.6 section 5.11."""
        self._answered()
        connector = self._remote_start_connector(id_tag, connector_id)
        return call_result.RemoteStartTransaction(
            status="Accepted" if connector is not None else "Rejected"
        )

    @after(Action.remote_start_transaction)
    def after_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> None:
        charger = self.charger
        connector = self._remote_start_connector(id_tag, connector_id)
        if connector is None:
            return

        async def start() -> None:
            # AuthorizeRemoteTxRequests: "Whether a remote request to start a transaction ...
            # should be authorized beforehand like a local action to start a transaction."
            if charger.config.get_bool("AuthorizeRemoteTxRequests") and (
                await charger._authorize(id_tag) != "Accepted"
            ):
                return
            await charger._authorized(connector, id_tag)

        charger._spawn(start())

    def _remote_start_connector(self, id_tag: str, connector_id: int | None) -> Connector | None:
        charger = self.charger
        if connector_id is None:
            candidates = charger.connectors[1:]
        elif 1 <= connector_id < len(charger.connectors):
            candidates = [charger.connectors[connector_id]]
        else:
            return None
        for connector in candidates:
            reservation = connector.reservation
            if (
                connector.transaction is None
                and connector.operative
                and not connector.faulted
                and (reservation is None or reservation.id_tag == id_tag)
            ):
                return connector
        return None

    @on(Action.remote_stop_transaction)
    async def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> Any:
        self._answered()
        connectors = self.charger.connectors

        def found() -> bool:
            return any(
                c.transaction is not None and c.transaction.transaction_id == transaction_id
                for c in connectors
            )

        # A real charger handles the StartTransaction answer before it reads the next frame; here
        # the library may route this CALL before the coroutine awaiting that answer has resumed,
        # so give a transaction still under its local (negative) id a moment to be confirmed.
        for _attempt in range(100):
            unconfirmed = any(
                c.transaction is not None and c.transaction.transaction_id < 0 for c in connectors
            )
            if found() or not unconfirmed or not self.charger.online:
                break
            await asyncio.sleep(0.01)
        return call_result.RemoteStopTransaction(status="Accepted" if found() else "Rejected")

    @after(Action.remote_stop_transaction)
    def after_remote_stop_transaction(self, transaction_id: int, **_: Any) -> None:
        charger = self.charger
        for connector in charger.connectors:
            transaction = connector.transaction
            if transaction is not None and transaction.transaction_id == transaction_id:
                charger._spawn(charger._stop_transaction(connector, "Remote"))

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> Any:
        self._answered()
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, **_: Any) -> None:
        hard = type == "Hard"
        self.charger._spawn(self.charger._reboot("HardReset" if hard else "SoftReset", hard=hard))

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        self._answered()
        if not 1 <= connector_id < len(self.charger.connectors):
            return call_result.UnlockConnector(status="NotSupported")
        return call_result.UnlockConnector(status="Unlocked")

    @after(Action.unlock_connector)
    def after_unlock_connector(self, connector_id: int, **_: Any) -> None:
        charger = self.charger
        if 1 <= connector_id < len(charger.connectors):
            connector = charger.connectors[connector_id]
            if connector.transaction is not None:
                charger._spawn(charger._stop_transaction(connector, "UnlockCommand"))

    # --- Firmware Management profile

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> Any:
        self._answered()
        self._diagnostics_file = self.charger._diagnostics_file_name()
        return call_result.GetDiagnostics(file_name=self._diagnostics_file)

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, location: str, **_: Any) -> None:
        self.charger._spawn(self.charger._upload_diagnostics(location, self._diagnostics_file))

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> Any:
        self._answered()
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> None:
        self.charger._spawn(self.charger._update_firmware(location, retrieve_date))

    # --- Local Auth List Management profile

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> Any:
        self._answered()
        if not self.charger.config.get_bool("LocalAuthListEnabled"):
            return call_result.GetLocalListVersion(list_version=-1)
        return call_result.GetLocalListVersion(list_version=self.charger.local_list_version)

    @on(Action.send_local_list)
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        """OCPP 1.6 section 5.15."""
        self._answered()
        charger = self.charger
        if not charger.config.get_bool("LocalAuthListEnabled"):
            return call_result.SendLocalList(status="NotSupported")
        entries = local_authorization_list or []
        if update_type == "Differential" and list_version <= charger.local_list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        if update_type == "Full":
            charger.local_list.clear()
        for entry in entries:
            info = entry.get("id_tag_info")
            if info is None:
                charger.local_list.pop(entry["id_tag"], None)
            else:
                charger.local_list[entry["id_tag"]] = info.get("status", "Invalid")
        charger.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    # --- Remote Trigger profile

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        """OCPP 1.6 section 5.17."""
        self._answered()
        if connector_id is not None and not 0 <= connector_id < len(self.charger.connectors):
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> None:
        charger = self.charger
        if connector_id is not None and not 0 <= connector_id < len(charger.connectors):
            return
        charger._spawn(self._triggered(requested_message, connector_id))

    async def _triggered(self, requested_message: str, connector_id: int | None) -> None:
        charger = self.charger
        if requested_message == "BootNotification":
            payload = ocpp_call.BootNotification(
                charge_point_model=charger.model,
                charge_point_vendor=charger.vendor,
                firmware_version=charger.firmware_version,
                charge_point_serial_number=(
                    charger.serial_number if charger.profile.send_serial_and_iccid else None
                ),
                iccid=charger.iccid if charger.profile.send_serial_and_iccid else None,
            )
            await charger._call(payload)
        elif requested_message == "Heartbeat":
            await charger._call(ocpp_call.Heartbeat())
        elif requested_message == "FirmwareStatusNotification":
            await charger._call(
                ocpp_call.FirmwareStatusNotification(status=charger.firmware_status)
            )
        elif requested_message == "DiagnosticsStatusNotification":
            await charger._call(
                ocpp_call.DiagnosticsStatusNotification(status=charger.diagnostics_status)
            )
        elif requested_message == "StatusNotification":
            targets = (
                charger.connectors if connector_id is None else [charger.connectors[connector_id]]
            )
            for connector in targets:
                await charger._send_status(connector)
        elif requested_message == "MeterValues":
            targets = (
                charger.connectors[1:] if not connector_id else [charger.connectors[connector_id]]
            )
            for connector in targets:
                transaction = connector.transaction
                await charger._call(
                    ocpp_call.MeterValues(
                        connector_id=connector.connector_id,
                        transaction_id=transaction.transaction_id if transaction else None,
                        meter_value=[charger._meter_value(connector, "Trigger")],
                    )
                )

    # --- Reservation profile

    @on(Action.reserve_now)
    def on_reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **_: Any
    ) -> Any:
        """OCPP 1.6 section 5.13."""
        self._answered()
        charger = self.charger
        if connector_id == 0 or not 0 < connector_id < len(charger.connectors):
            return call_result.ReserveNow(status="Rejected")
        connector = charger.connectors[connector_id]
        if connector.faulted:
            return call_result.ReserveNow(status="Faulted")
        if not connector.operative:
            return call_result.ReserveNow(status="Unavailable")
        existing = connector.reservation
        if (
            connector.transaction is not None
            or connector.plugged
            or (existing is not None and existing.reservation_id != reservation_id)
        ):
            return call_result.ReserveNow(status="Occupied")
        try:
            expiry = datetime.fromisoformat(expiry_date.replace("Z", "+00:00"))
        except ValueError:
            return call_result.ReserveNow(status="Rejected")
        if existing is not None:
            _cancel(existing.expiry_task)
        connector.reservation = Reservation(reservation_id, id_tag, expiry)
        return call_result.ReserveNow(status="Accepted")

    @after(Action.reserve_now)
    def after_reserve_now(self, connector_id: int, reservation_id: int, **_: Any) -> None:
        charger = self.charger
        if not 0 < connector_id < len(charger.connectors):
            return
        connector = charger.connectors[connector_id]
        reservation = connector.reservation
        if reservation is None or reservation.reservation_id != reservation_id:
            return

        async def expire() -> None:
            delay = (reservation.expiry - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(delay, 0))
            if connector.reservation is reservation:
                connector.reservation = None
                await charger._set_status(connector, charger._idle_status(connector))

        reservation.expiry_task = charger._spawn(expire())
        charger._spawn(charger._set_status(connector, "Reserved"))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        self._answered()
        for connector in self.charger.connectors:
            reservation = connector.reservation
            if reservation is not None and reservation.reservation_id == reservation_id:
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")

    @after(Action.cancel_reservation)
    def after_cancel_reservation(self, reservation_id: int, **_: Any) -> None:
        charger = self.charger
        for connector in charger.connectors:
            reservation = connector.reservation
            if reservation is not None and reservation.reservation_id == reservation_id:
                _cancel(reservation.expiry_task)
                connector.reservation = None
                charger._spawn(charger._set_status(connector, charger._idle_status(connector)))
