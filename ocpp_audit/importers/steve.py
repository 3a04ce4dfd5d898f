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
line does not say which side closed, so ``closed_by`` stays null. Newer SteVe also logs
``Attempted to send to closed session: FRAME`` (never sent: counted, not imported) and ``Received
empty text message`` (imported as the empty frame it was). Lines copied from SteVe's web page have
tabs between fields; any run of spaces or tabs is read as one space.
"""

from __future__ import annotations

import re
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import CaptureBuilder, LogEntry, Timestamps
from ocpp_audit.importers.lines import TRUNCATED, iter_lines, log_frames, spaced

# WebSocketLogger's messages (de/rwth/idsg/steve/ocpp/ws/WebSocketLogger.java); any run of spaces or
# tabs where it writes one space.
LINE = re.compile(
    r"\[chargeBoxId=(?P<charge_point_id>[^,\]\s]*),[ \t]*sessionId=(?P<session>[^\]\s]*)\][ \t]+(?:"
    + spaced(r"(?P<verb>Received|Sending|Attempted to send to closed session):(?P<frame>)")
    + "|"
    + spaced(r"Connection is (?P<event>established|closed)")
    + r"(?:,[ \t]*status:[ \t]*CloseStatus\[code=(?P<code>\d+),[ \t]*reason=(?P<reason>.*)\])?"
    + "|"
    + spaced(r"(?P<empty>Received empty text message)")
    + ")"
)

DIRECTIONS = {"Received": Direction.CP_TO_CS, "Sending": Direction.CS_TO_CP}


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame, and every connection open and close, of a SteVe log to ``builder``."""
    summary = builder.summary
    for found in log_frames(iter_lines(path), LINE, timestamps, summary):
        match = found.match
        entry = LogEntry(found.ts, match["charge_point_id"], connection_key=match["session"])
        if found.frame is not None:
            if match["verb"] not in DIRECTIONS:
                summary.skip("frame SteVe did not send (session already closed)")
                continue
            entry.direction = DIRECTIONS[match["verb"]]
            entry.data = found.frame
            entry.parse_error = TRUNCATED if found.truncated else None
        elif match["empty"]:
            # an empty text message did cross the wire; SteVe ignores it, the capture keeps it
            entry.direction = Direction.CP_TO_CS
            entry.data = ""
        elif match["event"] == "established":
            entry.kind = "open"
        else:
            entry.kind = "close"
            entry.close_code = int(match["code"]) if match["code"] else None
            reason = match["reason"]
            entry.close_reason = None if reason in (None, "", "null") else reason.strip()
        builder.add(entry)
