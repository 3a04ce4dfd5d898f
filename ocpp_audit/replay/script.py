"""What a replay sends: each charger's side of a capture, read back into per-connection scripts.

For every charger, every recorded connection (in the order they opened) becomes a
:class:`ConnectionScript`: the request path and subprotocols of its ``open`` row, and the charger's
CALLs with the answer the backend gave each one. The charger's answers to backend CALLs are kept by
action, so a replay can give the same answers to a target's CALLs.

Reads the Parquet parts with DuckDB only (no analyst views, no mitmproxy, no websockets).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ocpp_audit.capture.parts import CaptureError, check_part, error_line, find_parts, frames_sql
from ocpp_audit.protocol.answers import Answer
from ocpp_audit.protocol.answers import json_object as _json_object
from ocpp_audit.protocol.constants import Direction
from ocpp_audit.protocol.tracker import Answered, CallTracker

__all__ = ["Answer", "ChargerScript", "ConnectionScript", "RecordedCall", "load_scripts"]

logger = logging.getLogger(__name__)


@dataclass
class RecordedCall:
    """One CALL the charger sent, with the answer the recorded backend gave (None: unanswered)."""

    ts_us: int
    unique_id: str
    action: str
    payload_json: str  # exactly as on the wire
    answer: Answer | None = None
    latency_ms: float | None = None
    # A malformed frame is replayed as it was (the target gets the same garbage); an answer is
    # awaited only when the frame still reads as a CALL with a unique id.
    malformed_raw: str | None = None
    expects_answer: bool = True

    @property
    def payload(self) -> dict[str, Any]:
        return _json_object(self.payload_json)


@dataclass
class ConnectionScript:
    connection_id: str
    opened_us: int
    path: str | None  # request path (and query) of the open row; None when there was no open row
    subprotocols: list[str]  # offered by the charger
    calls: list[RecordedCall] = field(default_factory=list)


@dataclass
class ChargerScript:
    charge_point_id: str
    connections: list[ConnectionScript] = field(default_factory=list)
    # action -> the charger's recorded answers to backend CALLs of that action, in order
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    skipped: int = 0  # binary charger frames: not OCPP-J text, not replayed

    @property
    def first_us(self) -> int:
        return min(c.opened_us for c in self.connections)


_QUERY = """
SELECT event, epoch_us(ts) AS ts_us, connection_id, charge_point_id, direction, seq, message_type,
       unique_id, action, payload, error_code, error_description, parse_error, path,
       subprotocols_offered, raw
FROM frames
WHERE event IN ('open', 'message')
ORDER BY charge_point_id, ts, connection_id, seq
"""


def _answer(row: dict[str, Any]) -> Answer:
    return Answer(
        message_type=int(row["message_type"]),
        payload=_json_object(row["payload"]),
        error_code=row["error_code"],
        error_description=row["error_description"],
    )


def load_scripts(paths: Sequence[Path], *, chargers: Sequence[str] = ()) -> list[ChargerScript]:
    """Each charger's replay script from the capture(s), sorted by charge point id.

    Raises :class:`CaptureError` (naming the file) for an unreadable capture or one without the
    chargers asked for.
    """
    parts = find_parts(paths)
    for part in parts:
        check_part(part)
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW frames AS {frames_sql(parts, chargers=chargers)}")
        cursor = con.execute(_QUERY)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    except duckdb.Error as error:
        where = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
        raise CaptureError(f"{where}: {error_line(error)}") from None
    finally:
        con.close()

    scripts: dict[str, ChargerScript] = {}
    connections: dict[str, ConnectionScript] = {}
    # Per connection, the CALLs in flight; a charger CALL is tagged with its RecordedCall.
    trackers: dict[str, CallTracker] = {}
    for row in rows:
        charge_point_id = row["charge_point_id"]
        script = scripts.get(charge_point_id)
        if script is None:
            script = scripts[charge_point_id] = ChargerScript(charge_point_id)
        connection = connections.get(row["connection_id"])
        if connection is None:
            # A capture without open rows (an import, say) still replays: one connection per id.
            connection = connections[row["connection_id"]] = ConnectionScript(
                row["connection_id"], row["ts_us"], None, []
            )
            script.connections.append(connection)
        if row["event"] == "open":
            connection.path = row["path"]
            offered = row["subprotocols_offered"] or ""
            connection.subprotocols = [p.strip() for p in offered.split(",") if p.strip()]
            continue
        direction, message_type = Direction(row["direction"]), row["message_type"]
        tracker = trackers.get(row["connection_id"])
        if tracker is None:
            tracker = trackers[row["connection_id"]] = CallTracker(max_pending=None)
        if row["parse_error"] is not None:
            if direction != "cp_to_cs":
                continue
            if row["raw"] is None:
                script.skipped += 1
                continue
            is_call = message_type == 2 and row["unique_id"] is not None
            call = RecordedCall(
                row["ts_us"],
                row["unique_id"] or "",
                row["action"] or "(malformed)",
                "",
                malformed_raw=row["raw"],
                expects_answer=is_call,
            )
            connection.calls.append(call)
            if is_call:
                tracker.track_call(direction, call.unique_id, row["action"], tag=call)
            continue
        if message_type == 2:
            call = None
            if direction == "cp_to_cs":
                call = RecordedCall(row["ts_us"], row["unique_id"], row["action"], row["payload"])
                connection.calls.append(call)
            tracker.track_call(direction, row["unique_id"], row["action"], tag=call)
            continue
        if message_type not in (3, 4):
            continue
        event = tracker.track_answer(direction, row["unique_id"])
        if not isinstance(event, Answered):
            continue
        asked = event.call.tag
        if isinstance(asked, RecordedCall):
            asked.answer = _answer(row)
            asked.latency_ms = (row["ts_us"] - asked.ts_us) / 1000
        elif event.call.action is not None:
            script.answers.setdefault(event.call.action, []).append(_answer(row))
    if not scripts:
        which = f" for {', '.join(chargers)}" if chargers else ""
        where = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
        raise CaptureError(f"{where}: no charger frames{which}")
    for script in scripts.values():
        script.connections.sort(key=lambda c: c.opened_us)
    return [scripts[k] for k in sorted(scripts)]
