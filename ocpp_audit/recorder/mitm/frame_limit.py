"""Refuse a message larger than ``ocpp_max_frame_bytes``: not forwarded, not recorded, and the
connection is closed with 1009 on both sides (killed when it cannot be closed cleanly).

mitmproxy hands an addon a message only once it is whole, inflated: with permessage-deflate a
charger could make it inflate gigabytes (1.5 MB on the wire took it to 3.3 GB) before this limit is
seen. So while a limit is set, the charger's offer of compression is not passed on: no hop
negotiates permessage-deflate (RFC 7692 negotiates it per hop, and a charger must work without it),
and a message costs no more memory than the bytes the charger really sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mitmproxy import ctx, exceptions, http

from ocpp_audit.recorder.options import DEFAULT_MAX_FRAME_BYTES

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

# RFC 6455 7.4.1: "1009 indicates that an endpoint is terminating the connection because it has
# received a message that is too big for it to process."
MESSAGE_TOO_BIG = 1009


class FrameLimit:
    """Runs before the recording addon, which records nothing that was dropped here.

    ``close``: how a live WebSocket is closed with a code (the recording addon's ``close``, which
    writes the close row first); False when it is not open any more.
    """

    def __init__(self, close: Callable[[http.HTTPFlow, int, str], bool]) -> None:
        self._close = close

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "ocpp_max_frame_bytes",
            int,
            DEFAULT_MAX_FRAME_BYTES,
            "A message larger than this is not forwarded; the connection closes with 1009 (message "
            "too big) on both sides. 0: no limit.",
        )

    def configure(self, updated: set[str]) -> None:
        if "ocpp_max_frame_bytes" in updated and ctx.options.ocpp_max_frame_bytes < 0:
            raise exceptions.OptionsError("ocpp_max_frame_bytes must be 0 (no limit) or positive")

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if ctx.options.ocpp_max_frame_bytes and "Sec-WebSocket-Extensions" in flow.request.headers:
            # mitmproxy supports no other extension, and one it cannot speak must not be agreed.
            del flow.request.headers["Sec-WebSocket-Extensions"]

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        limit = ctx.options.ocpp_max_frame_bytes
        if limit and len(message.content) > limit and not message.dropped:
            message.drop()
            if not self._close(flow, MESSAGE_TOO_BIG, "message too big") and flow.killable:
                flow.kill()
