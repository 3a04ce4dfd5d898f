"""A capture still being recorded: the rows in its open journals, read without disturbing the recorder.

The recorder appends every row to ``<capture>/journal/*.journal`` (one JSON line, one ``os.write``)
before it forwards the frame, and seals a journal into Parquet parts only every few minutes (see
``ocpp_audit.capture.writer``). ``query`` and ``analyse`` read the journals too, so what the recorder
forwarded a second ago is in the answer without sealing and without taking the recorder's lock:

- only complete lines are read; a last line the recorder is still writing (or a crash tore) is
  skipped and counted in ``torn_lines``;
- a journal being sealed while we read is taken once: when a part named after it already exists,
  its parts are used and the journal is not (sealing writes the parts first, then deletes the
  journal, see ``_seal_file``); a journal that vanished between listing and reading was sealed, and
  its parts are found when the parts are listed afterwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ocpp_audit.capture.schema import FRAMES_DIR
from ocpp_audit.capture.writer import (
    ARROW_SCHEMA,
    JOURNAL_DIR,
    JOURNAL_SUFFIX,
    _capture_table,
    _parse_journal,
)

__all__ = ["OpenJournals", "journal_folders", "read_open_journals"]

logger = logging.getLogger(__name__)

# How long to wait for a journal whose parts are being written to be deleted (sealing takes well
# under a second per 64 MiB journal), before reading the parts as they are.
SEAL_WAIT_S = 5.0


@dataclass
class OpenJournals:
    """Rows read from the open journals of a capture, in the capture's Arrow schema."""

    table: pa.Table = field(default_factory=ARROW_SCHEMA.empty_table)
    files: list[Path] = field(default_factory=list)
    torn_lines: int = 0  # an incomplete last line per journal, and lines that did not read

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def summary(self) -> str:
        """One line for stderr: what was read from the journals."""
        text = f"{self.rows} row(s) read from {len(self.files)} open journal(s), not sealed yet"
        if self.torn_lines:
            text += f"; skipped {self.torn_lines} incomplete line(s) still being written"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "files": [str(path) for path in self.files],
            "rows": self.rows,
            "torn_lines": self.torn_lines,
        }


def journal_folders(paths: Sequence[Path]) -> list[Path]:
    """The ``journal/`` folders of the given capture folders (a capture, not a folder of captures)."""
    folders = []
    for path in paths:
        folder = Path(path) / JOURNAL_DIR
        if folder.is_dir():
            folders.append(folder)
    return folders


def _has_parts(capture: Path, journal: Path) -> bool:
    stem = "part-" + journal.name.removesuffix(JOURNAL_SUFFIX)
    return any((capture / FRAMES_DIR).glob(f"*/{stem}.parquet"))


def _complete_lines(path: Path) -> tuple[bytes, int] | None:
    """The journal's complete lines and 1 when a last line is incomplete; None if it is gone."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None  # sealed and deleted since it was listed: its parts hold the rows
    end = data.rfind(b"\n") + 1
    return data[:end], 1 if data[end:].strip() else 0


def read_open_journals(paths: Sequence[Path]) -> OpenJournals:
    """The rows of every open journal of the capture folders in ``paths``.

    Call it before listing the parts (``find_parts``): a journal sealed in between is then found
    as parts, never twice and never lost.
    """
    found = OpenJournals()
    tables: list[pa.Table] = []
    for folder in journal_folders(paths):
        capture = folder.parent
        for journal in sorted(folder.glob(f"*{JOURNAL_SUFFIX}")):
            read = _complete_lines(journal)
            if read is None:
                continue
            if _has_parts(capture, journal):
                # Being sealed: wait for the journal to go, so that every part of it is there.
                deadline = time.monotonic() + SEAL_WAIT_S
                while journal.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                continue
            data, torn = read
            table, bad = _parse_journal(data, journal)
            found.torn_lines += torn + bad
            found.files.append(journal)
            if table.num_rows:
                tables.append(_capture_table(table))
    if tables:
        found.table = pa.concat_tables(tables)
    if found.files:
        logger.info("%s", found.summary())
    return found
