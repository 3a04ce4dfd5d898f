"""MicroOcpp's traffic log (matth-x/MicroOcpp), the charger's side of the connection.

With ``MO_TRAFFIC_OUT`` defined, MicroOcpp prints every frame on its console
(src/MicroOcpp/Debug.h: ``MO_DBG_TRAFFIC_OUT`` / ``MO_DBG_TRAFFIC_IN``)::

    [MO] Send: [2,"1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"X1"}]
    [MO] Recv: [3,"1",{"status":"Accepted","currentTime":"2024-03-05T13:02:11Z","interval":60}]

It is the charge point, so ``Send`` is ``cp_to_cs``. The console prints no time; a line with a
timestamp before ``[MO]`` (a serial logger's, journald's) takes it, and a line without one is
placed 1 µs after the line before it (said so in the summary). The log names no charger: give it
with ``--charger``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import CaptureBuilder, LogEntry, Timestamps
from ocpp_audit.importers.lines import LOG_HEADER, TRUNCATED, iter_lines, log_frames

LINE = re.compile(r"\[MO\][ \t]+(?P<verb>Send|Recv):(?P<frame>)")
HEADER = re.compile(LOG_HEADER.pattern + r"|\[MO\][ \t]")

DIRECTIONS = {"Send": Direction.CP_TO_CS, "Recv": Direction.CS_TO_CP}


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame of a MicroOcpp console log to ``builder``."""
    for found in log_frames(
        iter_lines(path), LINE, timestamps, builder.summary, header=HEADER, untimed=True
    ):
        builder.add(
            LogEntry(
                found.ts,
                None,
                direction=DIRECTIONS[found.match["verb"]],
                data=found.frame,
                parse_error=TRUNCATED if found.truncated else None,
            )
        )
