"""Importers: logs people already have (jsonl, mitmproxy flows, pcap, SteVe, evcc, MicroOcpp,
libocpp, the ``ocpp`` library's logger) turned into a capture, with the rows a recorder engine
would have written."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ocpp_audit.capture.schema import FRAMES_DIR
from ocpp_audit.capture.writer import write_rows
from ocpp_audit.importers.common import (
    CaptureBuilder,
    ImportFileError,
    ImportSummary,
    Timestamps,
)

__all__ = ["FORMATS", "ImportFileError", "ImportSummary", "detect_format", "import_files"]

# format name -> module with read(path, builder, timestamps)
FORMATS: dict[str, str] = {
    "jsonl": "ocpp_audit.importers.jsonl",
    "mitmproxy": "ocpp_audit.importers.mitmproxy_flows",
    "pcap": "ocpp_audit.importers.pcap",
    "steve": "ocpp_audit.importers.steve",
    "ocpp-log": "ocpp_audit.importers.ocpp_log",
    "evcc": "ocpp_audit.importers.evcc",
    "microocpp": "ocpp_audit.importers.microocpp",
    "libocpp": "ocpp_audit.importers.libocpp",
}
BINARY_FORMATS = frozenset({"mitmproxy", "pcap"})
AUTO = "auto"
SNIFF_LINES = 200
ROW_BATCH = 50_000  # rows held in memory before they go to a Parquet part (~1.3 KB each)
SNIFF_CHARS = 1024 * 1024

# pcap (both byte orders, micro- and nanosecond) and pcapng's section header block
_PCAP_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
# mitmproxy flow files are tnetstrings: "<length>:<...>"
_TNETSTRING = re.compile(rb"\d{1,12}:\d{1,12}:")


def _jsonl_line(line: str) -> bool:
    line = line.strip()
    if not line.startswith("{"):
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and any(
        key in record for key in ("raw", "frame", "message", "raw_base64")
    )


def _line_tests() -> dict[str, Callable[[str], bool]]:
    from ocpp_audit.importers import evcc, libocpp, microocpp, ocpp_log, steve

    return {
        "steve": lambda line: steve.LINE.search(line) is not None,
        "evcc": lambda line: evcc.LINE.search(line) is not None,
        "libocpp": lambda line: libocpp.HEADER.match(line) is not None,
        "microocpp": lambda line: microocpp.LINE.search(line) is not None,
        "ocpp-log": lambda line: ocpp_log.LINE.search(line) is not None,
        "jsonl": _jsonl_line,
    }


def _head_lines(path: Path) -> list[str]:
    lines: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as stream:
        while len(lines) < SNIFF_LINES:
            line = stream.readline(SNIFF_CHARS)
            if not line:
                break
            lines.append(line.rstrip("\r\n"))
    return lines


def detect_format(path: Path, exclude: str | None = None) -> str | None:
    """The format whose lines the start of ``path`` holds most of (or a binary format's magic);
    None when no format recognises any."""
    with path.open("rb") as stream:
        head = stream.read(16)
    if head[:4] in _PCAP_MAGIC or head[:4] == _PCAPNG_MAGIC:
        return "pcap"
    if _TNETSTRING.match(head):
        return "mitmproxy"
    lines = _head_lines(path)
    scores = {
        name: sum(1 for line in lines if test(line))
        for name, test in _line_tests().items()
        if name != exclude
    }
    best = max(scores, key=lambda name: scores[name], default=None)
    return best if best is not None and scores[best] > 0 else None


def _unreadable(path: Path, fmt: str) -> ImportFileError:
    shown = [line[:120] for line in _head_lines(path) if line.strip()][:3]
    other = detect_format(path, exclude=fmt)
    message = f"{path}: no line of it reads as --format {fmt}"
    if fmt == AUTO:
        message = f"{path}: not in a supported format ({', '.join(FORMATS)})"
    message += "; it starts:\n" + "\n".join(f"  {line}" for line in shown)
    if other is not None and fmt != AUTO:
        message += f"\nit looks like --format {other}"
    return ImportFileError(message)


def import_files(
    paths: Sequence[Path],
    fmt: str,
    capture_dir: Path,
    *,
    chargers: Sequence[str] = (),
    timezone: str | None = None,
    progress: Callable[[int, int | None, str], None] | None = None,
) -> ImportSummary:
    """Read every file, then write all their rows into ``capture_dir`` as sealed Parquet parts.

    ``fmt`` ``auto`` picks each file's format from its first lines. Raises
    :class:`ImportFileError` naming the file when one cannot be read, or holds not one line of
    its format (with the first lines and the format they look like); nothing is written then.
    Unknown ``timezone`` names raise it too. ``progress(frames, None, file name)`` hears how
    many rows were made so far, at each file and each batch.
    """
    summary = ImportSummary()
    try:
        timestamps = Timestamps(summary, timezone)
    except (ValueError, KeyError) as error:  # zoneinfo: ZoneInfoNotFoundError is a KeyError
        raise ImportFileError(f"unknown time zone {timezone!r} ({error})") from None
    # Rows go to Parquet parts in a staging folder as they are made (memory bounded by a batch,
    # not by the log), and join the capture only once every file was read.
    staging = Path(capture_dir) / f".import-{uuid.uuid4().hex}"

    made = 0  # rows handed to Parquet so far
    reading = ""  # the file being read

    def flush(rows: list[dict[str, object]]) -> None:
        nonlocal made
        write_rows(rows, staging)
        made += len(rows)
        if progress is not None:
            progress(made, None, reading)

    def next_file(path: Path) -> None:
        nonlocal reading
        reading = path.name
        if progress is not None:
            progress(made, None, reading)

    builder = CaptureBuilder(summary, chargers, flush=flush, batch=ROW_BATCH)
    existed = Path(capture_dir).exists()
    try:
        _read_all(paths, fmt, builder, timestamps, next_file)
        if builder.rows:
            write_rows(builder.rows, staging)
        _move_parts(staging / FRAMES_DIR, Path(capture_dir) / FRAMES_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed and Path(capture_dir).is_dir() and not any(Path(capture_dir).iterdir()):
            Path(capture_dir).rmdir()
    return summary


def _move_parts(source: Path, target: Path) -> None:
    if not source.is_dir():
        return
    for part in sorted(source.rglob("*.parquet")):
        destination = target / part.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        part.replace(destination)


def _read_all(
    paths: Sequence[Path],
    fmt: str,
    builder: CaptureBuilder,
    timestamps: Timestamps,
    next_file: Callable[[Path], None],
) -> None:
    summary = builder.summary
    for path in paths:
        path = Path(path)
        next_file(path)
        builder.new_file()
        try:
            file_format = fmt
            if fmt == AUTO:
                file_format = detect_format(path) or ""
                if not file_format:
                    raise _unreadable(path, AUTO)
                summary.note(f"format detected: {file_format}")
            reader: Callable[[Path, CaptureBuilder, Timestamps], None] = importlib.import_module(
                FORMATS[file_format]
            ).read
            entries = summary.entries
            reader(path, builder, timestamps)
            if (
                summary.entries == entries
                and file_format not in BINARY_FORMATS
                and any(line.strip() for line in _head_lines(path))
            ):
                raise _unreadable(path, file_format)
        except OSError as error:
            raise ImportFileError(f"{path}: cannot read ({error.strerror or error})") from None
        summary.files += 1
