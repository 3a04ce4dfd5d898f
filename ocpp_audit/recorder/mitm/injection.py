"""Injected CALLs (the control API) through mitmproxy: one ``ChargerLink`` per live WebSocket.

Not an addon of its own: the recording addon consults it at the points where injection and
recording meet (a WebSocket opens; a message was recorded and may be an answer to an injected CALL
or a backend CALL to hold; a message we injected comes back through the hook; a connection ends).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

from mitmproxy import ctx, http
from mitmproxy.proxy.layers.websocket import WebSocketMessageInjected
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.protocol.frames import Frame
from ocpp_audit.recorder.injection import ChargerLink, ChargerRegistry


class MitmInjection:
    """The live chargers (``registry``, for the control API) and the messages we injected."""

    def __init__(self) -> None:
        self.registry = ChargerRegistry()
        self.links: dict[str, ChargerLink] = {}  # flow.id -> its link
        # flow.id -> messages we injected toward the charger, already recorded: pass them as they are
        self._passthrough: dict[str, deque[bytes]] = {}

    def opened(
        self, flow: http.HTTPFlow, recorder: ConnectionRecorder, subprotocol: str | None
    ) -> None:
        link = ChargerLink(recorder, self._sender(flow), subprotocol=subprotocol)
        self.links[flow.id] = link
        self.registry.add(link)

    def is_passthrough(self, flow: http.HTTPFlow, message: WebSocketMessage) -> bool:
        """A CALL we injected (recorded by ChargerLink) or a held backend CALL (recorded when it
        came), coming through the hook on its way to the charger: forward it, do not record it."""
        passthrough = self._passthrough.get(flow.id)
        if (
            message.injected
            and not message.from_client
            and passthrough
            and passthrough[0] == message.content
        ):
            passthrough.popleft()
            return True
        return False

    def forward(
        self, flow: http.HTTPFlow, message: WebSocketMessage, frame: Frame, data: str | bytes
    ) -> bool:
        """Whether a recorded message goes on: False for an answer to an injected CALL, or a
        backend CALL held while one of ours is in flight."""
        link = self.links.get(flow.id)
        if link is None:
            return True
        if message.from_client:
            return link.from_charger(frame)
        return link.from_backend(frame, data)

    def closed(self, flow_id: str) -> None:
        self._passthrough.pop(flow_id, None)
        link = self.links.pop(flow_id, None)
        if link is not None:
            self.registry.remove(link)  # fails a pending injection at once

    def _sender(self, flow: http.HTTPFlow) -> Callable[[str | bytes], Awaitable[None]]:
        """How a ChargerLink sends a message to the charger of ``flow``: injected into mitmproxy."""

        async def send_to_charger(data: str | bytes) -> None:
            content = data.encode() if isinstance(data, str) else data
            opcode = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
            proxyserver = ctx.master.addons.get("proxyserver")
            if proxyserver is None or flow.id not in self.links:
                raise ConnectionError("the charger's connection is gone")
            self._passthrough.setdefault(flow.id, deque()).append(content)
            message = WebSocketMessage(opcode, False, content, injected=True)
            try:
                proxyserver.inject_event(WebSocketMessageInjected(flow, message))
            except ValueError as exc:  # the connection is gone
                raise ConnectionError(str(exc)) from exc

        return send_to_charger
