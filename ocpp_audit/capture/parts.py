"""Finding and checking a capture's Parquet parts, and the SQL that reads them.

A capture is a folder of Parquet parts (``DIR/frames/date=YYYY-MM-DD/part-*.parquet``) or any Parquet
file the recorder wrote. Each part's footer is read with pyarrow (cheap: no row data) so that a
truncated file, a foreign Parquet file or a capture from an unknown schema major version is refused
with a message naming the file before any engine reads it. Used by the analyser, replay, export and
the command line; the analyser's DuckDB set-up is in ``ocpp_audit.analyser.capture``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ocpp_audit.capture import schema
from ocpp_audit.protocol import schema_validation

logger = logging.getLogger(__name__)

_DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


class CaptureError(Exception):
    """A capture that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class TimeBound:
    """A --since/--until bound: an instant, and whether the user gave a bare date."""

    instant: dt.datetime
    is_date: bool


def parse_time(text: str | dt.datetime | dt.date) -> TimeBound:
    """Read an ISO 8601 date or date-time; a time without an offset is taken as UTC."""
    if isinstance(text, dt.datetime):
        value = text
        is_date = False
    elif isinstance(text, dt.date):
        value = dt.datetime.combine(text, dt.time())
        is_date = True
    else:
        stripped = text.strip()
        try:
            if len(stripped) == 10:
                value = dt.datetime.combine(dt.date.fromisoformat(stripped), dt.time())
                is_date = True
            else:
                value = dt.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
                is_date = False
        except ValueError:
            raise ValueError(
                f"{text!r} is not an ISO 8601 date or time (2024-05-01 or 2024-05-01T12:00:00Z)"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return TimeBound(value.astimezone(dt.UTC), is_date)


def find_parts(paths: Sequence[Path]) -> list[Path]:
    """The Parquet parts of the given capture folders and files, absolute, sorted, each once.

    A folder holding ``frames/`` contributes ``frames/**/*.parquet``. Any other folder (a folder of
    captures) contributes the parts under the ``frames/`` folders below it, and only when it has
    none, every ``*.parquet`` below it; never a file under an uploads folder (``diagnostics/``):
    a charger can upload a Parquet file over FTP, and it must not become a forged charger's
    verdicts. A file is taken as it is (and checked later).
    """
    parts: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for part in _parts_below(path):
                parts[part.resolve()] = None
        elif path.is_file():
            parts[path.resolve()] = None
        else:
            raise CaptureError(f"{path}: no such file or folder")
    return list(parts)


def _parts_below(folder: Path) -> list[Path]:
    if (folder / schema.FRAMES_DIR).is_dir():
        return [p for p in sorted((folder / schema.FRAMES_DIR).rglob("*.parquet")) if p.is_file()]
    found = [p for p in sorted(folder.rglob("*.parquet")) if p.is_file()]
    folders = {p: p.relative_to(folder).parts[:-1] for p in found}
    in_frames = [p for p in found if schema.FRAMES_DIR in folders[p]]
    if in_frames:
        return in_frames
    return [p for p in found if schema.UPLOADS_DIR not in folders[p]]


@dataclass(frozen=True)
class SkippedPart:
    """A part left out of an analysis (--skip-bad-parts), and why."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "problem": self.problem}


def readable_parts(paths: Sequence[Path]) -> tuple[list[Path], list[SkippedPart]]:
    """The parts of ``paths`` that pass ``check_part``, and the ones that do not, with the problem.

    For --skip-bad-parts. Raises CaptureError for a path that does not exist, and when the capture
    has parts but none of them is readable (an analysis of nothing would look like a clean one).
    """
    good: list[Path] = []
    skipped: list[SkippedPart] = []
    for part in find_parts(paths):
        try:
            check_part(part)
        except CaptureError as error:
            problem = str(error).removeprefix(f"{part}: ")
            logger.info("skipped %s: %s", part, problem)  # the caller lists them
            skipped.append(SkippedPart(part, problem))
        else:
            good.append(part)
    if skipped and not good:
        raise CaptureError(
            f"{skipped[0]}; no readable part left to analyse ({len(skipped)} skipped)"
        )
    return good, skipped


def check_part(path: Path) -> None:
    """Refuse a part that is not a readable capture part of a schema major version we know."""
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowException) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CaptureError(f"{path}: not a readable Parquet file (truncated?): {reason}") from None
    key_values = metadata.metadata or {}
    version = key_values.get(schema.META_SCHEMA_VERSION)
    if version is None:
        raise CaptureError(
            f"{path}: not an ocpp-audit capture part "
            f"(no {schema.META_SCHEMA_VERSION.decode()} in its metadata)"
        )
    text = version.decode(errors="replace")
    major = schema.schema_major(text)
    if major != schema.SCHEMA_MAJOR:
        raise CaptureError(
            f"{path}: capture schema version {text} is not supported "
            f"(this ocpp-audit reads major version {schema.SCHEMA_MAJOR})"
        )
    arrow_schema = metadata.schema.to_arrow_schema()
    absent = {name for name in schema.COLUMN_NAMES if arrow_schema.get_field_index(name) < 0}
    # A part of an older minor version lacks the columns added since; readers take them as null.
    missing = [
        column.name
        for column in schema.COLUMNS
        if column.name in absent and not _newer(column.since, text)
    ]
    if missing:
        raise CaptureError(f"{path}: missing columns {', '.join(missing)}")
    for column in schema.COLUMNS:
        if column.name in absent:
            continue
        stored = arrow_schema.field(column.name).type
        if stored != column.type:
            raise CaptureError(
                f"{path}: column {column.name} has type {stored}, expected {column.type}"
            )


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(number) for number in version.split("."))
    except ValueError:
        return (0,)


def _newer(since: str, version: str) -> bool:
    """Whether a column added in ``since`` is newer than a part written with ``version``."""
    return _version_key(since) > _version_key(version)


def _columns_present(parts: Sequence[Path]) -> set[str]:
    """The columns added after 1.0 that at least one of ``parts`` holds (footers only)."""
    later = {column.name for column in schema.COLUMNS if column.since != "1.0"}
    found: set[str] = set()
    for part in parts:
        if found == later:
            break
        try:
            names = set(pq.read_schema(part).names)
        except (OSError, pa.ArrowException):
            continue  # check_part names the file; here it just holds no column
        found |= later & names
    return {name for name in schema.COLUMN_NAMES if name not in later} | found


def stale_verdicts(parts: Sequence[Path]) -> list[Path]:
    """The parts whose ``schema_error`` verdicts came from another checker than the one this
    analysis would run (another revision of the check, or other ``ocpp`` schemas or validator
    versions): their verdicts must be judged again. A part without the column has none to trust or
    distrust."""
    current = schema_validation.checker_fingerprint().encode()
    stale = []
    for part in parts:
        try:
            part_schema = pq.read_schema(part)
        except (OSError, pa.ArrowException):
            continue  # check_part names the file
        if part_schema.get_field_index("schema_error") < 0:
            continue
        if (part_schema.metadata or {}).get(schema.META_SCHEMA_CHECK) != current:
            stale.append(part)
    return stale


def _lacks(part: Path, column: str) -> bool:
    """Whether the part was written before ``column`` existed (its footer, no row data)."""
    try:
        return pq.read_schema(part).get_field_index(column) < 0
    except (OSError, pa.ArrowException):
        return False


# OCPP-J 1.6 / 2.0.1 / 2.1 section 3.1.2: the subprotocol names the OCPP version; a part written
# before the ocpp_version column (schema 1.0) gets it from its connection's open row.
_VERSION_OF_SUBPROTOCOL = (
    "CASE max(CASE WHEN event = 'open' THEN subprotocol END) OVER (PARTITION BY connection_id)"
    " WHEN 'ocpp1.6' THEN '1.6' WHEN 'ocpp2.0.1' THEN '2.0.1' WHEN 'ocpp2.1' THEN '2.1' END"
)


def error_line(error: Exception) -> str:
    """A DuckDB (or other) error in one line: its message and hints, without the SQL excerpt."""
    text = str(error).split("\n\nLINE ", 1)[0].strip()
    return (
        " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(error).__name__
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _timestamp_literal(instant: dt.datetime) -> str:
    return f"TIMESTAMPTZ {_quote(instant.isoformat())}"


def frames_sql(
    parts: Sequence[Path],
    *,
    chargers: Sequence[str] = (),
    since: str | dt.datetime | dt.date | None = None,
    until: str | dt.datetime | dt.date | None = None,
    journal: str | None = None,
    mirrors: bool = False,
) -> str:
    """The SELECT behind the ``frames`` view: every schema column plus ``date`` (UTC), filtered.

    ``since`` is inclusive, ``until`` exclusive; a bare date as ``until`` includes that whole day.
    ``journal`` names a relation in the capture schema holding the rows of open journals (see
    ``ocpp_audit.capture.live``), read beside the parts. Only the primary backend's rows
    (``backend`` null) unless ``mirrors``: verdicts, replays and views judge what the charger lived
    through, never a mirror's copy of it. A column that no part holds (added by a later minor
    version than theirs) reads as null. Literal values only, so the view also works in a DuckDB
    file opened by another program.
    """
    if journal is not None:
        sealed = frames_sql(parts, chargers=chargers, since=since, until=until, mirrors=mirrors)
        live_date = "CAST(timezone('UTC', ts) AS DATE)"
        conditions = _conditions(chargers, since, until, None)
        if not mirrors:
            conditions.insert(0, "backend IS NULL")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        every = ", ".join(f'"{name}"' for name in schema.COLUMN_NAMES)
        return f"{sealed} UNION ALL SELECT {every}, {live_date} AS date FROM {journal}{where}"
    present = _columns_present(parts) if parts else set(schema.COLUMN_NAMES)
    if not parts:
        typed_nulls = ", ".join(
            f'CAST(NULL AS {_DUCKDB_TYPES[c.type]}) AS "{c.name}"' for c in schema.COLUMNS
        )
        return f"SELECT {typed_nulls}, CAST(NULL AS DATE) AS date WHERE false"

    files = ", ".join(_quote(str(part)) for part in parts)
    # Hive partitioning (date=YYYY-MM-DD folders) lets DuckDB skip whole days on a date filter;
    # a single part copied elsewhere has no such folder, so its date comes from ts.
    hive = all(part.parent.name.startswith(f"{schema.PARTITION_KEY}=") for part in parts)
    if hive:
        source = f"read_parquet([{files}], hive_partitioning = true, union_by_name = true)"
        date_expr = f"CAST({schema.PARTITION_KEY} AS DATE)"
    else:
        source = f"read_parquet([{files}], hive_partitioning = false, union_by_name = true)"
        date_expr = "CAST(timezone('UTC', ts) AS DATE)"
    lacking = [part for part in parts if _lacks(part, "ocpp_version")]
    if lacking:
        # Parts of schema 1.0: the version from the connection's open row, derived before any
        # filter (a --since may leave the open row out). union_by_name gives null where a part
        # lacks the column; when no part has it, there is no column to read at all.
        if len(lacking) == len(parts):
            source = f"(SELECT *, {_VERSION_OF_SUBPROTOCOL} AS ocpp_version FROM {source})"
        else:
            source = (
                f"(SELECT * REPLACE (coalesce(ocpp_version, {_VERSION_OF_SUBPROTOCOL})"
                f" AS ocpp_version) FROM {source})"
            )
        present.add("ocpp_version")  # derived above
    if "schema_error" in present and stale_verdicts(parts):
        # Verdicts of another checker in some part: every payload is judged again (the rule's own
        # path for a null verdict), so that one capture is never judged by two checkers at once.
        present.discard("schema_error")
    columns = ", ".join(
        f'"{c.name}"'
        if c.name in present
        else f'CAST(NULL AS {_DUCKDB_TYPES[c.type]}) AS "{c.name}"'
        for c in schema.COLUMNS
    )
    conditions = _conditions(chargers, since, until, date_expr if hive else None)
    if not mirrors and "backend" in present:
        conditions.insert(0, "backend IS NULL")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {columns}, {date_expr} AS date FROM {source}{where}"


def _conditions(
    chargers: Sequence[str],
    since: str | dt.datetime | dt.date | None,
    until: str | dt.datetime | dt.date | None,
    partition_date: str | None,
) -> list[str]:
    """WHERE conditions for a charger list and a time window; with ``partition_date`` (the hive
    date expression), also on the date partition so DuckDB skips whole days."""
    conditions: list[str] = []
    if chargers:
        conditions.append(f"charge_point_id IN ({', '.join(_quote(c) for c in chargers)})")
    if since is not None:
        bound = parse_time(since)
        conditions.append(f"ts >= {_timestamp_literal(bound.instant)}")
        if partition_date:
            conditions.append(
                f"{partition_date} >= DATE {_quote(bound.instant.date().isoformat())}"
            )
    if until is not None:
        bound = parse_time(until)
        end = bound.instant + dt.timedelta(days=1) if bound.is_date else bound.instant
        conditions.append(f"ts < {_timestamp_literal(end)}")
        if partition_date:
            conditions.append(f"{partition_date} <= DATE {_quote(end.date().isoformat())}")
    return conditions
