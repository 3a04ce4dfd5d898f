"""Recording: one :class:`ConnectionRecorder` per charger WebSocket, fed from mitmproxy's hooks.

An ``open`` row when the WebSocket is up on both hops, one ``message`` row per message (written in
the ``websocket_message`` hook, which mitmproxy runs before it forwards the message), a ``close``
row at the end, and a ``refused`` row when the handshake fails (the backend's own status, such as
401, passes through unchanged; a backend that cannot be reached gives the charger 502 when
``connection_strategy=lazy``).

mitmproxy keeps every message of a flow in ``flow.websocket.messages`` for as long as the
connection lives; a charger stays connected for months. After each write the list is trimmed to the
latest message (other addons may still read ``messages[-1]`` in the same hook).

Failure policy: when the writer raises :class:`CaptureWriteError` (``capture_on_write_error=close``)
the message is dropped, not forwarded, and the connection is killed, so nothing crosses the
recorder unrecorded. A message another addon dropped before this one (frame_limit.py) is not
recorded: it never crossed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mitmproxy import ctx, http
from mitmproxy.connection import Client

from ocpp_audit.capture.connection import (
    ConnectionRecorder,
    charge_point_id_from_path,
    format_address,
)
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.capture.writer import CaptureWriteError
from ocpp_audit.protocol.frames import Frame
from ocpp_audit.recorder.mitm.capture_file import CaptureFile
from ocpp_audit.recorder.mitm.injection import MitmInjection
from ocpp_audit.recorder.mitm.upstream_path import original_path
from ocpp_audit.recorder.mitm.websocket_close import close_websocket, is_open, is_wake_up

if TYPE_CHECKING:
    from ocpp_audit.recorder.mirror import ChargerMirrors, MirrorHub

logger = logging.getLogger(__name__)

# RFC 6455 7.1.5: "If _The WebSocket Connection is Closed_ and no Close control frame was received
# by the endpoint ... _The WebSocket Connection Close Code_ is considered to be 1006."
ABNORMAL_CLOSURE = 1006


def is_websocket_upgrade(flow: http.HTTPFlow) -> bool:
    """The charger asked for a WebSocket (RFC 6455 4.1: ``Upgrade: websocket``)."""
    return flow.request.headers.get("upgrade", "").lower() == "websocket"


def _subprotocols(value: str | None) -> list[str]:
    return [token.strip() for token in (value or "").split(",") if token.strip()]


def _end_to_end_headers(flow: http.HTTPFlow) -> list[tuple[str, str]]:
    """The charger's request headers a mirror gets, as the relay passes them on (relay.py)."""
    from ocpp_audit.recorder.relay import HOP_BY_HOP_HEADERS

    named = {
        option.strip().lower()
        for value in flow.request.headers.get_all("connection")
        for option in value.split(",")
    }
    return [
        (name, value)
        for name, value in flow.request.headers.items(multi=True)
        if name.lower() not in HOP_BY_HOP_HEADERS
        and name.lower() not in named
        and not name.lower().startswith("sec-websocket-")
    ]


class Recording:
    """Writes each charger connection's rows into ``capture.writer``; routes injection through
    ``injection``."""

    # The time each message spends in the recording, when metrics are on (recorder/metrics.py).
    observe_forward: Callable[[float], None] | None = None

    def __init__(
        self, capture: CaptureFile, injection: MitmInjection, mirrors: MirrorHub | None = None
    ) -> None:
        self.capture = capture
        self.injection = injection
        self.mirrors = mirrors  # read-only shadow backends (recorder/mirror.py), when any
        self.charger_mirrors: dict[str, ChargerMirrors] = {}  # flow.id -> its mirrors' links
        self.recorders: dict[
            str, ConnectionRecorder
        ] = {}  # flow.id -> recorder of a live WebSocket
        self.flows: dict[str, http.HTTPFlow] = {}  # flow.id -> the live WebSocket flow
        self._closed_by_recorder: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    def running(self) -> None:
        strategy = getattr(ctx.options, "connection_strategy", "lazy")  # proxyserver's option
        if strategy != "lazy":
            logger.warning(
                "connection_strategy is %r: a charger whose backend cannot be reached is dropped "
                "instead of answered 502; set connection_strategy=lazy",
                strategy,
            )

    def done(self) -> None:
        # The process is going away: connections still open end without a close frame.
        for flow_id in list(self.recorders):
            self._record_close(flow_id, ABNORMAL_CLOSURE, "recorder stopped", ClosedBy.RECORDER)

    # -- HTTP: the handshake ---------------------------------------------------------------------

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
        writer = self.capture.writer
        if writer is None:
            return
        path = original_path(flow)
        recorder = ConnectionRecorder(writer, charge_point_id_from_path(path))
        self.recorders[flow.id] = recorder
        self.flows[flow.id] = flow
        chosen = flow.response.headers.get("sec-websocket-protocol") if flow.response else None
        self.injection.opened(flow, recorder, chosen or None)
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
        if self.mirrors is not None:
            self.charger_mirrors[flow.id] = self.mirrors.open(
                charge_point_id=recorder.charge_point_id,
                connection_id=recorder.connection_id,
                path=path,
                subprotocols=_subprotocols(
                    ",".join(flow.request.headers.get_all("sec-websocket-protocol"))
                ),
                headers=_end_to_end_headers(flow),
                remote_address=format_address(flow.client_conn.peername),
            )

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        if flow.id in self._closed_by_recorder and is_wake_up(message):
            message.drop()  # close_websocket's wake-up: it only makes the layer send the Close
            return
        if self.injection.is_passthrough(flow, message):
            del flow.websocket.messages[:-1]
            return
        recorder = self.recorders.get(flow.id)
        if recorder is None:
            if flow.id in self._closed_by_recorder:
                # The recorder closed this connection: nothing more is forwarded (see mitm_engine).
                message.drop()
            return
        if message.dropped:
            return  # another addon refused it (frame_limit.py): it never crosses, so no row
        direction = Direction.CP_TO_CS if message.from_client else Direction.CS_TO_CP
        data: str | bytes = message.content
        if message.is_text:
            # wsproto checked it is UTF-8 (RFC 6455 8.1); only another addon's edit could break
            # that, and then the bytes are kept as they are.
            with contextlib.suppress(UnicodeDecodeError):
                data = message.content.decode("utf-8")
        ts = int(message.timestamp * 1_000_000)
        frames: list[Frame] = []
        arrived = time.perf_counter()
        if self._write(
            flow,
            lambda: frames.append(
                recorder.message(direction, data, injected=message.injected, ts=ts)
            ),
        ):
            if self.observe_forward is not None:
                # mitmproxy sends the message on when this hook returns: what the hook took is
                # what the recorder added.
                self.observe_forward(arrived)
            # mitmproxy keeps every message of a flow until it ends; keep only the latest.
            del flow.websocket.messages[:-1]
            if frames and not self.injection.forward(flow, message, frames[0], data):
                message.drop()  # an answer to an injected CALL, or a backend CALL held
            elif frames and (mirrors := self.charger_mirrors.get(flow.id)) is not None:
                # mitmproxy forwards the message after this hook; the mirrors' queues take it
                # now (an append, no waiting).
                if direction is Direction.CP_TO_CS:
                    mirrors.from_charger(frames[0])
                else:
                    mirrors.from_primary(frames[0], recorder.last_event)
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

    def client_disconnected(self, client: Client) -> None:
        # A connection torn down without websocket_end (e.g. killed): still write its close row.
        for flow_id, flow in list(self.flows.items()):
            if flow.client_conn.id == client.id:
                self._record_close(
                    flow_id, ABNORMAL_CLOSURE, "connection lost", self._closed_by(flow)
                )
                self._closed_by_recorder.discard(flow_id)

    # -- used by the engine and frame_limit.py ---------------------------------------------------

    def recorder_of_client(self, peername: object) -> ConnectionRecorder | None:
        """The recorder of the live WebSocket of the charger at ``peername`` (host, port)."""
        for flow_id, flow in self.flows.items():
            if flow.client_conn.peername == peername:
                return self.recorders.get(flow_id)
        return None

    def live_flows(self) -> list[http.HTTPFlow]:
        """The WebSocket flows that are open now."""
        return list(self.flows.values())

    def close(self, flow: http.HTTPFlow, code: int, reason: str) -> bool:
        """Close both hops of a live WebSocket with ``code``; False if it is not open any more.

        The close row is written first, ``closed_by`` = recorder; then the Close is queued on
        mitmproxy's WebSocket layer (websocket_close.py), whose wake-up message this addon drops.
        """
        if not is_open(flow):
            return False
        self._closed_by_recorder.add(flow.id)
        self._record_close(flow.id, code, reason, ClosedBy.RECORDER)  # first, as it happens
        close_websocket(flow, code, reason)
        return True

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
        self.injection.closed(flow_id)  # fails a pending injection at once
        mirrors = self.charger_mirrors.pop(flow_id, None)
        if mirrors is not None:
            mirrors.close()
        if recorder is not None and flow is not None:
            self._write(flow, lambda: recorder.closed(code, reason, closed_by), kill=False)

    def _record_refused(self, flow: http.HTTPFlow, status: int, reason: str) -> None:
        writer = self.capture.writer
        if writer is None:
            return
        path = original_path(flow)
        recorder = ConnectionRecorder(writer, charge_point_id_from_path(path))
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
