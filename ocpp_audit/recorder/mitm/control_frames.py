"""Pings and pongs in the mitmproxy engine: a ``ping`` or ``pong`` row for each, as the relay writes.

mitmproxy forwards WebSocket pings and pongs itself, unchanged, to the other side
(``mitmproxy/proxy/layers/websocket.py``: ``yield dst_ws.send2(ws_event)``), and offers no addon
hook for them. It logs each one instead, through the ``mitmproxy.proxy.server`` logger at INFO,
with the charger's address in the record (``extra={"client": peername}``)::

    Received WebSocket ping from client (payload: b'charger-1')

This addon listens to those records while mitmproxy runs and writes the row on the connection of
the charger at that address: ``from client`` is cp_to_cs, ``from server`` cs_to_cp, and the payload
(RFC 6455 5.5.2: "application data") goes to ``raw_binary`` as the relay's rows have it. The
logger is set to INFO for that, without letting its other INFO records through: they reach the
logger's parents only at the level they were let through before.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable

from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import Direction, Event

MITMPROXY_LOGGER = "mitmproxy.proxy.server"
_CONTROL = re.compile(
    r"^Received WebSocket (?P<kind>ping|pong) from (?P<side>client|server) "
    r"\(payload: (?P<payload>b(?:'.*'|\".*\"))\)$",
    re.DOTALL,
)

FindRecorder = Callable[[object], "ConnectionRecorder | None"]


class _ControlFrameHandler(logging.Handler):
    def __init__(self, find: FindRecorder, passthrough_level: int) -> None:
        super().__init__(logging.DEBUG)
        self.find = find
        self.passthrough_level = passthrough_level

    def emit(self, record: logging.LogRecord) -> None:
        match = _CONTROL.match(record.getMessage()) if record.levelno == logging.INFO else None
        if match is None:
            if record.levelno >= self.passthrough_level and record.name:
                # What the logger let through before we lowered its level goes on as before.
                parent = logging.getLogger(record.name).parent
                if parent is not None:
                    parent.handle(record)
            return
        recorder = self.find(getattr(record, "client", None))
        if recorder is None:
            return  # not a charger's WebSocket we record (or already closed)
        try:
            payload = ast.literal_eval(match["payload"])
        except (ValueError, SyntaxError):
            return
        if not isinstance(payload, bytes):
            return
        direction = Direction.CP_TO_CS if match["side"] == "client" else Direction.CS_TO_CP
        event = Event.PING if match["kind"] == "ping" else Event.PONG
        recorder.control_frame(direction, event, payload)


class ControlFrames:
    """Records pings and pongs from mitmproxy's log records; ``find`` maps the charger's address
    (the record's ``client``) to its connection's recorder."""

    def __init__(self, find: FindRecorder) -> None:
        self.find = find
        self._handler: _ControlFrameHandler | None = None
        self._saved: tuple[int, bool] | None = None

    def running(self) -> None:
        if self._handler is not None:
            return
        source = logging.getLogger(MITMPROXY_LOGGER)
        self._saved = (source.level, source.propagate)
        self._handler = _ControlFrameHandler(self.find, source.getEffectiveLevel())
        source.addHandler(self._handler)
        source.setLevel(min(source.getEffectiveLevel(), logging.INFO))
        source.propagate = False  # the handler passes on what was let through before

    def done(self) -> None:
        if self._handler is None:
            return
        source = logging.getLogger(MITMPROXY_LOGGER)
        source.removeHandler(self._handler)
        if self._saved is not None:
            source.setLevel(self._saved[0])
            source.propagate = self._saved[1]
        self._handler = None
