"""Open captures in DuckDB: check each Parquet part's footer, then define the ``frames`` view.

A capture is a folder of Parquet parts (``DIR/frames/date=YYYY-MM-DD/part-*.parquet``) or any Parquet
file the recorder wrote. Each part's footer is read with pyarrow first (cheap: no row data) so that a
truncated file, a foreign Parquet file or a capture from an unknown schema major version is refused
with a message naming the file, before DuckDB sees it. Rows never come into Python: the ``frames``
view reads the parts where they lie, and every other view and rule is SQL over it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

from ocpp_audit.capture.live import OpenJournals, read_open_journals

# Finding and checking parts lives with the capture; re-exported for the analyser's callers.
from ocpp_audit.capture.parts import (
    CaptureError,
    SkippedPart,
    TimeBound,
    _quote,
    check_part,
    error_line,
    find_parts,
    frames_sql,
    parse_time,
    readable_parts,
)

logger = logging.getLogger(__name__)

_spill_ids = itertools.count()

__all__ = [
    "CaptureError",
    "SkippedPart",
    "TimeBound",
    "check_part",
    "error_line",
    "find_parts",
    "frames_sql",
    "open_capture",
    "parse_time",
    "readable_parts",
]


def _configure(
    con: duckdb.DuckDBPyConnection, *, in_memory: bool, memory_limit: str | None
) -> None:
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB draws a progress bar on long queries; it would land in the middle of our output.
    con.execute("SET enable_progress_bar = false")
    # Every view and rule binds the same parts again; without the cache each binding reads every
    # part's footer anew (a shard of a 70-part capture: 0.85 s of its set-up).
    con.execute("SET parquet_metadata_cache = true")
    if in_memory:
        # Spill to the system's temporary folder rather than a .tmp folder in the current one.
        spill = Path(tempfile.gettempdir()) / f"ocpp-audit-{os.getpid()}-{next(_spill_ids)}"
        con.execute(f"SET temp_directory = {_quote(str(spill))}")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = {_quote(memory_limit)}")


def _create_views(con: duckdb.DuckDBPyConnection, params: Mapping[str, object] | None) -> None:
    from ocpp_audit.analyser import views

    views.create_views(con, params)


def open_capture(
    paths: Sequence[Path],
    *,
    chargers: Sequence[str] = (),
    since: str | dt.datetime | dt.date | None = None,
    until: str | dt.datetime | dt.date | None = None,
    view_params: Mapping[str, object] | None = None,
    database: str | Path = ":memory:",
    memory_limit: str | None = None,
    journals: OpenJournals | None = None,
    shard: tuple[str, str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``all_frames`` and ``frames`` views over the capture (every row,
    and the primary backend's rows), and the analyst views.

    ``database`` may name a DuckDB file: the views are then stored in it, over the parts' absolute
    paths, for the DuckDB CLI or a BI tool. ``memory_limit`` (DuckDB's, such as "1GB") caps the
    memory DuckDB uses; beyond it, joins, sorts and windows spill to a temporary folder, which
    DuckDB removes when the connection closes. Raises CaptureError naming the file at fault, and
    ValueError for a since/until that is not ISO 8601 or a bad memory limit.

    A capture still being recorded is read whole: the rows of its open journals join the parts
    (``journals``, read here unless the caller read them already; see ``ocpp_audit.capture.live``).
    In a DuckDB file they are stored as the table ``open_journal_rows``, a snapshot of that moment.

    ``shard`` (first, last): only the chargers whose ids sort from ``first`` to ``last``, both
    included (every rule is judged per charger, so shards judged one after the other give the
    whole report, each in a part of the memory). A part keeps each charger's rows together, so
    DuckDB skips the row groups of other chargers by their min/max statistics: a shard reads its
    own rows, not the whole capture again.
    """
    if journals is None:
        journals = read_open_journals(
            paths
        )  # before the parts: a journal sealed meanwhile is a part
    parts = find_parts(paths)
    for part in parts:
        check_part(part)
    live = "open_journal_rows" if journals.files else None
    sql = frames_sql(parts, chargers=chargers, since=since, until=until, journal=live, mirrors=True)
    if shard is not None:
        first, last = (value.replace("'", "''") for value in shard)
        sql = f"SELECT * FROM ({sql}) WHERE charge_point_id BETWEEN '{first}' AND '{last}'"
    logger.debug("frames view over %d parts", len(parts))
    con = duckdb.connect(str(database))
    try:
        _configure(con, in_memory=str(database) == ":memory:", memory_limit=memory_limit)
    except duckdb.Error as error:
        con.close()
        raise ValueError(f"memory limit {memory_limit!r}: {error_line(error)}") from None
    try:
        if live is not None:
            if str(database) == ":memory:":
                con.register(live, journals.table)
            else:
                con.register("open_journal_arrow", journals.table)
                con.execute(f"CREATE OR REPLACE TABLE {live} AS FROM open_journal_arrow")
                con.unregister("open_journal_arrow")
        # all_frames: every row, mirrors' included; frames: the primary backend's rows, which
        # every view and rule judges (a mirror's answers never change a verdict).
        con.execute(f"CREATE OR REPLACE VIEW all_frames AS {sql}")
        con.execute(
            "CREATE OR REPLACE VIEW frames AS SELECT * FROM all_frames WHERE backend IS NULL"
        )
        # Bind now: a part whose columns DuckDB cannot read fails here, with DuckDB's own words.
        con.execute("DESCRIBE frames").fetchall()
    except duckdb.Error as error:
        con.close()
        where = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
        raise CaptureError(f"{where}: {error_line(error)}") from None
    _create_views(con, view_params)
    return con
