"""Retention: remove the sealed parts of days older than a limit (``record --retain-days``, ``prune``).

Only sealed parts are removed, whole date partitions at a time (``frames/date=YYYY-MM-DD/``), by the
date in the folder's name (UTC, the day the rows were recorded): never the journal, never an upload,
never a file outside ``frames/``. A day is removed when all of it is older than the limit: with
``older_than_days=30`` on 2024-05-31, ``date=2024-04-30`` and earlier go, ``date=2024-05-01`` stays.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ocpp_audit.capture.schema import FRAMES_DIR, PARTITION_KEY

__all__ = ["Pruned", "expired_days", "prune"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pruned:
    folder: Path
    parts: int
    bytes: int


def expired_days(capture_dir: Path, older_than_days: int, today: dt.date) -> list[Path]:
    """The date partitions of ``capture_dir`` whose whole day is older than the limit."""
    if older_than_days < 0:
        raise ValueError("the age limit must be 0 days or more")
    cutoff = today - dt.timedelta(days=older_than_days)
    frames = Path(capture_dir) / FRAMES_DIR
    expired = []
    for folder in sorted(frames.glob(f"{PARTITION_KEY}=*")) if frames.is_dir() else []:
        try:
            day = dt.date.fromisoformat(folder.name.split("=", 1)[1])
        except ValueError:
            continue  # not a partition this tool wrote: left alone
        if folder.is_dir() and not folder.is_symlink() and day < cutoff:
            expired.append(folder)
    return expired


def prune(
    capture_dir: Path,
    older_than_days: int,
    *,
    today: dt.date | None = None,
    dry_run: bool = False,
) -> list[Pruned]:
    """Remove the expired date partitions (see the module); what was (or would be) removed."""
    today = today or dt.datetime.now(dt.UTC).date()
    removed = []
    for folder in expired_days(capture_dir, older_than_days, today):
        parts = [p for p in folder.rglob("*.parquet") if p.is_file()]
        size = sum(p.stat().st_size for p in parts)
        if not dry_run:
            shutil.rmtree(folder)
            logger.warning("retention: removed %s (%d part(s), %d bytes)", folder, len(parts), size)
        removed.append(Pruned(folder, len(parts), size))
    return removed
