"""The capture writer: every row to an append-only journal first, then sealed into Parquet parts.

Layout of a capture folder (all folders 0700, all files 0600)::

    <capture>/journal/<UTC yyyymmddTHHMMSS>-<instance>-<n>.journal     JSON lines, one row a line
    <capture>/frames/date=YYYY-MM-DD/part-<UTC yyyymmddTHHMMSS>-<instance>-<n>.parquet

Durability. :meth:`CaptureWriter.append` encodes the row as one JSON line and hands it to the OS
with one ``os.write`` on an ``O_APPEND`` file before it returns, so a frame an engine forwarded after
``append`` returned survives a SIGKILL of the recorder (with ``fsync=True``, also a power cut).
There is no Python-side buffer to lose.

Sealing. A journal is switched for a fresh one when it is ``rotate_seconds`` old (checked by a small
thread, so an idle recorder still seals) or ``rotate_bytes`` long; switching is immediate, and the old
journal is sealed into zstd Parquet by a background thread, so the event loop that calls ``append``
never waits on Parquet encoding. A part is written under a temporary name that does not end in
``.parquet``, fsynced, then renamed, so ``read_parquet('<capture>/**/*.parquet')`` never sees half a
part. The journal is deleted only after its parts are durable. Part names derive from the journal's
name, so sealing the same journal twice (a crash between the rename and the delete) rewrites the same
files instead of duplicating rows.

Several processes may share one capture folder: each journal has a per-process unique name and is
held under ``fcntl.flock`` while its process lives. :meth:`CaptureWriter.start` seals every journal
whose lock it can take (a crash left it), dropping a torn last line, then opens its own journal.

Write-error policy (what happens when the disk fails under ``append``), chosen by ``on_write_error``:

- ``"continue"`` (default): the frame is still forwarded by the engine, but not recorded. The writer
  logs an error once at the start of a burst of failures (and a reminder at most every
  ``ERROR_LOG_INTERVAL_S`` while it lasts, not once per frame), counts the lost rows in
  ``unrecorded``, and retries with every following ``append``. The first write that succeeds again is
  preceded by a ``gap`` row whose ``detail`` holds ``{"unrecorded": n, "first_ts": .., "last_ts": ..}``
  so the analyser sees the hole; the gap row carries the time of the first unrecorded row.
- ``"close"``: ``append`` raises :class:`CaptureWriteError` so the engine closes the connection
  instead of forwarding a frame it could not record (for audits where an unrecorded frame is worse
  than a disconnect). Rows lost this way are counted and reported by a ``gap`` row the same way.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import io
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

try:  # optional: encodes journal lines about 4x faster than the standard library
    import orjson
except ImportError:  # pragma: no cover - the standard library's encoder then
    orjson = None

from ocpp_audit.capture.schema import (
    COLUMN_NAMES,
    FRAMES_DIR,
    META_SCHEMA_CHECK,
    PARTITION_KEY,
    Event,
    arrow_schema,
)
from ocpp_audit.protocol import schema_validation

__all__ = ["CaptureWriteError", "CaptureWriter", "write_part", "write_rows"]

logger = logging.getLogger(__name__)

JOURNAL_DIR = "journal"
JOURNAL_SUFFIX = ".journal"
DIR_MODE = 0o700
FILE_MODE = 0o600

# Parquet settings: zstd, and row groups small enough that DuckDB reads a large part in parallel.
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1  # on OCPP traffic as small as level 3 and faster (bench_writer)
ROW_GROUP_ROWS = 128 * 1024
# The rows of a part: one charger's side by side, in time order (a stable sort: equal times keep
# journal order). With the delta encoding below, a synthetic fleet's part went from 27.1 to 15.1 B a
# frame (issue 16), and a reader can skip row groups by charger.
PART_ORDER = [("charge_point_id", "ascending"), ("ts", "ascending")]
# Integers that grow along a charger's rows: Parquet's delta encoding stores their small steps.
DELTA_COLUMNS = ("ts", "seq", "answers_seq")
# write_rows() splits an endless iterable into parts of at most this many rows.
WRITE_ROWS_PART_ROWS = 1_000_000
# pyarrow's JSON reader needs each line inside one block; a longer line (a 16 MiB frame) retries
# with the whole journal as one block.
JOURNAL_BLOCK_BYTES = 8 * 1024 * 1024
ERROR_LOG_INTERVAL_S = 10.0

ARROW_SCHEMA = arrow_schema()
_COLUMNS = frozenset(COLUMN_NAMES)

# The journal's JSON types: ts as integer microseconds, binary frames as base64 text in their own
# column (JSON has no bytes); everything else as in the capture schema.
_JOURNAL_SCHEMA = pa.schema(
    [
        pa.field(
            field.name,
            pa.int64()
            if field.name == "ts"
            else pa.string()
            if field.name == "raw_binary"
            else field.type,
        )
        for field in ARROW_SCHEMA
    ]
    # A large payload is not written twice: the line holds where it lies in ``raw`` instead
    # (journal only; sealing puts the payload back).
    + [pa.field("payload_at", pa.int64()), pa.field("payload_end", pa.int64())]
)
# Payloads from this many characters on are journalled as their place in ``raw``: a 16 MiB frame
# is then 16 MiB of journal, not 32, and small frames (nearly all) keep the plain form.
PAYLOAD_SPAN_MIN = 4096
_JOURNAL_COLUMNS = _COLUMNS | {"payload_at", "payload_end"}
_JOURNAL_PARSE = pa_json.ParseOptions(
    explicit_schema=_JOURNAL_SCHEMA, unexpected_field_behavior="error"
)
_encode_line = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode


class CaptureWriteError(Exception):
    """The capture could not be written (raised by ``append`` under ``on_write_error="close"``)."""


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def _new_instance_id() -> str:
    """Unique per process (and per writer), short, and free of dashes so names stay readable."""
    return secrets.token_hex(6)


def _make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents, each 0700 whatever the umask."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(folder, DIR_MODE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """One OS write of the whole line (loops only if the OS takes less). Tests inject faults here."""
    written = os.write(fd, data)
    if written != len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def _check_row(row: dict[str, object], columns: frozenset[str] = _COLUMNS) -> None:
    if not columns.issuperset(row):
        unknown = sorted(set(row) - columns)
        raise ValueError(f"not capture columns: {', '.join(unknown)}")
    if not isinstance(row.get("ts"), int):
        raise ValueError(f"row needs ts as int microseconds since the epoch, got {row.get('ts')!r}")


def _journal_line(row: dict[str, object]) -> bytes:
    return _journal_line_and_omitted(row)[0]


def _journal_line_and_omitted(row: dict[str, object]) -> tuple[bytes, int]:
    """The row's journal line, and how many payload characters it holds as their place in ``raw``
    instead of as text (0 for all but large payloads)."""
    omitted = 0
    binary = row.get("raw_binary")
    if binary is not None:
        row = dict(row)
        row["raw_binary"] = base64.b64encode(binary).decode("ascii")  # type: ignore[arg-type]
    payload = row.get("payload")
    if type(payload) is str and len(payload) >= PAYLOAD_SPAN_MIN:
        raw = row.get("raw")
        # The payload is the frame's last element, so its last occurrence in raw is the one.
        at = raw.rfind(payload) if type(raw) is str else -1
        if at >= 0:
            row = dict(row)
            del row["payload"]
            row["payload_at"], row["payload_end"] = at, at + len(payload)
            omitted = len(payload)
    if orjson is not None:
        try:
            return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE), omitted
        except TypeError:  # orjson.JSONEncodeError: lone surrogates, integers over 64 bits
            pass  # the standard library's encoder below, which handles or reports them
    text = _encode_line(row)
    try:
        return text.encode("utf-8") + b"\n", omitted
    except UnicodeEncodeError:
        # A str holding lone surrogates has no UTF-8 form and cannot be an Arrow string either.
        logger.warning("row has text that is not valid Unicode; stored with U+FFFD replacements")
        return text.encode("utf-8", "replace") + b"\n", omitted


# ---------------------------------------------------------------------------------------------
# Sealing: journal bytes -> Arrow table in capture schema -> Parquet parts per UTC date


def _parse_journal(data: bytes, source: Path) -> tuple[pa.Table, int]:
    """The journal's rows as a table in journal schema, and how many unreadable lines were skipped."""
    if not data.strip():
        return _JOURNAL_SCHEMA.empty_table(), 0
    for block_size in (JOURNAL_BLOCK_BYTES, len(data) + 1):
        try:
            table = pa_json.read_json(
                io.BytesIO(data),
                read_options=pa_json.ReadOptions(block_size=block_size),
                parse_options=_JOURNAL_PARSE,
            )
            return table, 0
        except pa.ArrowInvalid as error:
            if "straddl" in str(error) and block_size < len(data) + 1:
                continue
            break
    # Some line is damaged (a write error cut it, or the disk returned garbage): keep every line that
    # reads, count the rest.
    rows: list[dict[str, object]] = []
    bad = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            _check_row(row, _JOURNAL_COLUMNS)
            rows.append(row)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to read
            bad += 1
    logger.warning("%s: skipped %d unreadable journal line(s)", source, bad)
    try:
        return pa.Table.from_pylist(rows, schema=_JOURNAL_SCHEMA), bad
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A line with a wrongly typed value: fall back to one row at a time.
        good: list[pa.Table] = []
        for row in rows:
            try:
                good.append(pa.Table.from_pylist([row], schema=_JOURNAL_SCHEMA))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                bad += 1
        return pa.concat_tables(good) if good else _JOURNAL_SCHEMA.empty_table(), bad


def _decode_binary(column: pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if column.null_count == len(column):
        return pa.nulls(len(column), pa.binary())
    return pa.array(
        [None if value is None else base64.b64decode(value) for value in column.to_pylist()],
        pa.binary(),
    )


def _payloads_from_raw(journal: pa.Table) -> pa.Array | pa.ChunkedArray:
    """The payload column, with each payload journalled as its place in ``raw`` put back."""
    payload = journal.column("payload")
    if "payload_at" not in journal.column_names:
        return payload
    at = journal.column("payload_at")
    if at.null_count == len(at):
        return payload
    mask = pc.is_valid(at).combine_chunks()
    raw, end = journal.column("raw"), journal.column("payload_end")
    # One large frame at a time in Python (these are the large ones), its payload sliced out.
    spans = [
        raw[row].as_py()[at[row].as_py() : end[row].as_py()]
        for row in pc.indices_nonzero(mask).to_pylist()
    ]
    return pc.replace_with_mask(payload.combine_chunks(), mask, pa.array(spans, pa.string()))


def _capture_table(journal: pa.Table) -> pa.Table:
    """Journal schema -> capture schema (ts to timestamp, base64 to bytes, payloads journalled as
    their place in raw put back, version metadata)."""
    arrays = []
    for field in ARROW_SCHEMA:
        if field.name not in journal.column_names:
            arrays.append(pa.nulls(journal.num_rows, field.type))
        elif field.name == "ts":
            arrays.append(journal.column("ts").cast(field.type))
        elif field.name == "raw_binary":
            arrays.append(_decode_binary(journal.column("raw_binary")))
        elif field.name == "payload":
            arrays.append(_payloads_from_raw(journal))
        else:
            arrays.append(journal.column(field.name))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def _with_payload_verdicts(rows: pa.Table) -> pa.Table:
    """``rows`` with each payload's schema verdict in ``schema_error`` and the checker that gave
    them in the metadata. A failure here leaves the column null (the analysis then judges those
    payloads itself) and never stops the part from being sealed."""
    try:
        verdicts = schema_validation.payload_verdicts(rows)
    except Exception as error:  # the frames matter more than a verdict computed ahead of time
        logger.warning("payload schema verdicts left to the analysis: %s", error)
        return rows
    index = rows.schema.get_field_index("schema_error")
    rows = rows.set_column(index, rows.schema.field(index), verdicts)
    metadata = dict(rows.schema.metadata or {})
    metadata[META_SCHEMA_CHECK] = schema_validation.checker_fingerprint().encode()
    return rows.replace_schema_metadata(metadata)


def write_part(rows: pa.Table, path: Path) -> None:
    """One Parquet part in the capture's encoding: the rows in ``PART_ORDER``, each payload's schema
    verdict filled in, zstd, row groups of ``ROW_GROUP_ROWS``, the integers that grow along a
    charger's rows delta-encoded."""
    rows = _with_payload_verdicts(rows)
    pq.write_table(
        rows.sort_by(PART_ORDER),
        path,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=[name for name in rows.column_names if name not in DELTA_COLUMNS],
        column_encoding=dict.fromkeys(DELTA_COLUMNS, "DELTA_BINARY_PACKED"),
    )


def _write_parts(table: pa.Table, frames_dir: Path, stem: str) -> list[Path]:
    """One part per UTC date (see ``write_part``)."""
    if table.num_rows == 0:
        return []
    ts = table.column("ts")
    # Journals are nearly always in time order already; sorting copies every string, so skip it then.
    if table.num_rows > 1 and not pc.all(pc.less_equal(ts[:-1], ts[1:])).as_py():
        table = table.sort_by("ts")
    dates = pc.cast(table.column("ts"), pa.date32())  # the timestamps are UTC, so the UTC date
    parts: list[Path] = []
    offset = 0
    # Sorted by time, so each date's rows are one slice (zero copy), in order of first appearance.
    for entry in pc.value_counts(dates).to_pylist():
        date, count = entry["values"], entry["counts"]
        rows = table.slice(offset, count)
        offset += count
        folder = frames_dir / f"{PARTITION_KEY}={date.isoformat()}"
        _make_dirs(folder)
        final = folder / f"{stem}.parquet"
        temporary = folder / f".{stem}.parquet.tmp"  # invisible to '**/*.parquet' readers
        write_part(rows, temporary)
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fchmod(fd, FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, final)
        _fsync_dir(folder)
        parts.append(final)
    return parts


@dataclass
class _Journal:
    path: Path
    fd: int
    stem: str  # <stamp>-<instance>-<n>: the parts are named part-<stem>.parquet
    opened_at: float  # time.monotonic()
    size: int = 0
    payload_bytes: int = 0  # of payloads journalled as their place in raw (for rotation)
    rows: int = 0


DAMAGED_SUFFIX = ".damaged"  # a journal recovery could not read whole, set aside beside the others
SALVAGE_BATCH_ROWS = 50_000


def _salvage(path: Path, frames_dir: Path) -> tuple[list[Path], int, int]:
    """Seal what can be read of a damaged journal, line by line, and set the file aside.

    For a journal ``_seal_file`` cannot take whole (over 2 GiB for Arrow's JSON reader, a timestamp
    out of range, bad base64, nesting too deep for the parser): each line that reads as a row is
    kept, in batches of SALVAGE_BATCH_ROWS; the rest is counted. The journal is renamed
    ``*.damaged`` (kept for a person to look at, never read again) so the recorder starts.
    Returns (parts, rows kept, lines lost).
    """
    stem = "part-" + path.name.removesuffix(JOURNAL_SUFFIX) + "-salvaged"
    parts: list[Path] = []
    kept = lost = 0
    batch: list[dict[str, object]] = []

    def flush() -> None:
        nonlocal kept, lost
        if not batch:
            return
        tables = []
        try:
            tables.append(_capture_table(pa.Table.from_pylist(batch, schema=_JOURNAL_SCHEMA)))
        except Exception:  # one bad row in the batch: find it row by row
            for row in batch:
                try:
                    tables.append(
                        _capture_table(pa.Table.from_pylist([row], schema=_JOURNAL_SCHEMA))
                    )
                except Exception:
                    lost += 1
        if tables:
            table = pa.concat_tables(tables)
            parts.extend(_write_parts(table, frames_dir, f"{stem}-{len(parts) + 1}"))
            kept += table.num_rows
        batch.clear()

    with path.open("rb") as journal:
        for line in journal:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not an object")
                _check_row(row, _JOURNAL_COLUMNS)
            except (ValueError, RecursionError):
                lost += 1
                continue
            batch.append(row)
            if len(batch) >= SALVAGE_BATCH_ROWS:
                flush()
    flush()
    path.rename(path.with_name(path.name + DAMAGED_SUFFIX))
    _fsync_dir(path.parent)
    return parts, kept, lost


def _seal_file(path: Path, frames_dir: Path) -> tuple[list[Path], int, int]:
    """Seal one journal (its lock held by the caller) and delete it: (parts, rows, torn lines)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    torn = 1 if data[end:].strip() else 0
    if torn:
        logger.warning(
            "%s: dropped a torn last line (%d bytes) left by a crash", path, len(data) - end
        )
    table, bad = _parse_journal(data[:end], path)
    stem = "part-" + path.name.removesuffix(JOURNAL_SUFFIX)
    parts = _write_parts(_capture_table(table), frames_dir, stem)
    path.unlink()
    _fsync_dir(path.parent)
    return parts, table.num_rows, torn + bad


class CaptureWriter:
    """Journal-first writer of one recorder process into a capture folder. Thread-safe."""

    def __init__(
        self,
        capture_dir: Path,
        *,
        rotate_seconds: float = 300.0,
        rotate_bytes: int = 64 * 1024 * 1024,
        on_write_error: Literal["continue", "close"] = "continue",
        fsync: bool = False,
    ) -> None:
        if on_write_error not in ("continue", "close"):
            raise ValueError(
                f"on_write_error must be 'continue' or 'close', not {on_write_error!r}"
            )
        if rotate_seconds <= 0 or rotate_bytes <= 0:
            raise ValueError("rotate_seconds and rotate_bytes must be positive")
        self.capture_dir = Path(capture_dir)
        self.journal_dir = self.capture_dir / JOURNAL_DIR
        self.frames_dir = self.capture_dir / FRAMES_DIR
        self.rotate_seconds = rotate_seconds
        self.rotate_bytes = rotate_bytes
        self.on_write_error = on_write_error
        self.fsync = fsync
        self.instance_id = _new_instance_id()
        self.unrecorded = 0  # rows lost to write errors so far
        self.torn_lines = 0  # unreadable lines dropped while sealing (torn by a crash)
        self.parts: list[Path] = []  # parts sealed by this writer (recovered ones included)
        # For operations (recorder/metrics.py): failed appends, failed seals, bytes of retired
        # journals not sealed yet, and a callback with each seal's duration and rows.
        self.write_errors = 0
        self.seal_failures = 0
        self._retired_bytes = 0
        self.on_sealed: Callable[[float, int], None] | None = None
        # Called with the parts of each journal once they are durable (capture/remote.py uploads).
        self.on_parts: Callable[[list[Path]], None] | None = None
        self._lock = threading.Lock()
        self._journal: _Journal | None = None
        self._journal_count = 0
        self._started = False
        self._closed = False
        # The current burst of write failures.
        self._burst_unrecorded = 0
        self._burst_first_ts: int | None = None
        self._burst_last_ts: int | None = None
        self._burst_logged_at = 0.0
        self._needs_newline = False  # a failed write may have left part of a line
        self._seal_queue: queue.Queue[_Journal | None] = queue.Queue()
        self._unsealed: list[_Journal] = []  # sealing failed; retried (sealer thread only)
        self._sealer: threading.Thread | None = None
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> list[Path]:
        """Make the folders, seal every journal a crash left, open a journal; the recovered parts."""
        if self._started:
            raise RuntimeError("capture writer already started")
        _make_dirs(self.journal_dir)
        _make_dirs(self.frames_dir)
        # The schema check's one-off set-up (about 0.4 s of Python: reading every OCPP schema) here,
        # before any charger is connected, not in the seal thread, whose GIL would stall them.
        schema_validation.prepare()
        recovered = self._recover()
        with self._lock:
            self._journal = self._open_journal()
            self._started = True
        self._sealer = threading.Thread(target=self._seal_loop, name="capture-sealer", daemon=True)
        self._sealer.start()
        self._timer = threading.Thread(target=self._timer_loop, name="capture-rotate", daemon=True)
        self._timer.start()
        return recovered

    def close(self) -> None:
        """Seal everything and wait for the sealing thread. Idempotent."""
        if not self._started or self._closed:
            self._closed = True
            return
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        with self._lock:
            self._closed = True
            journal, self._journal = self._journal, None
            if self._burst_unrecorded:
                logger.error(
                    "capture closed with %d unrecorded row(s) not marked by a gap row",
                    self._burst_unrecorded,
                )
        if journal is not None:
            self._retire(journal)
        self._seal_queue.put(None)
        if self._sealer is not None:
            self._sealer.join()

    def __enter__(self) -> CaptureWriter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------------

    def append(self, row: dict[str, object]) -> None:
        """Write one row as one journal line; the OS has it when this returns."""
        _check_row(row)
        line, omitted = _journal_line_and_omitted(row)
        with self._lock:
            journal = self._journal
            if journal is None:
                raise CaptureWriteError(
                    "capture writer is closed" if self._closed else "capture writer not started"
                )
            if self._burst_unrecorded:
                line = self._gap_line() + line
            if self._needs_newline:
                line = b"\n" + line  # end the partial line a failed write may have left
            try:
                _write_all(journal.fd, line)
                if self.fsync:
                    os.fdatasync(journal.fd)
            except OSError as error:
                self._write_failed(journal, row, error)
                return
            if self._burst_unrecorded:
                logger.warning(
                    "capture %s: writing works again; %d row(s) were not recorded (gap row written)",
                    self.capture_dir,
                    self._burst_unrecorded,
                )
                self._burst_unrecorded = 0
                self._burst_first_ts = self._burst_last_ts = None
            self._needs_newline = False
            journal.size += len(line)
            journal.rows += 1
            # Rotation counts a payload journalled as its place in raw at its full size: a seal
            # then holds as many bytes of frames in memory as before, the journal on disk fewer.
            journal.payload_bytes += omitted
            if journal.size + journal.payload_bytes >= self.rotate_bytes:
                self._rotate_locked()

    def _gap_line(self) -> bytes:
        """The gap row: at the time of the first unrecorded row, so it sorts where the hole is."""
        detail = {
            "unrecorded": self._burst_unrecorded,
            "first_ts": self._burst_first_ts,
            "last_ts": self._burst_last_ts,
        }
        gap = {"event": Event.GAP.value, "ts": self._burst_first_ts, "detail": json.dumps(detail)}
        return _journal_line(gap)

    def _write_failed(self, journal: _Journal, row: dict[str, object], error: OSError) -> None:
        """Policy on a failed journal write (see the module docstring). Called with the lock held."""
        # Cut back whatever part of the line reached the file; if even that fails, the next
        # successful write starts on a new line and the sealer skips the fragment.
        try:
            os.ftruncate(journal.fd, journal.size)
        except OSError:
            self._needs_newline = True
        self.write_errors += 1
        self.unrecorded += 1
        ts = row["ts"]
        if self._burst_unrecorded == 0:
            self._burst_first_ts = ts  # type: ignore[assignment]
        self._burst_unrecorded += 1
        self._burst_last_ts = ts  # type: ignore[assignment]
        now = time.monotonic()
        if self._burst_unrecorded == 1 or now - self._burst_logged_at >= ERROR_LOG_INTERVAL_S:
            self._burst_logged_at = now
            logger.error(
                "capture %s: cannot write the journal (%s); policy %r: %s (%d unrecorded so far)",
                self.capture_dir,
                os.strerror(error.errno) if error.errno else error,
                self.on_write_error,
                "frames are forwarded but not recorded"
                if self.on_write_error == "continue"
                else "connections are closed",
                self._burst_unrecorded,
            )
        if self.on_write_error == "close":
            raise CaptureWriteError(
                f"cannot write the capture journal {journal.path}: {error}"
            ) from error

    # -- rotation and sealing -----------------------------------------------------------------------

    def rotate(self) -> None:
        """Start a new journal now; the old one is sealed in the background."""
        with self._lock:
            if self._journal is not None:
                self._rotate_locked()

    def _rotate_locked(self) -> None:
        old = self._journal
        assert old is not None
        try:
            self._journal = self._open_journal()
        except OSError as error:
            logger.error("capture %s: cannot open a new journal (%s)", self.capture_dir, error)
            return  # keep writing to the old one
        self._retire(old)

    def _retire(self, journal: _Journal) -> None:
        """Hand a finished journal to the sealer, or drop it if it holds nothing."""
        if journal.rows == 0:
            journal.path.unlink(missing_ok=True)
            os.close(journal.fd)
            return
        self._retired_bytes += journal.size
        self._seal_queue.put(journal)

    def _open_journal(self) -> _Journal:
        self._journal_count += 1
        stem = f"{_utc_stamp()}-{self.instance_id}-{self._journal_count}"
        # Created and locked under a hidden name first, so recovery in another process never sees
        # (and locks) a journal before its owner holds the lock.
        temporary = self.journal_dir / f".{stem}.tmp"
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, FILE_MODE
        )
        try:
            os.fchmod(fd, FILE_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = self.journal_dir / f"{stem}{JOURNAL_SUFFIX}"
            os.rename(temporary, path)
            if self.fsync:
                _fsync_dir(self.journal_dir)  # the journal's name survives a power cut too
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        return _Journal(path=path, fd=fd, stem=stem, opened_at=time.monotonic())

    def _seal_loop(self) -> None:
        while True:
            journal = self._seal_queue.get()
            try:
                # Journals that failed to seal (disk full) are retried first, oldest first.
                for failed in list(self._unsealed):
                    if self._seal(failed, retry=True):
                        self._unsealed.remove(failed)
                if journal is None:
                    for failed in self._unsealed:
                        os.close(failed.fd)  # releases the lock: the next start() seals it
                        logger.error(
                            "capture %s: %s could not be sealed; the next start seals it",
                            self.capture_dir,
                            failed.path.name,
                        )
                    self._unsealed.clear()
                    return
                if not self._seal(journal):
                    self._unsealed.append(journal)
            finally:
                self._seal_queue.task_done()

    def _seal(self, journal: _Journal, *, retry: bool = False) -> bool:
        """Seal a journal of this writer; on failure it stays (and stays locked) for a retry."""
        started = time.monotonic()
        try:
            parts, rows, torn = _seal_file(journal.path, self.frames_dir)
        except Exception as error:
            if retry:
                logger.debug("sealing %s failed again: %s", journal.path.name, error)
            else:
                logger.exception(
                    "capture %s: sealing %s failed; retried at the next rotation",
                    self.capture_dir,
                    journal.path.name,
                )
            self.seal_failures += 1
            return False
        os.close(journal.fd)  # releases the lock; the file is gone
        self.torn_lines += torn
        self.parts.extend(parts)
        with self._lock:
            self._retired_bytes -= journal.size
        if self.on_sealed is not None:
            self.on_sealed(time.monotonic() - started, rows)
        if self.on_parts is not None and parts:
            self.on_parts(parts)
        logger.info(
            "sealed %s: %d row(s) into %d part(s) in %.2f s",
            journal.path.name,
            rows,
            len(parts),
            time.monotonic() - started,
        )
        return True

    @property
    def unsealed_bytes(self) -> int:
        """Journal bytes not sealed into parts yet: the open journal and those waiting."""
        with self._lock:
            open_bytes = self._journal.size if self._journal is not None else 0
            return open_bytes + self._retired_bytes

    @property
    def failing(self) -> bool:
        """A burst of failed journal writes is going on (the last append could not be written)."""
        return self._burst_unrecorded > 0

    def writable(self) -> str | None:
        """None when a new journal could be made in the capture folder now; else why not.

        Tries it (a probe file created and removed), so a full disk, a read-only mount or a
        folder that went away count, for root too (who passes every permission check).
        """
        probe = self.journal_dir / f".probe-{self.instance_id}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
            try:
                os.write(fd, b"\n")
            finally:
                os.close(fd)
            probe.unlink()
        except OSError as error:
            return f"{self.journal_dir}: {error.strerror or error}"
        return None

    def wait_sealed(self, timeout: float | None = None) -> bool:
        """Wait until every journal handed to the sealer is sealed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._seal_queue.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _timer_loop(self) -> None:
        interval = min(1.0, max(0.01, self.rotate_seconds / 4))
        while not self._stop.wait(interval):
            with self._lock:
                journal = self._journal
                if (
                    journal is not None
                    and journal.rows
                    and time.monotonic() - journal.opened_at >= self.rotate_seconds
                ):
                    self._rotate_locked()

    def _recover(self) -> list[Path]:
        """Seal every journal in the folder that no live process holds."""
        recovered: list[Path] = []
        for path in sorted(self.journal_dir.iterdir()):
            is_journal = path.name.endswith(JOURNAL_SUFFIX)
            if not is_journal and not (path.name.startswith(".") and path.name.endswith(".tmp")):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # sealed by another process meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as error:
                    if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        continue  # a live recorder's journal
                    raise
                if os.fstat(fd).st_nlink == 0:
                    continue  # another process sealed and deleted it while we waited
                if not is_journal:
                    path.unlink()  # created but never used: its owner died before the rename
                    continue
                try:
                    parts, rows, torn = _seal_file(path, self.frames_dir)
                except OSError as error:  # the disk, not the journal: keep it for the next start
                    logger.error("could not seal %s left by a crash (kept): %s", path.name, error)
                    continue
                except Exception as error:  # a damaged journal must not stop the recorder
                    logger.warning(
                        "%s left by a crash is damaged (%s: %s): salvaging it line by line",
                        path.name,
                        type(error).__name__,
                        error,
                    )
                    parts, rows, torn = _salvage(path, self.frames_dir)
                    logger.warning(
                        "salvaged %s: %d row(s) into %d part(s), %d line(s) lost; the journal is "
                        "kept as %s",
                        path.name,
                        rows,
                        len(parts),
                        torn,
                        path.name + DAMAGED_SUFFIX,
                    )
                self.torn_lines += torn
                recovered.extend(parts)
                logger.warning(
                    "recovered %s left by a crash: %d row(s) into %d part(s)%s",
                    path.name,
                    rows,
                    len(parts),
                    f", {torn} torn line(s) dropped" if torn else "",
                )
            finally:
                os.close(fd)
        self.parts.extend(recovered)
        return recovered


def _batched(rows: Iterable[dict[str, object]], size: int) -> Iterator[list[dict[str, object]]]:
    batch: list[dict[str, object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_rows(rows: Iterable[dict[str, object]], capture_dir: Path) -> list[Path]:
    """Rows straight into sealed Parquet parts, no journal (for tests, importers, generators)."""
    frames_dir = Path(capture_dir) / FRAMES_DIR
    _make_dirs(frames_dir)
    stem = f"part-{_utc_stamp()}-{_new_instance_id()}"
    parts: list[Path] = []
    for number, batch in enumerate(_batched(rows, WRITE_ROWS_PART_ROWS), start=1):
        for row in batch:
            _check_row(row)
        table = pa.Table.from_pylist(batch, schema=ARROW_SCHEMA)
        parts.extend(_write_parts(table, frames_dir, f"{stem}-{number}"))
    return parts
