"""``ocpp-audit query``: SQL over a capture's views, a list of the views, or a DuckDB file of them."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import click
import duckdb

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.capture import schema
from ocpp_audit.capture.live import read_open_journals
from ocpp_audit.capture.parts import error_line, readable_parts
from ocpp_audit.capture.remote import is_remote
from ocpp_audit.cli.errors import InputError
from ocpp_audit.cli.output import emit, output_options
from ocpp_audit.cli.selection import local_captures, require_parts
from ocpp_audit.display import for_terminal

BATCH_ROWS = 10_000
MAX_TABLE_ROWS = 1_000  # a terminal table stops here; csv and json stream every row
MAX_CELL = 80


def _plain(value: object) -> object:
    """A result value as JSON-ready Python: times in ISO 8601 (Z for UTC), bytes as base64."""
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def _text(value: object) -> str:
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, dict | list):
        return json.dumps(plain, ensure_ascii=False)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    return str(plain)


def _batches(relation: duckdb.DuckDBPyRelation) -> Iterator[list[dict[str, object]]]:
    for batch in relation.to_arrow_reader(BATCH_ROWS):
        yield batch.to_pylist()


def _csv_chunks(columns: Sequence[str], relation: duckdb.DuckDBPyRelation) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for rows in _batches(relation):
        for row in rows:
            writer.writerow([_text(row[c]) for c in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json_chunks(columns: Sequence[str], relation: duckdb.DuckDBPyRelation) -> Iterator[str]:
    first = True
    yield "["
    for rows in _batches(relation):
        parts = []
        for row in rows:
            parts.append(("\n" if first else ",\n") + json.dumps(_plain(row), ensure_ascii=False))
            first = False
        yield "".join(parts)
    yield "\n]\n" if not first else "]\n"


def _clip(text: str) -> str:
    """A cell as a terminal shows it: one line, no control character interpreted (a charger's
    string is inert: ``ocpp_audit.display.for_terminal``), at most MAX_CELL characters."""
    text = " ".join(text.split()) if "\n" in text else text
    text = for_terminal(text)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _table_text(columns: Sequence[str], relation: duckdb.DuckDBPyRelation) -> str:
    rows: list[list[str]] = []
    more = False
    for batch in _batches(relation):
        for row in batch:
            if len(rows) == MAX_TABLE_ROWS:
                more = True
                break
            rows.append([_clip(_text(row[c])) if row[c] is not None else "NULL" for c in columns])
        if more:
            break
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    footer = f"({len(rows)} row{'' if len(rows) == 1 else 's'})"
    if more:
        footer = f"(first {MAX_TABLE_ROWS} rows shown; use --format csv or json for all)"
    lines.append(footer)
    return "\n".join(lines) + "\n"


# format name -> (columns, relation) -> the text, whole or in chunks
QUERY_FORMATS: dict[
    str, Callable[[Sequence[str], duckdb.DuckDBPyRelation], str | Iterable[str]]
] = {
    "table": _table_text,
    "csv": _csv_chunks,
    "json": _json_chunks,
}


def views_text() -> str:
    """The views analysts query, with their columns and one-line meanings."""
    from ocpp_audit.analyser import views

    out = ["frames: every recorded event, one row each (the capture as stored)"]
    width = max(len(c.name) for c in schema.COLUMNS)
    for column in schema.COLUMNS:
        out.append(f"  {column.name.ljust(width)}  {column.meaning}")
    out.append(f"  {'date'.ljust(width)}  UTC date of ts (the partition folder)")
    for view in views.VIEWS:
        out.append("")
        out.append(f"{view.name}: {view.description}")
        view_width = max((len(name) for name, _ in view.columns), default=0)
        for name, meaning in view.columns:
            out.append(f"  {name.ljust(view_width)}  {meaning}")
    return "\n".join(out) + "\n"


@click.command()
@click.argument("args", nargs=-1, required=False, metavar="CAPTURE... [SQL]")
@click.option("--views", "list_views", is_flag=True, help="List the views and their columns.")
@click.option(
    "--duckdb",
    "duckdb_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write a DuckDB database FILE with the views defined over the capture.",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="Cap DuckDB's memory (such as 2GB); beyond it DuckDB spills to a temporary folder.",
)
@click.option(
    "--skip-bad-parts",
    is_flag=True,
    help="Query the readable parts; list the unreadable ones on stderr.",
)
@output_options(QUERY_FORMATS, "table")
def query(
    args: tuple[str, ...],
    list_views: bool,
    duckdb_file: Path | None,
    memory_limit: str | None,
    skip_bad_parts: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Run SQL over the views of CAPTURE (a capture folder or Parquet file; several may be given).

    The last argument is the SQL, unless --views or --duckdb is given. Results stream in csv and
    json; the table stops after 1000 rows. See the views with --views.

    \b
    Example:
        ocpp-audit query captures/lab-faults "select charge_point_id, count(*) from messages group by all"
        ocpp-audit query captures/lab-faults "select * from calls where not answered" --format csv
        ocpp-audit query captures/lab-faults --views
        ocpp-audit query captures/lab-faults --duckdb lab.duckdb && duckdb lab.duckdb
    """
    if list_views:
        if duckdb_file is not None:
            raise click.UsageError("--views and --duckdb do not go together")
        for capture in args:
            if not Path(capture).exists() and not is_remote(capture):
                raise InputError(f"{capture}: no such file or folder")
        emit(views_text(), output)
        return

    if duckdb_file is not None:
        captures = local_captures(args)
        if not captures:
            raise click.UsageError("give the CAPTURE to define the views over")
        _open(captures, database=duckdb_file, skip_bad_parts=skip_bad_parts).close()
        click.echo(f"Wrote {duckdb_file}: views over {', '.join(map(str, captures))}", err=True)
        return

    if len(args) < 2:
        raise click.UsageError('give CAPTURE and "SQL" (or --views, or --duckdb FILE)')
    captures, sql = local_captures(args[:-1]), args[-1]
    con = _open(captures, memory_limit=memory_limit, skip_bad_parts=skip_bad_parts)
    try:
        try:
            relation = con.sql(sql)
        except duckdb.Error as error:
            raise InputError(f"SQL failed: {error_line(error)}") from None
        if relation is None:
            return
        columns = list(relation.columns)
        try:
            emit(QUERY_FORMATS[fmt](columns, relation), output)
        except duckdb.Error as error:
            raise InputError(f"SQL failed: {error_line(error)}") from None
    finally:
        con.close()


def _open(
    captures: Sequence[Path],
    database: str | Path = ":memory:",
    memory_limit: str | None = None,
    skip_bad_parts: bool = False,
) -> duckdb.DuckDBPyConnection:
    require_parts(captures, live=True)
    try:
        journals = read_open_journals(captures)  # a capture being recorded: what is not sealed yet
        if journals.files:
            click.echo(f"Capture being recorded: {journals.summary()}", err=True)
        if skip_bad_parts:
            parts, skipped = readable_parts(captures)
            for part in skipped:
                click.echo(f"Skipped {part}", err=True)
            captures = parts
        return open_capture(
            captures, database=database, memory_limit=memory_limit, journals=journals
        )
    except ValueError as error:  # a bad --memory-limit
        raise InputError(str(error)) from None
    except duckdb.Error as error:
        raise InputError(f"{database}: {error_line(error)}") from None
