"""What every importer shares: log entries, timestamps, direction inference, the summary, and
turning entries into the rows an engine would have written.

An importer reads a file and hands :class:`LogEntry` values to a :class:`CaptureBuilder`, which runs
each frame through :class:`~ocpp_audit.capture.connection.ConnectionRecorder` with the log's time,
so ``parse_error``, ``action`` of answers and ``seq`` come out exactly as a recorder engine makes
them. Whatever an importer cannot use is counted in the :class:`ImportSummary` with its reason;
nothing is dropped silently.

Connections. Entries carry a ``connection_key``; entries of one charger with the same key share one
connection (one ``connection_id``). Formats that know the real connection (mitmproxy flows, a
pcap's TCP streams, SteVe's ``sessionId``, the ``connection_id`` of an exported file) give it; an
``open`` entry always starts a new one (a log's connection lines); otherwise a charger has one
connection per file. Text logs are read by :mod:`ocpp_audit.importers.lines`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.protocol.constants import OcppVersion, actions, sent_by
from ocpp_audit.protocol.frames import Call, Malformed, parse

# Which way each OCPP 1.6 action's CALL travels (protocol.constants); DataTransfer goes both ways.
CHARGER_INITIATED = frozenset(
    action for action in actions(OcppVersion.V16) if sent_by(action) == {Direction.CP_TO_CS}
)
CENTRAL_SYSTEM_INITIATED = frozenset(
    action for action in actions(OcppVersion.V16) if sent_by(action) == {Direction.CS_TO_CP}
)


class ImportFileError(Exception):
    """A file cannot be read at all (missing, unreadable, not the format); the message names it."""


def call_direction(action: str | None) -> Direction | None:
    """Which way a CALL of ``action`` travels, when the action says so (not DataTransfer)."""
    if action in CHARGER_INITIATED:
        return Direction.CP_TO_CS
    if action in CENTRAL_SYSTEM_INITIATED:
        return Direction.CS_TO_CP
    return None


@dataclass
class LogEntry:
    """One thing a log says happened on a charger's connection."""

    ts: int  # microseconds since the epoch, UTC
    charge_point_id: str | None
    kind: Literal["message", "open", "close", "refused"] = "message"
    direction: Direction | None = None  # None: not in the log; inferred if it can be
    data: str | bytes | None = None  # the frame (kind "message")
    connection_key: object = None  # None: the charger's one connection in this file
    connection_id: str | None = None  # keep this connection_id (an exported capture's)
    path: str | None = None  # open
    subprotocols_offered: list[str] | None = None
    subprotocol: str | None = None
    remote_address: str | None = None
    authorization: str | None = None
    tls: bool = False
    close_code: int | None = None  # close
    close_reason: str | None = None
    closed_by: ClosedBy | None = None  # None: the log does not say
    http_status: int | None = None  # refused: the HTTP answer to the upgrade (401, 404, ...)
    parse_error: str | None = None  # the log cut the frame: say so instead of the codec's reason
    ocpp_version: OcppVersion | None = None  # when the log says so without an open line


@dataclass
class ImportSummary:
    """What an import did, and every line or message it could not use, with the reason."""

    files: int = 0
    frames: int = 0
    rows: int = 0
    chargers: set[str] = field(default_factory=set)
    connections: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    directions_inferred: int = 0
    directions_unknown: int = 0
    naive_timestamps: int = 0
    timezone: str = "UTC"
    noted: Counter[str] = field(default_factory=Counter)
    opens: int = 0
    closes: int = 0
    entries: int = 0  # frames and connection lines the format recognised, imported or not

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] += count

    def note(self, what: str, count: int = 1) -> None:
        """Something imported but worth saying (a frame re-serialized, a perspective guessed)."""
        self.noted[what] += count

    def lines(self) -> list[str]:
        """The summary as text lines, for the command line."""
        out = [
            f"imported {self.frames} frames ({len(self.chargers)} chargers, "
            f"{self.connections} connections, {self.rows} rows) from {self.files} files"
        ]
        total = sum(self.skipped.values())
        out.append(f"skipped {total} lines" + (":" if total else ""))
        for reason, count in sorted(self.skipped.items(), key=lambda item: (-item[1], item[0])):
            out.append(f"  {count:6d}  {reason}")
        if self.directions_inferred:
            out.append(
                f"direction inferred from message type and action: {self.directions_inferred}"
            )
        if self.directions_unknown:
            out.append(f"direction unknown, left null: {self.directions_unknown}")
        if self.naive_timestamps:
            out.append(
                f"timestamps without a zone, read as {self.timezone}: {self.naive_timestamps}"
            )
        out.extend(f"{what}: {count}" for what, count in sorted(self.noted.items()))
        if self.frames and not (self.opens or self.closes):
            out.append(
                "no connection open/close lines in the log: each charger's frames form one "
                "connection per file, so reconnects cannot be seen"
            )
        return out


# 2024-03-05T14:02:11.123Z, 2024-03-05 14:02:11,123, ... +01:00 / +0100, Go's 2023/04/15 12:31:39
TIMESTAMP = re.compile(
    r"(?P<date>\d{4}[-/]\d{2}[-/]\d{2})(?:T|[ \t]+)(?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:[.,](?P<fraction>\d{1,9}))?(?:[ \t]?(?P<zone>Z|[+-]\d{2}:?\d{2}))?"
)


class Timestamps:
    """Reads log timestamps into microseconds UTC; naive ones are taken in ``timezone``."""

    def __init__(self, summary: ImportSummary, timezone: str | None = None) -> None:
        self.summary = summary
        self.zone = ZoneInfo(timezone) if timezone else UTC
        summary.timezone = timezone or "UTC"
        self._seconds: dict[tuple[str, str, str | None], int] = {}

    def parse_match(self, match: re.Match[str]) -> int | None:
        """A :data:`TIMESTAMP` match in microseconds UTC; None for an impossible time (25:61:00).
        Whole seconds are cached: a log's neighbouring lines share them."""
        date, clock, zone = match.group("date", "time", "zone")
        if not zone:
            self.summary.naive_timestamps += 1
        key = (date, clock, zone)
        seconds = self._seconds.get(key)
        if seconds is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            text = f"{date.replace('/', '-')}T{clock}"
            try:
                if zone:
                    moment = datetime.fromisoformat(
                        text + ("+00:00" if zone == "Z" else zone[:3] + ":" + zone[-2:])
                    )
                else:
                    moment = datetime.fromisoformat(text).replace(tzinfo=self.zone)
            except ValueError:
                return None
            seconds = self._seconds[key] = int(moment.timestamp())
        fraction = match["fraction"]
        return seconds * 1_000_000 + (int(fraction[:6].ljust(6, "0")) if fraction else 0)

    def parse(self, value: object) -> int | None:
        """An ISO 8601 text, or epoch seconds (milliseconds when above 1e11); None if neither."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            return round(seconds * 1_000_000)
        if isinstance(value, str):
            match = TIMESTAMP.fullmatch(value.strip())
            if match:
                return self.parse_match(match)
        return None


@dataclass
class _Connection:
    recorder: ConnectionRecorder
    unknown_calls: set[str] = field(default_factory=set)  # unique ids of CALLs of unknown direction


class _RowList:
    """A row sink that applies per-row overrides (the log's close time, a null direction), and
    hands rows on in batches when given somewhere to put them, so memory stays bounded."""

    def __init__(
        self, flush: Callable[[list[dict[str, object]]], None] | None = None, batch: int = 0
    ) -> None:
        self.rows: list[dict[str, object]] = []
        self.override: dict[str, object] = {}
        self.flush, self.batch = flush, batch
        self.count = 0

    def append(self, row: dict[str, object]) -> None:
        row.update(self.override)
        self.override = {}
        self.rows.append(row)
        self.count += 1
        if self.flush is not None and len(self.rows) >= self.batch:
            self.flush(self.rows)
            self.rows = []


class CaptureBuilder:
    """Turns log entries into capture rows, one :class:`ConnectionRecorder` per connection.

    With ``flush``, every ``batch`` rows are handed to it as they are made; ``rows`` holds the rest.
    """

    def __init__(
        self,
        summary: ImportSummary,
        chargers: Iterable[str] = (),
        *,
        flush: Callable[[list[dict[str, object]]], None] | None = None,
        batch: int = 200_000,
    ) -> None:
        self.summary = summary
        self.chargers = frozenset(chargers)
        self.sink = _RowList(flush, batch)
        self._connections: dict[tuple[str, object], _Connection] = {}

    @property
    def rows(self) -> list[dict[str, object]]:
        return self.sink.rows

    def new_file(self) -> None:
        """Connections do not span files (unless an entry's connection_key says so)."""
        self._connections = {
            key: connection for key, connection in self._connections.items() if key[1] is not None
        }

    def _connection(self, charge_point_id: str, entry: LogEntry) -> _Connection:
        key = entry.connection_id or entry.connection_key
        connection = self._connections.get((charge_point_id, key))
        if connection is None:
            connection = _Connection(
                ConnectionRecorder(
                    self.sink,
                    charge_point_id,
                    connection_id=entry.connection_id,
                    version=entry.ocpp_version,
                )
            )
            self._connections[(charge_point_id, key)] = connection
            self.summary.connections += 1
            self.summary.chargers.add(charge_point_id)
        return connection

    def add(self, entry: LogEntry) -> bool:
        """Record one entry; False (and counted) when it is not for a selected charger."""
        self.summary.entries += 1
        charge_point_id = entry.charge_point_id
        if not charge_point_id:
            if len(self.chargers) != 1:
                self.summary.skip("no charge point id (give one with --charger)")
                return False
            (charge_point_id,) = self.chargers
        elif self.chargers and charge_point_id not in self.chargers:
            self.summary.skip("charger not selected with --charger")
            return False
        # an open always starts a connection, even when the log never closed the one before
        key = (charge_point_id, entry.connection_key)
        if (
            entry.kind == "open"
            and entry.connection_id is None
            and self._connections.pop(key, None)
        ):
            self.summary.note("connections with no close line before the next open")
        connection = self._connection(charge_point_id, entry)
        recorder = connection.recorder
        if entry.kind == "open":
            self.summary.opens += 1
            if entry.path is None:
                self.sink.override = {"path": None}  # the log does not give the URL
            recorder.opened(
                path=entry.path or "",
                subprotocols_offered=entry.subprotocols_offered,
                subprotocol=entry.subprotocol,
                remote_address=entry.remote_address,
                authorization=entry.authorization,
                tls=entry.tls,
                ts=entry.ts,
            )
        elif entry.kind == "refused":
            recorder.refused(
                path=entry.path or "",
                http_status=entry.http_status or 0,
                reason=entry.close_reason or "",
                subprotocols_offered=entry.subprotocols_offered,
                remote_address=entry.remote_address,
                authorization=entry.authorization,
                tls=entry.tls,
                ts=entry.ts,
            )
            del self._connections[(charge_point_id, entry.connection_id or entry.connection_key)]
        elif entry.kind == "close":
            self.summary.closes += 1
            # closed() takes no time: the log's time; and the log may not say who closed
            self.sink.override = {
                "ts": entry.ts,
                "closed_by": entry.closed_by and entry.closed_by.value,
            }
            recorder.closed(
                entry.close_code, entry.close_reason, entry.closed_by or ClosedBy.RECORDER
            )
            del self._connections[(charge_point_id, entry.connection_id or entry.connection_key)]
        else:
            assert entry.data is not None
            self._message(connection, entry)
        self.summary.rows = self.sink.count
        return True

    def _message(self, connection: _Connection, entry: LogEntry) -> None:
        recorder = connection.recorder
        direction = entry.direction
        known = direction is not None
        self.sink.override = {"parse_error": entry.parse_error} if entry.parse_error else {}
        frame = parse(entry.data) if direction is None else None
        if frame is not None:
            unique_id = frame.unique_id
            if isinstance(frame, Call) or (
                isinstance(frame, Malformed) and frame.message_type == 2
            ):
                direction = call_direction(frame.action)
                if direction is None and unique_id is not None:
                    connection.unknown_calls.add(unique_id)
            elif unique_id is not None and unique_id not in connection.unknown_calls:
                # OCPP-J 4.1: an answer travels opposite to the CALL with the same unique id.
                if recorder.is_pending(Direction.CP_TO_CS, unique_id):
                    direction = Direction.CS_TO_CP
                elif recorder.is_pending(Direction.CS_TO_CP, unique_id):
                    direction = Direction.CP_TO_CS
            elif unique_id is not None:
                # Answer to a CALL of unknown direction: pair them under placeholder directions
                # (CALL cp_to_cs, answer cs_to_cp) so the action resolves, then null both.
                connection.unknown_calls.discard(unique_id)
                self.sink.override["direction"] = None
                recorder.message(Direction.CS_TO_CP, entry.data, ts=entry.ts)
                self.summary.directions_unknown += 1
                self.summary.frames += 1
                return
        if direction is None:
            self.sink.override["direction"] = None
            self.summary.directions_unknown += 1
            direction = Direction.CP_TO_CS
        elif not known:
            self.summary.directions_inferred += 1
        recorder.message(direction, entry.data, ts=entry.ts)
        self.summary.frames += 1
