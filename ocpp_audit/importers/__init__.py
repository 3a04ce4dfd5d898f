"""Importers: logs people already have (jsonl, mitmproxy flows, SteVe, the ``ocpp`` library's
logger) turned into a capture, with the rows a recorder engine would have written."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

from ocpp_audit.capture.writer import write_rows
from ocpp_audit.importers.common import (
    CaptureBuilder,
    ImportFileError,
    ImportSummary,
    Timestamps,
)

__all__ = ["FORMATS", "ImportFileError", "ImportSummary", "import_files"]

# format name -> module with read(path, builder, timestamps)
FORMATS: dict[str, str] = {
    "jsonl": "ocpp_audit.importers.jsonl",
    "mitmproxy": "ocpp_audit.importers.mitmproxy_flows",
    "steve": "ocpp_audit.importers.steve",
    "ocpp-log": "ocpp_audit.importers.ocpp_log",
}


def import_files(
    paths: Sequence[Path],
    fmt: str,
    capture_dir: Path,
    *,
    chargers: Sequence[str] = (),
    timezone: str | None = None,
) -> ImportSummary:
    """Read every file, then write all their rows into ``capture_dir`` as sealed Parquet parts.

    Raises :class:`ImportFileError` naming the file when one cannot be read; nothing is written
    then. Unknown ``timezone`` names raise it too.
    """
    reader: Callable[[Path, CaptureBuilder, Timestamps], None] = importlib.import_module(
        FORMATS[fmt]
    ).read
    summary = ImportSummary()
    try:
        timestamps = Timestamps(summary, timezone)
    except (ValueError, KeyError) as error:  # zoneinfo: ZoneInfoNotFoundError is a KeyError
        raise ImportFileError(f"unknown time zone {timezone!r} ({error})") from None
    builder = CaptureBuilder(summary, chargers)
    for path in paths:
        builder.new_file()
        try:
            reader(Path(path), builder, timestamps)
        except OSError as error:
            raise ImportFileError(f"{path}: cannot read ({error.strerror or error})") from None
        summary.files += 1
    if builder.rows:
        write_rows(builder.rows, capture_dir)
    return summary
