"""The relay engine: a WebSocket relay on ``websockets`` that records every frame it forwards.

For each charger the relay opens the upstream connection *before* it answers the charger's handshake,
so the backend decides: the subprotocol it chose is the one the charger gets, and its refusal (401,
403, 404, ...) reaches the charger with the same status, headers and body. Messages are recorded
(journal first) and then forwarded unchanged, text as text and binary as binary, in order, both
ways. Close codes and reasons pass through. The relay has no idle cut-off of its own: OCPP-J 1.6
section 5 leaves keep-alive to the charger (WebSocket pings or Heartbeat), so a charger that sends one
heartbeat an hour stays connected.

Pings are relayed: ``websockets`` answers a ping on each hop by itself (RFC 6455 5.5.2 "MUST send a
Pong"), and the relay also sends the same ping on to the other side, so a backend that judges a
charger's liveness by its pings (WebSocketPingInterval) sees them. Every ping and pong either side
sends is recorded as a ``ping`` or ``pong`` row with its payload in ``detail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode, Frame, Opcode
from websockets.headers import parse_connection, parse_subprotocol
from websockets.http11 import Request, Response

from ocpp_audit.capture.connection import (
    ConnectionRecorder,
    charge_point_id_from_path,
    format_address,
)
from ocpp_audit.capture.schema import ClosedBy, Direction, Event
from ocpp_audit.display import wire_logger as display_wire_logger
from ocpp_audit.recorder.budget import AddressBudget, BudgetedReading
from ocpp_audit.recorder.injection import ChargerLink, ChargerRegistry
from ocpp_audit.recorder.options import RecordOptions

if TYPE_CHECKING:
    from ocpp_audit.capture.writer import CaptureWriter
    from ocpp_audit.recorder.mirror import ChargerMirrors, MirrorHub

logger = logging.getLogger(__name__)

# RFC 7230 6.1: hop-by-hop headers are meaningful for one transport-level connection only and are not
# forwarded by proxies. Host and Content-Length belong to each hop too; the Sec-WebSocket-* headers
# are negotiated on each hop by ``websockets`` (the subprotocol offer is passed on separately).
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

# The closing handshake waits this long for the peer's answer (RFC 6455 7.1.1).
CLOSE_TIMEOUT = 10.0

# The logger both hops of the relay give websockets (credentials and frames redacted at DEBUG).
wire_logger = display_wire_logger(__name__ + ".wire")


def redact_url(url: str) -> str:
    """``url`` with any user info (``ws://user:password@host``) replaced by ``***``, for logs.

    websockets sends such user info upstream as Basic auth: a credential, never to be logged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>" if "@" in url else url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


_DOT_SEGMENT = re.compile(r"%2e", re.IGNORECASE)


def remove_dot_segments(path: str) -> str:
    """The charger's path with ``.`` and ``..`` segments resolved (RFC 3986 section 5.2.4), also when
    written ``%2e`` (section 6.2.2.2: percent-encoded unreserved characters are the characters), so
    ``/ocpp/../../admin`` cannot climb above the upstream URL's own path."""
    segments = path.split("/")
    output: list[str] = []
    for segment in segments:
        decoded = _DOT_SEGMENT.sub(".", segment)
        if decoded == "..":
            if len(output) > 1:
                output.pop()
        elif decoded != ".":
            output.append(segment)
    normalised = "/".join(output)
    if path.startswith("/") and not normalised.startswith("/"):
        normalised = "/" + normalised
    if _DOT_SEGMENT.sub(".", segments[-1]) in (".", ".."):  # "a/b/.." names the folder "a/"
        normalised = normalised.rstrip("/") + "/"
    return normalised


def upstream_url(upstream: str, request_path: str) -> str:
    """The backend URL for a charger's request: the charger's path and query after the upstream's path.

    ``ws://csms:9000`` + ``/ocpp/CP001`` -> ``ws://csms:9000/ocpp/CP001``;
    ``ws://csms:9000/base`` + ``/ocpp/CP001?x=1`` -> ``ws://csms:9000/base/ocpp/CP001?x=1``.
    """
    base = urlsplit(upstream)
    request = urlsplit(request_path)
    path = base.path.rstrip("/") + "/" + remove_dot_segments(request.path).lstrip("/")
    query = "&".join(part for part in (base.query, request.query) if part)
    return urlunsplit((base.scheme, base.netloc, path, query, ""))


def end_to_end_headers(headers: Headers) -> list[tuple[str, str]]:
    """The headers a proxy passes on: not hop-by-hop, not Host, not Sec-WebSocket-*."""
    named_in_connection: set[str] = set()
    for value in headers.get_all("Connection"):
        with contextlib.suppress(InvalidHandshake):
            named_in_connection.update(option.lower() for option in parse_connection(value))
    forwarded = []
    for name, value in headers.raw_items():
        lowered = name.lower()
        if (
            lowered in HOP_BY_HOP_HEADERS
            or lowered in named_in_connection
            or lowered.startswith("sec-websocket-")
        ):
            continue
        forwarded.append((name, value))
    return forwarded


def offered_subprotocols(headers: Headers) -> list[str]:
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        try:
            offered.extend(parse_subprotocol(value))
        except InvalidHandshake:
            # websockets answers the charger 400 for this header; pass it on as text to the backend.
            offered.append(value)
    return offered


def server_ssl_context(options: RecordOptions) -> ssl.SSLContext | None:
    """TLS toward the chargers (wss), when a certificate and key are given."""
    if options.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.tls_cert, options.tls_key)
    return context


def upstream_ssl_context(options: RecordOptions) -> ssl.SSLContext | None:
    """TLS toward a wss backend: verified by default, against ``upstream_ca`` if given."""
    if options.upstream is None or urlsplit(options.upstream).scheme != "wss":
        return None
    context = ssl.create_default_context(
        cafile=str(options.upstream_ca) if options.upstream_ca else None
    )
    if options.insecure_upstream:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Ended(enum.Enum):
    SOURCE_CLOSED = "source closed"
    SINK_CLOSED = "sink closed"
    WRITE_ERROR = "write error"


class _ControlFrames:
    """A connection that hands each ping and pong it receives to ``on_control`` (set by the relay)
    after ``websockets`` has handled it (answered the ping, acknowledged the pong)."""

    on_control: Any = None

    def process_event(self, event: Any) -> None:
        super().process_event(event)  # type: ignore[misc]
        if (
            self.on_control is not None
            and isinstance(event, Frame)
            and event.opcode in (Opcode.PING, Opcode.PONG)
        ):
            self.on_control(event.opcode, bytes(event.data))


class _ChargerConnection(BudgetedReading, _ControlFrames, ServerConnection):
    """A charger's hop: pings and pongs handed on, data charged to its address's budget."""


class _BackendConnection(_ControlFrames, ClientConnection):
    pass


class _UpstreamConnect(connect):
    """``connect`` that hands redirects back instead of following them: the charger decides."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


# Frames websockets keeps received but not yet read, per hop (high and low water marks): the pump reads
# one message at a time and forwards it before the next, so two is enough to keep it busy, and a
# charger can make the relay hold no more than a few inflated frames (permessage-deflate makes a
# 16 MiB frame of 16 KB on the wire; websockets' default of 16 frames let 20 connections hold GBs).
MAX_QUEUE = (2, 1)

# Forwarded pings not yet sent, per direction of a connection: beyond this a ping flood is answered
# on its own hop (as always) but not passed on.
MAX_PINGS_IN_FLIGHT = 4


@dataclass
class _Session:
    """A charger whose upstream is open and whose handshake answer is on its way."""

    upstream: ClientConnection
    recorder: ConnectionRecorder
    path: str
    subprotocols_offered: list[str]
    authorization: str | None
    remote_address: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)  # end to end, for mirrors
    reaper: asyncio.Task[None] | None = field(default=None)


async def _send_ping(connection: ServerConnection | ClientConnection, data: bytes) -> None:
    """Pass a ping on to the other side, with the same payload; its pong is recorded on arrival."""
    with contextlib.suppress(Exception):  # closed, or a ping with this payload already in flight
        await connection.ping(data)


class RelayEngine:
    """Accepts chargers, relays each to the upstream backend, records both directions."""

    def __init__(
        self, options: RecordOptions, writer: CaptureWriter, mirrors: MirrorHub | None = None
    ) -> None:
        if not options.upstream:
            raise ValueError("the relay engine needs an upstream URL (ws:// or wss://)")
        scheme = urlsplit(options.upstream).scheme
        if scheme not in ("ws", "wss"):
            raise ValueError(
                f"upstream must be a ws:// or wss:// URL, not {redact_url(options.upstream)!r}"
            )
        self.options = options
        self.writer = writer
        self.port = 0
        self._server: Server | None = None
        self._sessions: dict[ServerConnection, _Session] = {}
        self._tls = options.tls_cert is not None
        self._upstream_ssl = upstream_ssl_context(options)
        self._relays: set[asyncio.Task[None]] = set()
        self.registry = ChargerRegistry()  # live chargers, for injected CALLs (control API)
        # The time each message spends in the recorder, when metrics are on (recorder/metrics.py).
        self.observe_forward: Callable[[float], None] | None = None
        self.mirrors = mirrors  # read-only shadow backends fed every charger CALL (mirror.py)
        # What all connections from one address may make the relay hold (budget.py); 0: no limit.
        self.budget = (
            AddressBudget(options.address_budget_bytes) if options.address_budget_bytes else None
        )
        self._charger_connection = type(
            "_ChargerConnection", (_ChargerConnection,), {"budget": self.budget}
        )

    async def start(self) -> None:
        """Listen; the engine accepts chargers when this returns."""
        self._server = await serve(
            self._relay,
            self.options.listen_host,
            self.options.listen_port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            server_header=None,  # the backend's own headers go to the charger, not ours
            ssl=server_ssl_context(self.options),
            # The upstream handshake happens inside ours: give it its full time first.
            open_timeout=self.options.open_timeout + 5,
            ping_interval=None,  # no idle cut-off of our own; pings are still answered
            close_timeout=CLOSE_TIMEOUT,
            max_size=self.options.max_frame_bytes,
            max_queue=MAX_QUEUE,
            logger=wire_logger,
            create_connection=self._charger_connection,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info(
            "relay listening on %s:%d, upstream %s",
            self.options.listen_host,
            self.port,
            redact_url(self.options.upstream or ""),
        )

    async def stop(self) -> None:
        """Close chargers with 1001 (going away) so they reconnect, then their upstreams."""
        if self._server is None:
            return
        # websockets closes every open charger connection with 1001 and waits for the handlers,
        # each of which then closes its upstream with the same code.
        self._server.close(close_connections=True, code=CloseCode.GOING_AWAY)
        await self._server.wait_closed()
        for session in list(self._sessions.values()):
            await self._close(session.upstream, CloseCode.GOING_AWAY, "recorder stopping")
            if session.reaper is not None:
                session.reaper.cancel()
        self._sessions.clear()
        if self.mirrors is not None:
            await self.mirrors.stop()
        self._server = None
        logger.info("relay stopped")

    # --- the handshake --------------------------------------------------------------------------

    async def _process_request(
        self, charger: ServerConnection, request: Request
    ) -> Response | None:
        """Open the upstream connection before answering the charger."""
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return None  # not a WebSocket handshake: websockets answers it (426)
        assert self.options.upstream is not None
        charge_point_id = charge_point_id_from_path(request.path)
        recorder = ConnectionRecorder(self.writer, charge_point_id)
        offered = offered_subprotocols(request.headers)
        authorization = request.headers.get("Authorization")
        remote_address = format_address(charger.remote_address)
        url = upstream_url(self.options.upstream, request.path)
        extensions = ",".join(request.headers.get_all("Sec-WebSocket-Extensions"))
        headers = end_to_end_headers(request.headers)

        def refused(status: int, reason: str) -> None:
            try:
                recorder.refused(
                    path=request.path,
                    http_status=status,
                    reason=reason,
                    subprotocols_offered=offered,
                    remote_address=remote_address,
                    authorization=authorization,
                    tls=self._tls,
                )
            except Exception:
                logger.exception("%s: could not record the refused handshake", charge_point_id)

        try:
            upstream = await _UpstreamConnect(
                url,
                subprotocols=cast(Any, offered) or None,
                additional_headers=headers,
                user_agent_header=None,  # the charger's own User-Agent, if any, is passed on
                # Offer compression upstream only when the charger offered it to us.
                compression="deflate" if "permessage-deflate" in extensions else None,
                proxy=None,
                open_timeout=self.options.open_timeout,
                ping_interval=None,
                close_timeout=CLOSE_TIMEOUT,
                max_size=self.options.max_frame_bytes,
                max_queue=MAX_QUEUE,
                ssl=self._upstream_ssl,
                create_connection=_BackendConnection,
                logger=wire_logger,
            )
        except InvalidStatus as exc:
            response = exc.response
            logger.info(
                "%s: backend refused the handshake: %d %s",
                charge_point_id,
                response.status_code,
                response.reason_phrase,
            )
            refused(
                response.status_code,
                f"backend refused: {response.status_code} {response.reason_phrase}",
            )
            return _passthrough_response(response)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
            # The error may quote the URL (InvalidURI does): its user info stays out of the
            # log and of the capture's refused row.
            shown_url = redact_url(url)
            reason = f"backend unreachable: {type(exc).__name__}: {exc}".replace(url, shown_url)
            logger.warning(
                "%s: %s (%s)",
                charge_point_id,
                reason,
                shown_url,
                extra={"charge_point_id": charge_point_id},
            )
            refused(502, reason)
            return _plain_response(
                502, "Bad Gateway", "Bad Gateway: the backend cannot be reached.\n"
            )
        if not upstream.protocol.extensions:
            # RFC 7692 negotiates compression per hop; mirror the backend's choice on the charger's
            # hop, so a backend that declines permessage-deflate costs no deflate on either hop
            # (as if the charger were connected straight to it).
            charger.protocol.available_extensions = None
        session = _Session(
            upstream=upstream,
            recorder=recorder,
            path=request.path,
            subprotocols_offered=offered,
            authorization=authorization,
            remote_address=remote_address,
            headers=headers,
        )
        self._sessions[charger] = session
        session.reaper = asyncio.create_task(self._reap_unclaimed(charger))
        return None

    def _select_subprotocol(self, charger: ServerConnection, subprotocols: Any) -> Any:
        """The charger gets the subprotocol the backend chose (or none)."""
        session = self._sessions.get(charger)
        return session.upstream.subprotocol if session is not None else None

    async def _process_response(
        self, charger: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        session = self._sessions.get(charger)
        if session is None:
            return None
        if response.status_code != 101:
            # websockets refused the charger after the backend accepted it (bad request, or the
            # engine is stopping): the upstream is not needed.
            self._sessions.pop(charger, None)
            if session.reaper is not None:
                session.reaper.cancel()
            await self._close(session.upstream, CloseCode.GOING_AWAY, "")
            with contextlib.suppress(Exception):
                session.recorder.refused(
                    path=session.path,
                    http_status=response.status_code,
                    reason=f"recorder refused: {response.status_code} {response.reason_phrase}",
                    subprotocols_offered=session.subprotocols_offered,
                    remote_address=session.remote_address,
                    authorization=session.authorization,
                    tls=self._tls,
                )
            return None
        # The backend's own end-to-end answer headers (Set-Cookie, Server, ...) reach the charger.
        upstream_response = session.upstream.response
        if upstream_response is not None:
            for name, value in end_to_end_headers(upstream_response.headers):
                if name.lower() not in ("date",):
                    response.headers[name] = value
        return None

    async def _reap_unclaimed(self, charger: ServerConnection) -> None:
        """Close the upstream of a charger that vanished between our handshake and the relay."""
        await charger.wait_closed()
        session = self._sessions.pop(charger, None)
        if session is not None:
            await self._close(session.upstream, CloseCode.GOING_AWAY, "")

    # --- the relay ------------------------------------------------------------------------------

    async def _relay(self, charger: ServerConnection) -> None:
        session = self._sessions.pop(charger, None)
        if session is None:  # cannot happen: process_request made the session
            await charger.close(CloseCode.INTERNAL_ERROR, "no upstream")
            return
        if session.reaper is not None:
            session.reaper.cancel()
        upstream, recorder = session.upstream, session.recorder
        charge_point_id = recorder.charge_point_id
        try:
            recorder.opened(
                path=session.path,
                subprotocols_offered=session.subprotocols_offered,
                subprotocol=upstream.subprotocol,
                remote_address=session.remote_address,
                authorization=session.authorization,
                tls=self._tls,
            )
        except Exception as exc:
            if self._is_write_error(exc):
                await self._fail_on_write_error(charger, upstream, recorder)
                return
            logger.exception("%s: could not record the open event", charge_point_id)
        logger.info(
            "%s: connected (subprotocol %s)",
            charge_point_id,
            upstream.subprotocol,
            extra={"charge_point_id": charge_point_id},
        )
        link = ChargerLink(recorder, charger.send, subprotocol=upstream.subprotocol)
        self.registry.add(link)
        pings: dict[Direction, set[asyncio.Task[Any]]] = {d: set() for d in Direction}

        def control(
            direction: Direction, other: ServerConnection | ClientConnection
        ) -> Callable[[Opcode, bytes], None]:
            def on_control(opcode: Opcode, data: bytes) -> None:
                event = Event.PING if opcode is Opcode.PING else Event.PONG
                with contextlib.suppress(Exception):  # recording never breaks the relay
                    recorder.control_frame(direction, event, data)
                if opcode is Opcode.PING and len(pings[direction]) < MAX_PINGS_IN_FLIGHT:
                    task = asyncio.create_task(_send_ping(other, data))
                    pings[direction].add(task)
                    task.add_done_callback(pings[direction].discard)

            return on_control

        cast(Any, charger).on_control = control(Direction.CP_TO_CS, upstream)
        cast(Any, upstream).on_control = control(Direction.CS_TO_CP, charger)
        mirrors = None
        if self.mirrors is not None:
            mirrors = self.mirrors.open(
                charge_point_id=charge_point_id,
                connection_id=recorder.connection_id,
                path=session.path,
                subprotocols=session.subprotocols_offered,
                headers=session.headers,
                remote_address=session.remote_address,
            )

        to_backend = asyncio.create_task(
            self._pump(charger, upstream, Direction.CP_TO_CS, recorder, link, mirrors)
        )
        to_charger = asyncio.create_task(
            self._pump(upstream, charger, Direction.CS_TO_CP, recorder, link, mirrors)
        )
        try:
            done, _ = await asyncio.wait(
                {to_backend, to_charger}, return_when=asyncio.FIRST_COMPLETED
            )
            ended = {task: task.result() for task in done}
            if _Ended.WRITE_ERROR in ended.values():
                await self._fail_on_write_error(charger, upstream, recorder)
                return
            # The side that went first: the source of a pump whose source closed, else the sink of
            # a pump whose send failed.
            if ended.get(to_backend) is _Ended.SOURCE_CLOSED:
                charger_went = True
            elif ended.get(to_charger) is _Ended.SOURCE_CLOSED:
                charger_went = False
            else:
                charger_went = ended.get(to_charger) is _Ended.SINK_CLOSED
            if charger_went:
                closing, other, side = charger, upstream, ClosedBy.CHARGER
            else:
                closing, other, side = upstream, charger, ClosedBy.BACKEND
            # Let the closing handshake on that side finish, so its close frame is known.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await closing.wait_closed()
            code, reason, closed_by = _how_it_closed(closing, side)
            await self._mirror_close(other, code, reason)
            try:
                recorder.closed(code, reason, closed_by)
            except Exception:
                logger.exception("%s: could not record the close event", charge_point_id)
            logger.info(
                "%s: closed by %s (%s %s)",
                charge_point_id,
                closed_by,
                code,
                reason,
                extra={"charge_point_id": charge_point_id},
            )
        finally:
            cast(_ChargerConnection, charger).release_budget()
            self.registry.remove(link)  # fails a pending injection at once
            if mirrors is not None:
                mirrors.close()
            for task in (to_backend, to_charger):
                task.cancel()
            await asyncio.gather(to_backend, to_charger, return_exceptions=True)
            await self._close(charger, CloseCode.GOING_AWAY, "")
            await self._close(upstream, CloseCode.GOING_AWAY, "")

    async def _pump(
        self,
        source: ServerConnection | ClientConnection,
        sink: ServerConnection | ClientConnection,
        direction: Direction,
        recorder: ConnectionRecorder,
        link: ChargerLink | None = None,
        mirrors: ChargerMirrors | None = None,
    ) -> _Ended:
        """Record, then forward, every message from source to sink, in order.

        The charger's answers to injected CALLs stay here, and backend CALLs that arrive while an
        injected one is pending are held by ``link`` (see ``control.py``). Once a message is
        forwarded, ``mirrors`` gets it (a queue append: the charger never waits for a mirror).
        """
        failed_once = False
        # A charger's messages count against its address's budget until passed on (budget.py).
        forwarded = getattr(source, "message_forwarded", None)
        holding = False
        while True:
            if holding:
                # The previous message is passed on (or kept): release its bytes, and hold no
                # reference to it while waiting for the next (a large frame must not stay).
                message = frame = event = None
                recorder.forget_last()
                if forwarded is not None:
                    forwarded()
            try:
                message = await source.recv()
            except ConnectionClosed:
                return _Ended.SOURCE_CLOSED
            except Exception:
                logger.exception("%s: receiving failed", recorder.charge_point_id)
                return _Ended.SOURCE_CLOSED
            holding = True
            arrived = time.perf_counter()
            frame = None
            event = None
            try:
                frame = recorder.message(direction, message)  # the journal first ...
                event = recorder.last_event
            except Exception as exc:
                if self._is_write_error(exc):
                    return _Ended.WRITE_ERROR
                # A recording bug must never break a charger's connection: forward anyway.
                if not failed_once:
                    logger.exception("%s: could not record a message", recorder.charge_point_id)
                    failed_once = True
            if link is not None and frame is not None:
                if direction is Direction.CP_TO_CS:
                    forward = link.from_charger(frame)
                else:
                    forward = link.from_backend(frame, message)
                if not forward:
                    continue
            try:
                await sink.send(message)  # ... then the wire, text as text, bytes as bytes
            except ConnectionClosed:
                return _Ended.SINK_CLOSED
            except Exception:
                logger.exception("%s: forwarding failed", recorder.charge_point_id)
                return _Ended.SINK_CLOSED
            if self.observe_forward is not None:
                self.observe_forward(arrived)
            if mirrors is not None and frame is not None:
                if direction is Direction.CP_TO_CS:
                    mirrors.from_charger(frame)
                else:
                    mirrors.from_primary(frame, event)

    def _is_write_error(self, exc: Exception) -> bool:
        from ocpp_audit.capture.writer import CaptureWriteError

        return isinstance(exc, CaptureWriteError)

    async def _fail_on_write_error(
        self,
        charger: ServerConnection,
        upstream: ClientConnection,
        recorder: ConnectionRecorder,
    ) -> None:
        """Policy "close": a frame that cannot be journalled is not forwarded; both hops close."""
        logger.error("%s: capture write failed, closing the connection", recorder.charge_point_id)
        reason = "capture write failed"
        await asyncio.gather(
            self._close(charger, CloseCode.INTERNAL_ERROR, reason),
            self._close(upstream, CloseCode.INTERNAL_ERROR, reason),
        )
        with contextlib.suppress(Exception):
            recorder.closed(int(CloseCode.INTERNAL_ERROR), reason, ClosedBy.RECORDER)

    async def _mirror_close(
        self, other: ServerConnection | ClientConnection, code: int, reason: str | None
    ) -> None:
        """Close the other hop the way the first one closed."""
        if code == CloseCode.ABNORMAL_CLOSURE:
            # No close frame came (TCP dropped): the other side sees the same.
            other.transport.abort()
        elif code == CloseCode.NO_STATUS_RCVD:
            await self._close(other, None, "")  # an empty close frame, as received
        else:
            await self._close(other, code, reason or "")

    async def _close(
        self, connection: ServerConnection | ClientConnection, code: int | None, reason: str
    ) -> None:
        try:
            await connection.close(cast(int, code), reason)
        except Exception:
            # An unsendable code (websockets checks RFC 6455 7.4): close normally instead.
            logger.debug("close(%s) failed, closing with 1000", code, exc_info=True)
            with contextlib.suppress(Exception):
                await connection.close()


def _how_it_closed(
    connection: ServerConnection | ClientConnection, side: ClosedBy
) -> tuple[int, str | None, ClosedBy]:
    """Close code, reason and who closed, for the hop that ended first."""
    protocol = connection.protocol
    received, sent = protocol.close_rcvd, protocol.close_sent
    if received is not None and (sent is None or protocol.close_rcvd_then_sent):
        # The peer sent its close frame first.
        return int(received.code), received.reason or None, side
    if sent is not None:
        # We closed first: the engine stopping (1001), a frame too big (1009), a protocol error.
        return int(sent.code), sent.reason or None, ClosedBy.RECORDER
    # RFC 6455 7.1.5: no close frame received, "_The WebSocket Connection Close Code_ is 1006".
    return int(CloseCode.ABNORMAL_CLOSURE), None, side


def _plain_response(status: int, phrase: str, text: str) -> Response:
    body = text.encode()
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "text/plain; charset=utf-8"),
        ]
    )
    return Response(status, phrase, headers, body)


def _passthrough_response(backend: Response) -> Response:
    """The backend's refusal as the charger gets it: same status, headers and body."""
    headers = Headers(end_to_end_headers(backend.headers))
    body = bytes(backend.body or b"")
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    return Response(backend.status_code, backend.reason_phrase, headers, body)
