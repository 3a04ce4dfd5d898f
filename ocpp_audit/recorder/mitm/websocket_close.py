"""Closing a live WebSocket from the proxy: mitmproxy has no API for it.

We queue a Close on the WebSocket layer's charger-side protocol state and wake the layer with an
injected (empty) message: the layer handles the Close as one from the charger, sending the close
frame to both peers (through TLS when there is TLS) and closing both connections. The empty message
that woke it must be dropped, unforwarded, by whoever sees it in ``websocket_message``.
"""

from __future__ import annotations

import logging

import wsproto.events
from mitmproxy import ctx, http
from mitmproxy.proxy.layer import Layer
from mitmproxy.proxy.layers.websocket import WebsocketLayer, WebSocketMessageInjected
from mitmproxy.websocket import WebSocketMessage
from wsproto import ConnectionState
from wsproto.frame_protocol import Opcode

logger = logging.getLogger(__name__)


def _open_layer(flow: http.HTTPFlow) -> WebsocketLayer | None:
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
    layer = find_websocket_layer(handler.layer, flow) if handler is not None else None
    if layer is None or layer.client_ws.state is not ConnectionState.OPEN:
        return None
    return layer


def is_open(flow: http.HTTPFlow) -> bool:
    """Whether ``flow``'s WebSocket is open on the charger's side (a Close can still be queued)."""
    return _open_layer(flow) is not None


def is_wake_up(message: WebSocketMessage) -> bool:
    """The empty injected message ``close_websocket`` wakes the layer with (never forwarded)."""
    return message.injected and message.from_client and not message.content


def close_websocket(flow: http.HTTPFlow, code: int, reason: str) -> bool:
    """Queue a Close with ``code`` on both hops of ``flow``; False if it is not open any more.

    mitmproxy 12 may run the addons' ``websocket_message`` for the wake-up message before this
    returns: callers mark the flow as closing first and drop the wake-up by ``is_wake_up``.
    """
    proxyserver = ctx.master.addons.get("proxyserver")
    layer = _open_layer(flow)
    if layer is None:
        return False
    layer.client_ws._events.append(wsproto.events.CloseConnection(code=code, reason=reason))
    wake = WebSocketMessage(Opcode.TEXT, True, b"", injected=True)
    try:
        proxyserver.inject_event(WebSocketMessageInjected(flow, wake))
    except ValueError:
        logger.debug("connection of %s is already gone", flow.id)
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
