"""SteVe central system logs (https://github.com/steve-community/steve).

SteVe's ``WebSocketLogger`` writes one line per frame and per connection event::

    [INFO ] 2024-03-05 14:02:11,123 de.rwth.idsg.steve.ocpp.ws.WebSocketLogger - [chargeBoxId=CP001, sessionId=9f2c1b7e] Received: [2,"1","Heartbeat",{}]
    [INFO ] 2024-03-05 14:02:11,150 de.rwth.idsg.steve.ocpp.ws.WebSocketLogger - [chargeBoxId=CP001, sessionId=9f2c1b7e] Sending: [3,"1",{"currentTime":"..."}]
    [INFO ] ... - [chargeBoxId=CP001, sessionId=9f2c1b7e] Connection is established
    [WARN ] ... - [chargeBoxId=CP001, sessionId=9f2c1b7e] Connection is closed, status: CloseStatus[code=1006, reason=null]

(log4j2 pattern ``[%-5p] %d %c - %m%n``; the logback one adds ``(thread)`` after the logger name; any
line that starts with a time within its first fields is read). SteVe is the central system, so
``Received`` is ``cp_to_cs`` and ``Sending`` is ``cs_to_cp``. Its ``%d`` has no zone: pass
``--timezone`` with the server's zone. Each ``sessionId`` is one WebSocket connection; the close
line does not say which side closed, so ``closed_by`` stays null.
"""

from __future__ import annotations

import re
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import CaptureBuilder, LogEntry, Timestamps, log_frames, read_lines

LINE = re.compile(
    r"\[chargeBoxId=(?P<charge_point_id>[^,\]]*), sessionId=(?P<session>[^\]]*)\] "
    r"(?:(?P<verb>Received|Sending): (?P<frame>.*)$"
    r"|Connection is (?P<event>established|closed)"
    r"(?:, status: CloseStatus\[code=(?P<code>\d+), reason=(?P<reason>.*)\])?)"
)

DIRECTIONS = {"Received": Direction.CP_TO_CS, "Sending": Direction.CS_TO_CP}


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame, and every connection open and close, of a SteVe log to ``builder``."""
    for ts, match, frame in log_frames(read_lines(path), LINE, timestamps, builder.summary):
        entry = LogEntry(ts, match["charge_point_id"], connection_key=match["session"])
        if frame is not None:
            entry.direction = DIRECTIONS[match["verb"]]
            entry.data = frame
        elif match["event"] == "established":
            entry.kind = "open"
        else:
            entry.kind = "close"
            entry.close_code = int(match["code"]) if match["code"] else None
            reason = match["reason"]
            entry.close_reason = None if reason in (None, "", "null") else reason
        builder.add(entry)
