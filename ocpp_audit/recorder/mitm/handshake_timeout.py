"""Close a client connection that has not become a WebSocket in time.

With the idle cut-off lifted (idle_timeout.py), a handshake that never completes would stay open for
ever: a client connection that is not a WebSocket ``ocpp_handshake_timeout`` seconds after it
connected is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mitmproxy import ctx, exceptions, http
from mitmproxy.connection import Client

from ocpp_audit.capture.connection import format_address

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

logger = logging.getLogger(__name__)

# The relay's value: its open_timeout (10 s, the backend's handshake) plus 5 s.
DEFAULT_HANDSHAKE_TIMEOUT_S = 15


class HandshakeTimeout:
    """One timer per client connection, cancelled when it becomes a WebSocket or goes away."""

    def __init__(self) -> None:
        # client connection id -> the timer that closes it unless it becomes a WebSocket in time
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "ocpp_handshake_timeout",
            int,
            DEFAULT_HANDSHAKE_TIMEOUT_S,
            "Seconds a client connection may take to complete its WebSocket upgrade (backend "
            "included); after that it is closed. 0: no limit.",
        )

    def configure(self, updated: set[str]) -> None:
        if "ocpp_handshake_timeout" in updated and ctx.options.ocpp_handshake_timeout < 0:
            raise exceptions.OptionsError("ocpp_handshake_timeout must be 0 (none) or positive")

    def client_connected(self, client: Client) -> None:
        seconds = ctx.options.ocpp_handshake_timeout
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self._timers[client.id] = loop.call_later(seconds, self._expired, client)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self._cancel(flow.client_conn.id)

    def client_disconnected(self, client: Client) -> None:
        self._cancel(client.id)

    def done(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _cancel(self, client_id: str) -> None:
        timer = self._timers.pop(client_id, None)
        if timer is not None:
            timer.cancel()

    def _expired(self, client: Client) -> None:
        self._timers.pop(client.id, None)
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
