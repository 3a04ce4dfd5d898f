"""Mirrors: read-only shadow backends fed from live traffic, their answers recorded, never delivered.

For every charger connection, every mirror gets a connection of its own (:class:`MirrorLink`): the
charger's path appended to the mirror's URL, the same subprotocol offer, the same end-to-end headers
(credentials included, or the mirror's own). Each CALL the charger sends goes to each mirror in
order, one at a time (OCPP-J 1.6 section 4.1.1: one CALL outstanding per direction). The mirror's
hop is recorded into the same capture with the charger's ``connection_id`` and ``backend`` = the
mirror's name; ``ocpp-audit compare`` sets its answers beside the primary's.

A mirror never costs the charger anything:

- the engines hand each frame over with :meth:`ChargerMirrors.from_charger` after forwarding it;
  that appends to a bounded queue (no await, no I/O), drained by the link's own task, which sends a
  CALL once the primary's answer to it has gone to the charger (:meth:`ChargerMirrors.from_primary`;
  at the latest after ``PRIMARY_HOLD_S``), so a mirror's work falls between the charger's round trips;
- a full queue drops the CALL for that mirror; the drops are counted in a ``gap`` row of the
  mirror's hop (``detail``: ``{"dropped": n, "reason": ...}``) and in :class:`MirrorState`;
- a mirror that is unreachable, refuses the handshake, closes or answers garbage is recorded (a
  ``refused`` row for the first failure in a row, ``close`` rows, malformed answers as they came)
  and reconnected with exponential backoff while the charger stays connected;
- CALLs a mirror sends never reach the charger: the recorder answers them with CALLERROR
  NotSupported (OCPP-J 1.6 section 4.2.3: "Requested Action is recognized but not supported by
  the receiver"), and records both.

Identity: the transactionId a mirror assigns in its StartTransaction answer (OCPP 1.6 section 4.10)
replaces the primary's in the frames later sent to that mirror (StopTransaction, MeterValues), with
:class:`~ocpp_audit.protocol.answers.TransactionIds`, as ``replay`` carries ids; the map is kept per
charger across its reconnects.

:class:`MirrorState` per mirror (connected hops, queued, sent, answered, dropped, ...) is what the
control API's ``GET /mirrors`` shows and what a metrics module reads (``MirrorHub.states``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ocpp_audit.capture.connection import ConnectionRecorder, RowSink
from ocpp_audit.capture.schema import ClosedBy, Direction, Event
from ocpp_audit.display import wire_logger as display_wire_logger
from ocpp_audit.protocol.answers import TransactionIds
from ocpp_audit.protocol.frames import Call, CallError, CallResult, Frame, Malformed
from ocpp_audit.protocol.tracker import Answered, TrackerEvent
from ocpp_audit.recorder.options import MirrorSpec, RecordOptions

__all__ = ["READ_ONLY_ERROR", "ChargerMirrors", "MirrorHub", "MirrorState"]

logger = logging.getLogger(__name__)
wire_logger = display_wire_logger(__name__ + ".wire")

# What a mirror's CALL gets (OCPP-J 1.6 section 4.2.3 and OCPP 2.0.1 part 4 section 4.3 both list it).
READ_ONLY_ERROR = "NotSupported"
READ_ONLY_DESCRIPTION = "ocpp-audit mirror: read-only, CALLs from a mirror never reach the charger"
CLOSE_TIMEOUT = 5.0
# A charger CALL goes to the mirrors once the primary's answer to it has been forwarded to the
# charger, so their work falls between the charger's round trips, not inside one; a CALL the primary
# has not answered after this long goes anyway.
PRIMARY_HOLD_S = 1.0
# After the charger left, a mirror gets this long to take the CALLs still queued for it.
DRAIN_GRACE_S = 10.0
MAX_FRAME_BYTES = 16 * 1024 * 1024
STARTS_KEPT = 16  # StartTransaction answers waiting for the other backend's, per link


@dataclass
class MirrorState:
    """One mirror's state across every charger connection (the control API and metrics read it)."""

    name: str
    url: str  # user info redacted
    connected: int = 0  # mirror connections open now (one per charger connected to it)
    queued: int = 0  # CALLs waiting to be sent now, over all its connections
    sent: int = 0  # CALLs sent to it
    answered: int = 0  # of those, answered (CALLRESULT, CALLERROR or a malformed answer)
    dropped: int = 0  # CALLs never sent: queue full, or still queued when its connection ended
    failed_connects: int = 0  # connection attempts that failed (unreachable, refused)
    mirror_calls: int = 0  # CALLs it sent, answered by the recorder with CALLERROR NotSupported
    last_error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _redact(url: str) -> str:
    from ocpp_audit.recorder.relay import redact_url

    return redact_url(url)


class MirrorHub:
    """Every mirror of one engine: opens each charger connection's links, keeps their states."""

    def __init__(self, options: RecordOptions, sink: RowSink) -> None:
        self.specs: tuple[MirrorSpec, ...] = tuple(options.mirrors)
        names = [spec.name for spec in self.specs]
        if len(set(names)) != len(names):
            raise ValueError(f"mirror names must differ: {', '.join(names)}")
        self.options = options
        self.sink = sink
        self.states: dict[str, MirrorState] = {
            spec.name: MirrorState(spec.name, _redact(spec.url)) for spec in self.specs
        }
        self._links: set[MirrorLink] = set()
        # (mirror, charge point id) -> primary's transactionId -> the mirror's, across reconnects.
        self._transaction_ids: dict[tuple[str, str], TransactionIds] = {}
        self._ssl = {spec.name: _client_ssl(spec.url, options) for spec in self.specs}

    def snapshot(self) -> list[MirrorState]:
        """A copy of every mirror's state, in the order the mirrors were given."""
        return [dataclasses.replace(self.states[spec.name]) for spec in self.specs]

    def open(
        self,
        *,
        charge_point_id: str,
        connection_id: str,
        path: str,
        subprotocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
        remote_address: str | None = None,
    ) -> ChargerMirrors:
        """Start one link per mirror for a charger connection that just opened (no waiting)."""
        from ocpp_audit.recorder.relay import upstream_url

        links = []
        for spec in self.specs:
            recorder = ConnectionRecorder(
                self.sink, charge_point_id, connection_id=connection_id, backend=spec.name
            )
            own_headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
            if spec.auth is not None:
                token = base64.b64encode(f"{spec.auth[0]}:{spec.auth[1]}".encode()).decode()
                own_headers.append(("Authorization", f"Basic {token}"))
            else:
                own_headers += [(n, v) for n, v in headers if n.lower() == "authorization"]
            ids = self._transaction_ids.setdefault((spec.name, charge_point_id), TransactionIds())
            link = MirrorLink(
                self,
                spec,
                recorder,
                url=upstream_url(spec.url, path),
                path=path,
                subprotocols=list(subprotocols),
                headers=own_headers,
                remote_address=remote_address,
                transaction_ids=ids,
            )
            self._links.add(link)
            links.append(link)
        return ChargerMirrors(links)

    def _forget(self, link: MirrorLink) -> None:
        self._links.discard(link)

    async def stop(self, grace: float = 2.0) -> None:
        """Close every link: queued CALLs get ``grace`` seconds, then the links are cut."""
        links = list(self._links)
        for link in links:
            link.close()
        tasks = [link.task for link in links]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _client_ssl(url: str, options: RecordOptions) -> ssl.SSLContext | None:
    """TLS toward a wss mirror, verified as the upstream is (``upstream_ca``, ``insecure``)."""
    if urlsplit(url).scheme != "wss":
        return None
    context = ssl.create_default_context(
        cafile=str(options.upstream_ca) if options.upstream_ca else None
    )
    if options.insecure_upstream:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ChargerMirrors:
    """The mirrors of one charger connection, as the engine sees them: three calls, none waits."""

    __slots__ = ("links",)

    def __init__(self, links: list[MirrorLink]) -> None:
        self.links = links

    def from_charger(self, frame: Frame) -> None:
        """A frame the charger sent (already forwarded to the primary): its CALLs go to each mirror."""
        if type(frame) is Call:
            for link in self.links:
                link.enqueue(frame)

    def from_primary(self, frame: Frame, event: TrackerEvent | None) -> None:
        """A frame the primary sent (already forwarded to the charger): its answer to a charger
        CALL releases that CALL to the mirrors; a StartTransaction answer pairs transactionIds."""
        if type(event) is not Answered or event.call.direction is not Direction.CP_TO_CS:
            return
        unique_id = event.call.unique_id
        for link in self.links:
            link.primary_answered(unique_id)
        if (
            type(frame) is CallResult
            and event.call.action == "StartTransaction"
            and isinstance(frame.payload, dict)
        ):
            transaction_id = frame.payload.get("transactionId")
            for link in self.links:
                link.primary_started(unique_id, transaction_id)

    def close(self) -> None:
        """The charger's connection ended: each mirror takes what is queued, then closes."""
        for link in self.links:
            link.close()


class MirrorLink:
    """One charger connection's copy at one mirror: a bounded queue, a task, a recorder."""

    def __init__(
        self,
        hub: MirrorHub,
        spec: MirrorSpec,
        recorder: ConnectionRecorder,
        *,
        url: str,
        path: str,
        subprotocols: list[str],
        headers: list[tuple[str, str]],
        remote_address: str | None,
        transaction_ids: TransactionIds,
    ) -> None:
        self.hub = hub
        self.spec = spec
        self.state = hub.states[spec.name]
        self.recorder = recorder
        self.url = url
        self.path = path
        self.subprotocols = subprotocols
        self.headers = headers
        self.remote_address = remote_address
        self.transaction_ids = transaction_ids
        self.max_queue = max(1, hub.options.mirror_queue)
        self._queue: collections.deque[tuple[Call, float]] = collections.deque()  # (CALL, since)
        # Charger CALLs the primary has not answered yet: held back from the mirror meanwhile.
        self._unanswered: set[str] = set()
        self._wake = asyncio.Event()
        self._closing = False
        self._dropped_since_gap = 0
        self._waiting: tuple[str, asyncio.Future[Frame]] | None = None
        # StartTransaction unique id -> [primary's transactionId, mirror's]
        self._starts: collections.OrderedDict[str, list[object]] = collections.OrderedDict()
        self._write_failed = False
        self.task = asyncio.create_task(
            self._run(), name=f"mirror {spec.name} {recorder.charge_point_id}"
        )
        self.task.add_done_callback(lambda _: hub._forget(self))

    # --- called by the engine, never waiting ---------------------------------------------------------

    def enqueue(self, call: Call) -> None:
        if self._closing:
            return
        if len(self._queue) >= self.max_queue:
            self._dropped_since_gap += 1
            self.state.dropped += 1
            return
        loop = asyncio.get_running_loop()
        if not self._queue:  # the task may be idle: it looks again once the hold is over
            loop.call_later(PRIMARY_HOLD_S, self._wake.set)
        self._queue.append((call, loop.time()))
        self._unanswered.add(call.unique_id)
        self.state.queued += 1

    def primary_answered(self, unique_id: str) -> None:
        if unique_id in self._unanswered:
            self._unanswered.discard(unique_id)
            self._wake.set()

    def primary_started(self, unique_id: str, transaction_id: object) -> None:
        self._start_answer(unique_id, 0, transaction_id)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._wake.set()

    # --- the link's task ---------------------------------------------------------------------------

    def _start_answer(self, unique_id: str, side: int, transaction_id: object) -> None:
        pair = self._starts.setdefault(unique_id, [None, None])
        pair[side] = transaction_id
        if pair[0] is not None and pair[1] is not None:
            del self._starts[unique_id]
            with contextlib.suppress(TypeError):  # an id that is not hashable (garbage)
                self.transaction_ids.assigned(pair[0], pair[1])
        while len(self._starts) > STARTS_KEPT:
            self._starts.popitem(last=False)

    def _record(self, write: Any) -> Any:
        """One write of the mirror's hop; a failure is logged once and never reaches the charger."""
        try:
            return write()
        except Exception:
            if not self._write_failed:
                logger.exception(
                    "%s: mirror %s: could not record", self.recorder.charge_point_id, self.spec.name
                )
                self._write_failed = True
            return None

    async def _run(self) -> None:
        backoff = self.hub.options.mirror_backoff
        failing = False
        try:
            while not self._closing:
                websocket = await self._connect(first_failure=not failing)
                if websocket is None:
                    failing = True
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.hub.options.mirror_backoff_max)
                    continue
                failing = False
                backoff = self.hub.options.mirror_backoff
                await self._serve(websocket)
        finally:
            if self._queue:
                self.state.dropped += len(self._queue)
                self.state.queued -= len(self._queue)
                self._dropped_since_gap += len(self._queue)
                self._queue.clear()
            self._unanswered.clear()
            self._write_gap("mirror queue full, or CALLs still queued when the link ended")

    async def _sleep(self, seconds: float) -> None:
        """Wait before reconnecting; the charger leaving ends the wait (and the link)."""
        self._wake.clear()
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self._closing:
                    self._wake.clear()
                    await self._wake.wait()

    async def _connect(self, *, first_failure: bool) -> ClientConnection | None:
        options = self.hub.options
        try:
            return await connect(
                self.url,
                subprotocols=cast(Any, self.subprotocols) or None,
                additional_headers=self.headers,
                user_agent_header=None,
                compression=None,
                proxy=None,
                open_timeout=options.open_timeout,
                ping_interval=None,
                close_timeout=CLOSE_TIMEOUT,
                max_size=options.max_frame_bytes or MAX_FRAME_BYTES,
                ssl=self.hub._ssl[self.spec.name],
                logger=wire_logger,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = f"mirror refused: {status} {exc.response.reason_phrase}"
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
            status = 502
            reason = f"mirror unreachable: {type(exc).__name__}: {exc}".replace(
                self.url, _redact(self.url)
            )
        self.state.failed_connects += 1
        self.state.last_error = reason
        if first_failure:
            # One refused row per failure streak: a mirror down for a week writes one, not 10,000.
            logger.warning("%s: %s", self.recorder.charge_point_id, reason)
            self._record(
                lambda: self.recorder.refused(
                    path=self.path,
                    http_status=status,
                    reason=reason,
                    subprotocols_offered=self.subprotocols,
                    remote_address=self.remote_address,
                    authorization=dict((n.lower(), v) for n, v in self.headers).get(
                        "authorization"
                    ),
                    tls=self.url.startswith("wss:"),
                )
            )
        return None

    async def _serve(self, websocket: ClientConnection) -> None:
        """Record the open, send the queued CALLs one at a time, record the close."""
        self.state.connected += 1
        self.recorder.tracker.connection_lost()
        self._record(
            lambda: self.recorder.opened(
                path=self.path,
                subprotocols_offered=self.subprotocols,
                subprotocol=websocket.subprotocol,
                remote_address=self.remote_address,
                authorization=dict((n.lower(), v) for n, v in self.headers).get("authorization"),
                tls=self.url.startswith("wss:"),
            )
        )
        reader = asyncio.create_task(self._read(websocket))
        closed_by = ClosedBy.BACKEND
        try:
            if await self._drain(websocket, reader):
                closed_by = ClosedBy.RECORDER
                with contextlib.suppress(Exception):
                    await websocket.close(1000, "charger disconnected")
        finally:
            if not reader.done():
                if closed_by is ClosedBy.BACKEND:  # cancelled: the engine is stopping
                    closed_by = ClosedBy.RECORDER
                websocket.transport.abort()
            await asyncio.gather(reader, return_exceptions=True)
            self.state.connected -= 1
            code = websocket.close_code if websocket.close_code is not None else 1006
            reason = websocket.close_reason
            self._record(lambda: self.recorder.closed(code, reason, closed_by))

    async def _drain(self, websocket: ClientConnection, reader: asyncio.Task[None]) -> bool:
        """Send queued CALLs until the charger left and the queue is empty (True), or the mirror
        connection ended (False)."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            while not self._queue:
                if reader.done():
                    return False
                if self._closing:
                    return True
                self._wake.clear()
                await self._wake.wait()
            if reader.done():
                return False
            if self._closing and deadline is None:
                deadline = loop.time() + DRAIN_GRACE_S
            if deadline is not None and loop.time() > deadline:
                return True  # the rest counts as dropped (_run)
            call, since = self._queue[0]
            held = since + PRIMARY_HOLD_S - loop.time()
            if call.unique_id in self._unanswered and held > 0 and not self._closing:
                # The charger's round trip is still on: the mirror's work waits until the
                # primary's answer has gone to the charger (or the hold is over).
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(held):
                        await self._wake.wait()
                continue
            self._queue.popleft()
            self._unanswered.discard(call.unique_id)
            self.state.queued -= 1
            self._write_gap("mirror queue full")
            text = self._outgoing(call)
            future: asyncio.Future[Frame] = loop.create_future()
            self._waiting = (call.unique_id, future)
            self._record(lambda text=text: self.recorder.message(Direction.CP_TO_CS, text))
            try:
                await websocket.send(text)
            except ConnectionClosed:
                return False
            self.state.sent += 1
            timeout = self.hub.options.mirror_answer_timeout
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - loop.time()))
            done, _ = await asyncio.wait(
                {future, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            self._waiting = None
            if future not in done:
                self.recorder.tracker.timed_out(Direction.CP_TO_CS, call.unique_id)
                if reader.done():
                    return False
                continue
            answer = future.result()
            self.state.answered += 1
            if (
                call.action == "StartTransaction"
                and type(answer) is CallResult
                and isinstance(answer.payload, dict)
            ):
                self._start_answer(call.unique_id, 1, answer.payload.get("transactionId"))

    def _outgoing(self, call: Call) -> str:
        """The charger's CALL as sent to the mirror: unchanged, but for the mirror's own
        transactionId in place of the primary's."""
        if len(self.transaction_ids) and isinstance(call.payload, dict):
            payload = dict(call.payload)
            if self.transaction_ids.substitute(call.action, payload) is not None:
                return Call.create(call.unique_id, call.action, payload).serialize()
        return call.serialize()

    def _write_gap(self, reason: str) -> None:
        if self._dropped_since_gap:
            detail = {"dropped": self._dropped_since_gap, "reason": reason}
            self._dropped_since_gap = 0
            self._record(lambda: self.recorder.event(Event.GAP, detail))

    async def _read(self, websocket: ClientConnection) -> None:
        """Record everything the mirror sends; its answer wakes the drain, its CALLs are refused."""
        try:
            async for message in websocket:
                frame = self._record(lambda m=message: self.recorder.message(Direction.CS_TO_CP, m))
                if frame is None:
                    continue
                if type(frame) is Call:
                    await self._refuse(websocket, frame)
                    continue
                waiting = self._waiting
                if (
                    waiting is not None
                    and type(frame) in (CallResult, CallError, Malformed)
                    and getattr(frame, "unique_id", None) == waiting[0]
                    and not waiting[1].done()
                ):
                    waiting[1].set_result(frame)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception(
                "%s: mirror %s: reading failed", self.recorder.charge_point_id, self.spec.name
            )
        finally:
            self._wake.set()

    async def _refuse(self, websocket: ClientConnection, call: Call) -> None:
        """A mirror's CALL never reaches the charger: answer it ourselves, and record both."""
        self.state.mirror_calls += 1
        reply = CallError.create(call.unique_id, READ_ONLY_ERROR, READ_ONLY_DESCRIPTION)
        text = reply.serialize()
        self._record(lambda: self.recorder.message(Direction.CP_TO_CS, text, injected=True))
        with contextlib.suppress(ConnectionClosed):
            await websocket.send(text)
