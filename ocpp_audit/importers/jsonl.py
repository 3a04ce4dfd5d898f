"""The ``jsonl`` form: one JSON object per line, one WebSocket message per object.

Fields written by ``ocpp-audit export`` (and read first by ``import``)::

    {"ts": "2024-03-05T13:02:11.123456Z",      ISO 8601, UTC, microseconds
     "charge_point_id": "CP001",
     "direction": "cp_to_cs",                  cp_to_cs | cs_to_cp | null (unknown)
     "raw": "[2,\\"19\\",\\"Heartbeat\\",{}]",   the text frame exactly as on the wire
     "connection_id": "4f1c...",               optional: frames with the same id share a connection
     "ocpp_version": "2.0.1"}                  optional: 1.6, 2.0.1 or 2.1 (the subprotocol's version)

A binary frame has ``"raw_base64"`` instead of ``raw``. On import, other spellings found in
hand-made logs are accepted too: ``time``/``timestamp`` for ``ts`` (ISO 8601, or epoch seconds or
milliseconds; naive times are read in ``--timezone``), ``chargeBoxId``/``charger`` for
``charge_point_id``, ``frame``/``message`` for ``raw`` (a frame given as a JSON array rather than as
text is re-serialized compactly, and counted). An object may be pretty-printed over several lines.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import CaptureBuilder, LogEntry, Timestamps
from ocpp_audit.importers.lines import (
    MAX_FRAME_CHARS,
    MAX_FRAME_LINES,
    MAX_LINE_CHARS,
    Brackets,
    iter_lines,
)
from ocpp_audit.protocol.constants import OcppVersion

TS_FIELDS = ("ts", "time", "timestamp")
CHARGER_FIELDS = ("charge_point_id", "chargeBoxId", "charge_box_id", "charger")
RAW_FIELDS = ("raw", "frame", "message")


def _first(record: dict[str, object], names: tuple[str, ...]) -> object:
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None


def _objects(path: Path, builder: CaptureBuilder) -> Iterator[str]:
    """Each JSON object's text, joining pretty-printed ones (until the braces balance, a line that
    starts a new object at column 0, or the join cap); blank lines counted."""
    summary = builder.summary
    pending: list[str] = []
    brackets = Brackets()
    chars = 0
    for line, cut in iter_lines(path):
        line = line.rstrip("\r")
        if cut:
            summary.skip(f"rest of a line longer than {MAX_LINE_CHARS} characters")
        if pending:
            if not line.startswith("{") and not cut:
                pending.append(line)
                chars += len(line) + 1
                if brackets.feed(line) is None and (
                    len(pending) < MAX_FRAME_LINES and chars < MAX_FRAME_CHARS
                ):
                    continue
                yield "\n".join(pending)
                pending = []
                continue
            yield "\n".join(pending)  # never closed: counted as not JSON
            pending = []
        if not line.strip():
            summary.skip("blank line")
            continue
        if line.lstrip().startswith("{") and not cut:
            brackets = Brackets()
            if brackets.feed(line) is None:
                pending, chars = [line], len(line)
                continue
        yield line
    if pending:
        yield "\n".join(pending)


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame of a jsonl file to ``builder``."""
    summary = builder.summary
    for text in _objects(path, builder):
        lines_in_text = text.count("\n") + 1
        try:
            record = json.loads(text)
        except ValueError:
            summary.skip("not JSON", lines_in_text)
            continue
        if not isinstance(record, dict):
            summary.skip("not a JSON object", lines_in_text)
            continue
        ts = timestamps.parse(_first(record, TS_FIELDS))
        if ts is None:
            summary.skip("no readable time", lines_in_text)
            continue
        data: str | bytes
        raw = _first(record, RAW_FIELDS)
        if isinstance(raw, str):
            data = raw
        elif isinstance(raw, list):
            data = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
            summary.note("frames given as a JSON array, re-serialized compactly")
        elif isinstance(record.get("raw_base64"), str):
            try:
                data = base64.b64decode(record["raw_base64"], validate=True)
            except (binascii.Error, ValueError):
                summary.skip("raw_base64 is not base64", lines_in_text)
                continue
        else:
            summary.skip("no frame (raw)", lines_in_text)
            continue
        direction_text = str(record.get("direction") or "").strip().lower()
        try:
            direction = Direction(direction_text) if direction_text else None
        except ValueError:
            direction = None
        charge_point_id = _first(record, CHARGER_FIELDS)
        connection_id = record.get("connection_id")
        try:
            version = (
                OcppVersion(str(record["ocpp_version"])) if record.get("ocpp_version") else None
            )
        except ValueError:
            version = None
            summary.note("ocpp_version not 1.6, 2.0.1 or 2.1, ignored")
        builder.add(
            LogEntry(
                ts=ts,
                charge_point_id=str(charge_point_id) if charge_point_id is not None else None,
                direction=direction,
                data=data,
                connection_id=str(connection_id) if connection_id else None,
                ocpp_version=version,
            )
        )


def iso_utc(ts: datetime) -> str:
    """``2024-03-05T13:02:11.123456Z``: the export's time format."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def export_line(
    ts: datetime,
    charge_point_id: str | None,
    direction: str | None,
    raw: str | None,
    raw_binary: bytes | None,
    connection_id: str | None,
    ocpp_version: str | None = None,
) -> str:
    """One frame as a line of the jsonl form (with its newline)."""
    record: dict[str, object] = {
        "ts": iso_utc(ts),
        "charge_point_id": charge_point_id,
        "direction": direction,
    }
    if raw is None and raw_binary is not None:
        record["raw_base64"] = base64.b64encode(raw_binary).decode("ascii")
    else:
        record["raw"] = raw
    record["connection_id"] = connection_id
    if ocpp_version is not None:  # written only when known, so a 1.6-era line stays as it was
        record["ocpp_version"] = ocpp_version
    return json.dumps(record, ensure_ascii=False) + "\n"
