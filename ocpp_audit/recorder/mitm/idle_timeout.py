"""Lift mitmproxy's 600 s idle cut-off, which would cut chargers that heartbeat rarely.

mitmproxy cuts a TCP connection that has been idle for 600 s (the module constant ``TCP_TIMEOUT``
in mitmproxy 11, read when a connection is accepted; the ``tcp_timeout`` option from 12.2.1). A
charger that sends one Heartbeat an hour would be cut and reconnect, which the capture would show
as a fake outage. ``ocpp_idle_timeout`` (0: no cut-off, the default) replaces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server as mitm_server

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

# "No cut-off", as a number mitmproxy's watchdog can sleep on: ten years.
NO_IDLE_TIMEOUT_S = 10 * 365 * 24 * 3600


class IdleTimeout:
    """Sets mitmproxy's idle cut-off from ``ocpp_idle_timeout``; puts mitmproxy 11's back in done."""

    def __init__(self) -> None:
        self._original_tcp_timeout: int | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "ocpp_idle_timeout",
            int,
            0,
            "Seconds of silence after which a connection is cut; 0 means never. Replaces mitmproxy's "
            "600 s default, which would cut chargers that heartbeat rarely.",
        )
        # configure() sees only options that are set; the default must hold from the start too.
        self._apply(ctx.options.ocpp_idle_timeout or NO_IDLE_TIMEOUT_S)

    def configure(self, updated: set[str]) -> None:
        if "ocpp_idle_timeout" in updated:
            if ctx.options.ocpp_idle_timeout < 0:
                raise exceptions.OptionsError("ocpp_idle_timeout must be 0 (never) or positive")
            self._apply(ctx.options.ocpp_idle_timeout or NO_IDLE_TIMEOUT_S)

    def done(self) -> None:
        if self._original_tcp_timeout is not None:
            mitm_server.TCP_TIMEOUT = self._original_tcp_timeout
            self._original_tcp_timeout = None

    def _apply(self, seconds: int) -> None:
        """Set mitmproxy's TCP idle cut-off for connections accepted from now on."""
        if "tcp_timeout" in ctx.options:  # mitmproxy >= 12.2.1
            if ctx.options.tcp_timeout != seconds:
                ctx.options.update(tcp_timeout=seconds)
        else:  # mitmproxy 11: a module constant, read when a connection is accepted
            if self._original_tcp_timeout is None:
                self._original_tcp_timeout = mitm_server.TCP_TIMEOUT
            mitm_server.TCP_TIMEOUT = seconds
