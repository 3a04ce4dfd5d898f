"""Logs of central systems built on the ``ocpp`` Python library (mobilityhouse/ocpp).

Its ``ChargePoint`` logs every frame at INFO level on the ``ocpp`` logger::

    self.logger.info("%s: receive message %s", self.id, message)
    self.logger.info("%s: send %s", self.id, message)

so with a format that has a time, e.g. ``%(asctime)s %(levelname)s %(name)s: %(message)s``::

    2024-03-05 14:02:11,123 INFO ocpp: CP001: receive message [2,"1","Heartbeat",{}]
    2024-03-05 14:02:11,130 INFO ocpp: CP001: send [3,"1",{"currentTime":"2024-03-05T13:02:11Z"}]

``asctime`` is local time without a zone: pass ``--timezone``. Lines without a time (logging's
default ``INFO:ocpp:CP001: receive message ...``) cannot be placed in time and are counted as
skipped. ``self.id`` is the charge point id on a central system, so ``receive`` is ``cp_to_cs``;
a charger built on the same library logs the other way round, so each file's perspective is taken
from its CALLs (a received BootNotification: a central system's log; a received
RemoteStartTransaction: a charger's), and a file read as a charger's is said so in the summary.
"""

from __future__ import annotations

import re
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import (
    CaptureBuilder,
    LogEntry,
    Timestamps,
    call_direction,
    log_frames,
    read_lines,
)
from ocpp_audit.protocol.frames import Call, parse

LINE = re.compile(
    r"(?:^|[\s:\]\[])(?P<charge_point_id>[^\s:\[\]]+): (?P<verb>receive message|send) (?P<frame>.*)$"
)


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame of an ``ocpp`` library log to ``builder``."""
    found = list(log_frames(read_lines(path), LINE, timestamps, builder.summary))
    # Votes for the central system's perspective (receive = cp_to_cs) against the charger's.
    central_system = charger = 0
    for _, match, frame in found:
        parsed = parse(frame or "")
        if isinstance(parsed, Call):
            initiated = call_direction(parsed.action)
            if initiated is None:
                continue
            received = match["verb"] == "receive message"
            if (initiated is Direction.CP_TO_CS) == received:
                central_system += 1
            else:
                charger += 1
    receive = Direction.CP_TO_CS
    if charger > central_system:
        receive = Direction.CS_TO_CP
        builder.summary.note(f"{path.name}: read as a charger's log (receive = cs_to_cp)")
    send = receive.opposite
    for ts, match, frame in found:
        builder.add(
            LogEntry(
                ts,
                match["charge_point_id"],
                direction=receive if match["verb"] == "receive message" else send,
                data=frame,
            )
        )
