"""A mitmproxy addon that records OCPP-J WebSocket traffic into the same capture as the relay engine.

Used by :class:`ocpp_audit.recorder.mitm_engine.MitmEngine` (which hands it the capture writer), or
directly with mitmproxy's own tools, in which case it opens and closes its own writer::

    mitmdump -s ocpp_audit/recorder/mitm_addon.py --set capture_dir=captures/site-a \\
        --set connection_strategy=lazy --mode reverse:http://csms.example.com:9000

Per charger connection it feeds one :class:`ConnectionRecorder`: an ``open`` row when the WebSocket
is up on both hops, one ``message`` row per message (written in the ``websocket_message`` hook, which
mitmproxy runs before it forwards the message), a ``close`` row at the end, and a ``refused`` row
when the handshake fails (the backend's own status, such as 401, passes through unchanged; a backend
that cannot be reached gives the charger 502 when ``connection_strategy=lazy``).

Two mitmproxy defaults do not suit chargers, and the addon changes both:

- mitmproxy keeps every message of a flow in ``flow.websocket.messages`` for as long as the
  connection lives; a charger stays connected for months. After each write the list is trimmed to
  the latest message (other addons may still read ``messages[-1]`` in the same hook).
- mitmproxy cuts a TCP connection that has been idle for 600 s (hard-coded ``TCP_TIMEOUT`` in
  mitmproxy 11, the ``tcp_timeout`` option from 12.2.1). A charger that sends one Heartbeat an hour
  would be cut and reconnect, which the capture would show as a fake outage. ``ocpp_idle_timeout``
  (0: no cut-off, the default) replaces it. With no cut-off a handshake that never completes would
  stay open for ever, so a client connection that is not a WebSocket ``ocpp_handshake_timeout``
  seconds (15) after it connected is closed.

``ocpp_pseudonymise_key`` gives ``mitmdump -s`` users the recorder's ``--pseudonymise-idtags``: the
addon's own writer is wrapped in a ``PseudonymisingSink`` (the engine wraps the writer it passes).

Failure policy, as for the relay: with ``capture_on_write_error=continue`` a row the writer cannot
write is counted (``CaptureWriter.unrecorded``) and traffic flows on; with ``close`` the writer
raises :class:`CaptureWriteError`, the message is not forwarded and the connection is killed, so
nothing crosses the recorder unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import wsproto.events
from mitmproxy import ctx, exceptions, http
from mitmproxy.connection import Client
from mitmproxy.proxy import server as mitm_server
from mitmproxy.proxy.layer import Layer
from mitmproxy.proxy.layers.websocket import WebsocketLayer, WebSocketMessageInjected
from mitmproxy.websocket import WebSocketMessage
from wsproto import ConnectionState
from wsproto.frame_protocol import Opcode

from ocpp_audit.capture.connection import (
    ConnectionRecorder,
    RowSink,
    charge_point_id_from_path,
    format_address,
)
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.capture.writer import CaptureWriteError, CaptureWriter
from ocpp_audit.protocol.frames import Frame
from ocpp_audit.recorder.injection import ChargerLink, ChargerRegistry
from ocpp_audit.recorder.options import DEFAULT_MAX_FRAME_BYTES

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

logger = logging.getLogger(__name__)

# "No cut-off", as a number mitmproxy's watchdog can sleep on: ten years.
NO_IDLE_TIMEOUT_S = 10 * 365 * 24 * 3600
# A client connection not a WebSocket this long after it connected is closed: with the idle cut-off
# lifted, a stalled handshake would otherwise stay open for ever. The relay's value: its open_timeout
# (10 s, the backend's handshake) plus 5 s.
DEFAULT_HANDSHAKE_TIMEOUT_S = 15

# RFC 6455 7.1.5: "If _The WebSocket Connection is Closed_ and no Close control frame was received
# by the endpoint ... _The WebSocket Connection Close Code_ is considered to be 1006."
ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG = 1009

_ORIGINAL_PATH = "ocpp_audit.path"  # flow.metadata key: the charger's path before rewriting


def is_websocket_upgrade(flow: http.HTTPFlow) -> bool:
    """The charger asked for a WebSocket (RFC 6455 4.1: ``Upgrade: websocket``)."""
    return flow.request.headers.get("upgrade", "").lower() == "websocket"


def _subprotocols(value: str | None) -> list[str]:
    return [token.strip() for token in (value or "").split(",") if token.strip()]


class OcppCapture:
    """Records every OCPP-J WebSocket connection through mitmproxy into a capture.

    ``writer``: where rows go (a ``CaptureWriter``); when None, the addon opens one on
    ``capture_dir`` in ``running`` and closes it in ``done``.
    """

    def __init__(self, writer: RowSink | None = None) -> None:
        self.writer: RowSink | None = writer
        self._owns_writer = writer is None
        self._own_writer: CaptureWriter | None = None  # the writer opened in running()
        self.recorders: dict[
            str, ConnectionRecorder
        ] = {}  # flow.id -> recorder of a live WebSocket
        self.flows: dict[str, http.HTTPFlow] = {}  # flow.id -> the live WebSocket flow
        self._closed_by_recorder: set[str] = set()
        self._original_tcp_timeout: int | None = None
        self.registry = ChargerRegistry()  # live chargers, for injected CALLs (control API)
        self.links: dict[str, ChargerLink] = {}  # flow.id -> its link
        # flow.id -> messages we injected toward the charger, already recorded: pass them as they are
        self._passthrough: dict[str, deque[bytes]] = {}
        # client connection id -> the timer that closes it unless it becomes a WebSocket in time
        self._handshake_timers: dict[str, asyncio.TimerHandle] = {}

    # -- options ---------------------------------------------------------------------------------

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "capture_dir",
            Optional[str],  # noqa: UP045 - mitmproxy's option types are typing objects
            None,
            "Capture folder: parts go to <capture_dir>/frames/date=YYYY-MM-DD/. Required when the "
            "addon runs inside mitmdump/mitmproxy.",
        )
        loader.add_option(
            "capture_rotate_seconds",
            int,
            300,
            "Seal the capture journal into a Parquet part at least this often (seconds).",
        )
        loader.add_option(
            "capture_rotate_bytes",
            int,
            64 * 1024 * 1024,
            "Seal the capture journal into a Parquet part when it grows past this many bytes.",
        )
        loader.add_option(
            "capture_on_write_error",
            str,
            "continue",
            "When a row cannot be written: continue (count it, keep forwarding) or close (kill the "
            "charger's connection rather than forward a frame unrecorded).",
            choices=("continue", "close"),
        )
        loader.add_option(
            "ocpp_upstream_path",
            str,
            "",
            "Path prepended to the charger's request path on the way upstream (mitmproxy's reverse "
            "mode takes no path): '/base' sends /ocpp/CP1 to /base/ocpp/CP1.",
        )
        loader.add_option(
            "ocpp_idle_timeout",
            int,
            0,
            "Seconds of silence after which a connection is cut; 0 means never. Replaces mitmproxy's "
            "600 s default, which would cut chargers that heartbeat rarely.",
        )
        loader.add_option(
            "ocpp_max_frame_bytes",
            int,
            DEFAULT_MAX_FRAME_BYTES,
            "A message larger than this is not forwarded; the connection closes with 1009 (message "
            "too big) on both sides. 0: no limit.",
        )
        loader.add_option(
            "ocpp_handshake_timeout",
            int,
            DEFAULT_HANDSHAKE_TIMEOUT_S,
            "Seconds a client connection may take to complete its WebSocket upgrade (backend "
            "included); after that it is closed. 0: no limit.",
        )
        loader.add_option(
            "ocpp_pseudonymise_key",
            str,
            "",
            "Replace idTags in the capture (never on the wire) by a keyed hash (HMAC-SHA256 under "
            "this key), as record --pseudonymise-idtags. Only when the addon opens its own capture.",
        )
        # configure() sees only options that are set; the default must hold from the start too.
        self._apply_idle_timeout(ctx.options.ocpp_idle_timeout or NO_IDLE_TIMEOUT_S)

    def configure(self, updated: set[str]) -> None:
        if "capture_rotate_seconds" in updated and ctx.options.capture_rotate_seconds <= 0:
            raise exceptions.OptionsError("capture_rotate_seconds must be positive")
        if "capture_rotate_bytes" in updated and ctx.options.capture_rotate_bytes <= 0:
            raise exceptions.OptionsError("capture_rotate_bytes must be positive")
        if "capture_on_write_error" in updated and ctx.options.capture_on_write_error not in (
            "continue",
            "close",
        ):
            raise exceptions.OptionsError("capture_on_write_error must be continue or close")
        if "capture_dir" in updated and ctx.options.capture_dir:
            path = Path(ctx.options.capture_dir)
            if path.exists() and not path.is_dir():
                raise exceptions.OptionsError(f"capture_dir is not a folder: {path}")
        if "ocpp_upstream_path" in updated:
            prefix = ctx.options.ocpp_upstream_path
            if prefix and (not prefix.startswith("/") or "?" in prefix or "#" in prefix):
                raise exceptions.OptionsError(
                    f"ocpp_upstream_path must be a path starting with '/': {prefix!r}"
                )
        if "ocpp_max_frame_bytes" in updated and ctx.options.ocpp_max_frame_bytes < 0:
            raise exceptions.OptionsError("ocpp_max_frame_bytes must be 0 (no limit) or positive")
        if "ocpp_handshake_timeout" in updated and ctx.options.ocpp_handshake_timeout < 0:
            raise exceptions.OptionsError("ocpp_handshake_timeout must be 0 (none) or positive")
        if "ocpp_idle_timeout" in updated:
            if ctx.options.ocpp_idle_timeout < 0:
                raise exceptions.OptionsError("ocpp_idle_timeout must be 0 (never) or positive")
            self._apply_idle_timeout(ctx.options.ocpp_idle_timeout or NO_IDLE_TIMEOUT_S)

    def _apply_idle_timeout(self, seconds: int) -> None:
        """Set mitmproxy's TCP idle cut-off for connections accepted from now on."""
        if "tcp_timeout" in ctx.options:  # mitmproxy >= 12.2.1
            if ctx.options.tcp_timeout != seconds:
                ctx.options.update(tcp_timeout=seconds)
        else:  # mitmproxy 11: a module constant, read when a connection is accepted
            if self._original_tcp_timeout is None:
                self._original_tcp_timeout = mitm_server.TCP_TIMEOUT
            mitm_server.TCP_TIMEOUT = seconds

    # -- lifecycle -------------------------------------------------------------------------------

    def running(self) -> None:
        strategy = getattr(ctx.options, "connection_strategy", "lazy")  # proxyserver's option
        if strategy != "lazy":
            logger.warning(
                "connection_strategy is %r: a charger whose backend cannot be reached is dropped "
                "instead of answered 502; set connection_strategy=lazy",
                strategy,
            )
        if self.writer is not None:
            return
        if not ctx.options.capture_dir:
            logger.error("ocpp-audit: set capture_dir (--set capture_dir=DIR) to record")
            return
        writer = CaptureWriter(
            Path(ctx.options.capture_dir),
            rotate_seconds=float(ctx.options.capture_rotate_seconds),
            rotate_bytes=ctx.options.capture_rotate_bytes,
            on_write_error=ctx.options.capture_on_write_error,
        )
        recovered = writer.start()
        if recovered:
            logger.info("sealed %d journal(s) left by an earlier run", len(recovered))
        self._own_writer = writer
        self.writer = writer
        if ctx.options.ocpp_pseudonymise_key:
            from ocpp_audit.recorder.pseudonymise import IdTagPseudonymiser, PseudonymisingSink

            # As the recorder service does: idTags change in the capture only, never on the wire.
            pseudonymiser = IdTagPseudonymiser(ctx.options.ocpp_pseudonymise_key)
            self.writer = PseudonymisingSink(writer, pseudonymiser)
        self._owns_writer = True

    def done(self) -> None:
        # The process is going away: connections still open end without a close frame.
        for flow_id in list(self.recorders):
            self._record_close(flow_id, ABNORMAL_CLOSURE, "recorder stopped", ClosedBy.RECORDER)
        if self._original_tcp_timeout is not None:
            mitm_server.TCP_TIMEOUT = self._original_tcp_timeout
            self._original_tcp_timeout = None
        for timer in self._handshake_timers.values():
            timer.cancel()
        self._handshake_timers.clear()
        if self._owns_writer and self.writer is not None:
            close = getattr(self._own_writer or self.writer, "close", None)
            if close is not None:
                close()
            self.writer = None
            self._own_writer = None

    # -- HTTP: the handshake ---------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flow.metadata[_ORIGINAL_PATH] = flow.request.path
        prefix = ctx.options.ocpp_upstream_path.rstrip("/")
        if prefix:
            flow.request.path = prefix + flow.request.path

    def response(self, flow: http.HTTPFlow) -> None:
        # A WebSocket that is going ahead has flow.websocket set before this hook.
        if flow.websocket is None and is_websocket_upgrade(flow) and flow.response is not None:
            self._record_refused(flow, flow.response.status_code, flow.response.reason)

    def error(self, flow: http.HTTPFlow) -> None:
        reason = flow.error.msg if flow.error else "error"
        if flow.id in self.recorders:
            code = (flow.websocket.close_code if flow.websocket else None) or ABNORMAL_CLOSURE
            self._record_close(flow.id, code, reason, self._closed_by(flow))
        elif flow.websocket is None and is_websocket_upgrade(flow):
            # No answer from the backend: mitmproxy answers the charger 502 Bad Gateway itself.
            status = flow.response.status_code if flow.response is not None else 502
            self._record_refused(flow, status, reason)

    # -- WebSocket -------------------------------------------------------------------------------

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self._handshake_done(flow.client_conn.id)
        if self.writer is None:
            return
        path = flow.metadata.get(_ORIGINAL_PATH, flow.request.path)
        recorder = ConnectionRecorder(self.writer, charge_point_id_from_path(path))
        self.recorders[flow.id] = recorder
        self.flows[flow.id] = flow
        chosen = flow.response.headers.get("sec-websocket-protocol") if flow.response else None
        link = ChargerLink(recorder, self._sender(flow), subprotocol=chosen or None)
        self.links[flow.id] = link
        self.registry.add(link)
        self._write(
            flow,
            lambda: recorder.opened(
                path=path,
                subprotocols_offered=_subprotocols(
                    ",".join(flow.request.headers.get_all("sec-websocket-protocol"))
                ),
                subprotocol=chosen or None,
                remote_address=format_address(flow.client_conn.peername),
                authorization=flow.request.headers.get("authorization"),
                tls=flow.client_conn.tls_established,
            ),
        )

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        recorder = self.recorders.get(flow.id)
        passthrough = self._passthrough.get(flow.id)
        if (
            message.injected
            and not message.from_client
            and passthrough
            and passthrough[0] == message.content
        ):
            # A CALL we injected (recorded by ChargerLink) or a held backend CALL (recorded when
            # it came): forward it without recording it twice.
            passthrough.popleft()
            del flow.websocket.messages[:-1]
            return
        if recorder is None:
            if flow.id in self._closed_by_recorder:
                # The recorder closed this connection: nothing more is forwarded (see mitm_engine).
                message.drop()
            return
        limit = ctx.options.ocpp_max_frame_bytes
        if limit and len(message.content) > limit:
            # RFC 6455 7.4.1: "1009 indicates that an endpoint is terminating the connection
            # because it has received a message that is too big for it to process."
            message.drop()
            if not self.close(flow, MESSAGE_TOO_BIG, "message too big") and flow.killable:
                flow.kill()
            return
        direction = Direction.CP_TO_CS if message.from_client else Direction.CS_TO_CP
        data: str | bytes = message.content
        if message.is_text:
            # wsproto checked it is UTF-8 (RFC 6455 8.1); only another addon's edit could break
            # that, and then the bytes are kept as they are.
            with contextlib.suppress(UnicodeDecodeError):
                data = message.content.decode("utf-8")
        ts = int(message.timestamp * 1_000_000)
        frames: list[Frame] = []
        if self._write(
            flow,
            lambda: frames.append(
                recorder.message(direction, data, injected=message.injected, ts=ts)
            ),
        ):
            # mitmproxy keeps every message of a flow until it ends; keep only the latest.
            del flow.websocket.messages[:-1]
            link = self.links.get(flow.id)
            if link is not None and frames:
                if message.from_client:
                    forward = link.from_charger(frames[0])
                else:
                    forward = link.from_backend(frames[0], data)
                if not forward:
                    message.drop()  # an answer to an injected CALL, or a backend CALL held
        else:
            message.drop()  # not recorded, so not forwarded ("close" write-error policy)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        self._record_close(
            flow.id,
            flow.websocket.close_code or ABNORMAL_CLOSURE,
            flow.websocket.close_reason,
            self._closed_by(flow),
        )
        self._closed_by_recorder.discard(flow.id)
        del flow.websocket.messages[:]

    def client_connected(self, client: Client) -> None:
        seconds = ctx.options.ocpp_handshake_timeout
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self._handshake_timers[client.id] = loop.call_later(
                seconds, self._handshake_expired, client
            )

    def _handshake_done(self, client_id: str) -> None:
        timer = self._handshake_timers.pop(client_id, None)
        if timer is not None:
            timer.cancel()

    def _handshake_expired(self, client: Client) -> None:
        """Close a client connection that is not a WebSocket after ocpp_handshake_timeout."""
        self._handshake_timers.pop(client.id, None)
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = getattr(proxyserver, "connections", {}).get(client.id)
        if handler is None:
            return  # gone already
        logger.warning(
            "closing %s: no WebSocket handshake within %d s",
            format_address(client.peername),
            ctx.options.ocpp_handshake_timeout,
        )
        with contextlib.suppress(KeyError):  # it may end in the meantime
            handler.close_connection(handler.client)

    def client_disconnected(self, client: Client) -> None:
        self._handshake_done(client.id)
        # A connection torn down without websocket_end (e.g. killed): still write its close row.
        for flow_id, flow in list(self.flows.items()):
            if flow.client_conn.id == client.id:
                self._record_close(
                    flow_id, ABNORMAL_CLOSURE, "connection lost", self._closed_by(flow)
                )
                self._closed_by_recorder.discard(flow_id)

    # -- used by the engine ----------------------------------------------------------------------

    def live_flows(self) -> list[http.HTTPFlow]:
        """The WebSocket flows that are open now."""
        return list(self.flows.values())

    def close(self, flow: http.HTTPFlow, code: int, reason: str) -> bool:
        """Close both hops of a live WebSocket with ``code``; False if it is not open any more.

        mitmproxy has no API to close a WebSocket. We queue a Close on the WebSocket layer's
        charger-side protocol state and wake the layer with an injected (empty) message: the layer
        handles the Close as one from the charger, sending the close frame to both peers (through
        TLS when there is TLS) and closing both connections; the empty message that woke it is
        dropped here, unforwarded. The close row is written first, ``closed_by`` = recorder.
        """
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
        layer = find_websocket_layer(handler.layer, flow) if handler is not None else None
        if layer is None or layer.client_ws.state is not ConnectionState.OPEN:
            return False
        self._closed_by_recorder.add(flow.id)
        self._record_close(flow.id, code, reason, ClosedBy.RECORDER)
        layer.client_ws._events.append(wsproto.events.CloseConnection(code=code, reason=reason))
        wake = WebSocketMessage(Opcode.TEXT, True, b"", injected=True)
        try:
            proxyserver.inject_event(WebSocketMessageInjected(flow, wake))
        except ValueError:
            logger.debug("connection of %s is already gone", flow.id)
        return True

    def _sender(self, flow: http.HTTPFlow) -> Callable[[str | bytes], Awaitable[None]]:
        """How a ChargerLink sends a message to the charger of ``flow``: injected into mitmproxy."""

        async def send_to_charger(data: str | bytes) -> None:
            content = data.encode() if isinstance(data, str) else data
            opcode = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
            proxyserver = ctx.master.addons.get("proxyserver")
            if proxyserver is None or flow.id not in self.flows:
                raise ConnectionError("the charger's connection is gone")
            self._passthrough.setdefault(flow.id, deque()).append(content)
            message = WebSocketMessage(opcode, False, content, injected=True)
            try:
                proxyserver.inject_event(WebSocketMessageInjected(flow, message))
            except ValueError as exc:  # the connection is gone
                raise ConnectionError(str(exc)) from exc

        return send_to_charger

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _closed_by(flow: http.HTTPFlow) -> ClosedBy:
        closed_by_client = flow.websocket.closed_by_client if flow.websocket else None
        if closed_by_client is None:
            return ClosedBy.RECORDER
        return ClosedBy.CHARGER if closed_by_client else ClosedBy.BACKEND

    def _record_close(
        self, flow_id: str, code: int, reason: str | None, closed_by: ClosedBy
    ) -> None:
        recorder = self.recorders.pop(flow_id, None)
        flow = self.flows.pop(flow_id, None)
        self._passthrough.pop(flow_id, None)
        link = self.links.pop(flow_id, None)
        if link is not None:
            self.registry.remove(link)  # fails a pending injection at once
        if recorder is not None and flow is not None:
            self._write(flow, lambda: recorder.closed(code, reason, closed_by), kill=False)

    def _record_refused(self, flow: http.HTTPFlow, status: int, reason: str) -> None:
        if self.writer is None:
            return
        path = flow.metadata.get(_ORIGINAL_PATH, flow.request.path)
        recorder = ConnectionRecorder(self.writer, charge_point_id_from_path(path))
        self._write(
            flow,
            lambda: recorder.refused(
                path=path,
                http_status=status,
                reason=reason,
                subprotocols_offered=_subprotocols(
                    ",".join(flow.request.headers.get_all("sec-websocket-protocol"))
                ),
                remote_address=format_address(flow.client_conn.peername),
                authorization=flow.request.headers.get("authorization"),
                tls=flow.client_conn.tls_established,
            ),
            kill=False,
        )

    def _write(
        self, flow: http.HTTPFlow, write: Callable[[], object], *, kill: bool = True
    ) -> bool:
        """Run one recorder write; on a write error that the policy makes fatal, kill the flow."""
        try:
            write()
        except CaptureWriteError as exc:
            logger.error("capture write failed, closing the charger's connection: %s", exc)
            if kill and flow.killable:
                flow.kill()
            return False
        return True


def find_websocket_layer(root: Layer, flow: http.HTTPFlow) -> WebsocketLayer | None:
    """The WebsocketLayer relaying ``flow``, searched through one connection's layer tree."""
    stack: list[object] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen or not isinstance(node, Layer):
            continue
        seen.add(id(node))
        if isinstance(node, WebsocketLayer) and node.flow is flow:
            return node
        for name in ("layer", "child_layer"):
            stack.append(getattr(node, name, None))
        for name in ("streams", "connections"):
            children = getattr(node, name, None)
            if isinstance(children, dict):
                stack.extend(children.values())
    return None


addons = [OcppCapture()]
