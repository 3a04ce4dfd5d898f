"""Logs of central systems built on the ``ocpp`` Python library (mobilityhouse/ocpp).

Its ``ChargePoint`` logs every frame at INFO level on the ``ocpp`` logger::

    self.logger.info("%s: receive message %s", self.id, message)
    self.logger.info("%s: send %s", self.id, message)

so with a format that has a time, e.g. ``%(asctime)s %(levelname)s %(name)s: %(message)s``::

    2024-03-05 14:02:11,123 INFO ocpp: CP001: receive message [2,"1","Heartbeat",{}]
    2024-03-05 14:02:11,130 INFO ocpp: CP001: send [3,"1",{"currentTime":"2024-03-05T13:02:11Z"}]

``asctime`` is local time without a zone: pass ``--timezone``. Lines without a time (logging's
default ``INFO:ocpp:CP001: receive message ...``) cannot be placed in time and are counted as
skipped. The ``websockets.server`` logger's ``connection open`` / ``connection closed`` lines
become the connections' open and close rows. ``self.id`` is the charge point id on a central system, so ``receive`` is ``cp_to_cs``;
a charger built on the same library logs the other way round, so each file's perspective is taken
from its CALLs (a received BootNotification: a central system's log; a received
RemoteStartTransaction: a charger's), and a file read as a charger's is said so in the summary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import (
    CaptureBuilder,
    ImportSummary,
    LogEntry,
    Timestamps,
    call_direction,
)
from ocpp_audit.importers.lines import TRUNCATED, Found, iter_lines, log_frames
from ocpp_audit.protocol.frames import Call, parse

LINE = re.compile(
    r"(?:^|[\s:\]\[])(?P<charge_point_id>[^\s:\[\]]+):[ \t]+"
    r"(?P<verb>receive[ \t]+message|send)[ \t]+(?P<frame>)"
    # websockets' server logger: one "connection open" / "connection closed" per connection
    r"|websockets\.[\w.]+\]?:?[ \t]+connection[ \t]+(?P<event>open|closed)\b"
)


def _received(match: re.Match[str]) -> bool:
    return match["verb"].startswith("receive")


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame, and every connection open and close, of an ``ocpp`` library log."""
    # First pass: votes for the central system's perspective (receive = cp_to_cs) against the
    # charger's; the file is read twice so that memory does not grow with it.
    central_system = charger = 0
    quiet = ImportSummary()
    for item in log_frames(iter_lines(path), LINE, Timestamps(quiet), quiet):
        if item.frame is None:
            continue
        parsed = parse(item.frame)
        if isinstance(parsed, Call):
            initiated = call_direction(parsed.action)
            if initiated is None:
                continue
            if (initiated is Direction.CP_TO_CS) == _received(item.match):
                central_system += 1
            else:
                charger += 1
    receive = Direction.CP_TO_CS
    if charger > central_system:
        receive = Direction.CS_TO_CP
        builder.summary.note(f"{path.name}: read as a charger's log (receive = cs_to_cp)")
    send = receive.opposite
    found = log_frames(iter_lines(path), LINE, timestamps, builder.summary)
    _Connections(path, builder).add_all(found, receive, send)


class _Connections:
    """websockets' "connection open" / "connection closed" lines name no charger: an open goes to
    the next charger that sends or receives a frame without an open connection; a close to the one
    charger connected (with several connected it cannot be placed, and is counted)."""

    def __init__(self, path: Path, builder: CaptureBuilder) -> None:
        self.path, self.builder = path, builder
        self.pending_opens: list[int] = []
        self.keys: dict[str, str] = {}  # charger -> its connection now
        self.counter = 0

    def _key(self) -> str:
        self.counter += 1
        return f"{self.path}#{self.counter}"

    def add_all(self, found: Iterable[Found], receive: Direction, send: Direction) -> None:
        summary = self.builder.summary
        for item in found:
            if item.frame is None:
                if item.match["event"] == "open":
                    self.pending_opens.append(item.ts)
                elif len(self.keys) == 1:
                    ((charge_point_id, key),) = self.keys.items()
                    self.builder.add(
                        LogEntry(item.ts, charge_point_id, "close", connection_key=key)
                    )
                    del self.keys[charge_point_id]
                elif self.pending_opens:
                    self.pending_opens.pop(0)
                    summary.skip("connection open and closed with no frame (charger unknown)", 2)
                else:
                    summary.skip("connection closed, several chargers connected: whose is unknown")
                continue
            charge_point_id = item.match["charge_point_id"]
            key = self.keys.get(charge_point_id)
            if key is None:
                key = self.keys[charge_point_id] = self._key()
                if self.pending_opens:
                    opened = self.pending_opens.pop(0)
                    self.builder.add(LogEntry(opened, charge_point_id, "open", connection_key=key))
            self.builder.add(
                LogEntry(
                    item.ts,
                    charge_point_id,
                    direction=receive if _received(item.match) else send,
                    data=item.frame,
                    connection_key=key,
                    parse_error=TRUNCATED if item.truncated else None,
                )
            )
        summary.skip("connection open with no frame after it", len(self.pending_opens))
