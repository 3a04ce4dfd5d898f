"""Refuse a message larger than ``ocpp_max_frame_bytes``: not forwarded, not recorded, and the
connection is closed with 1009 on both sides (killed when it cannot be closed cleanly)."""

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

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        limit = ctx.options.ocpp_max_frame_bytes
        if limit and len(message.content) > limit and not message.dropped:
            message.drop()
            if not self._close(flow, MESSAGE_TOO_BIG, "message too big") and flow.killable:
                flow.kill()
