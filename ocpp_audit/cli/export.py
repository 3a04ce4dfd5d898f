"""``ocpp-audit export``: a capture's frames written back out in the jsonl form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from ocpp_audit.cli.errors import InputError
from ocpp_audit.cli.output import emit, output_options
from ocpp_audit.cli.progress import Show, progress
from ocpp_audit.cli.selection import check_found, local_captures, require_parts

BATCH_ROWS = 10_000
# The forms a capture can be exported in (format name -> what it is).
EXPORT_FORMATS = {"jsonl": "one frame a line, as `import --format jsonl` reads it"}


@click.command("export")
@click.argument("capture", nargs=-1, required=True, type=click.Path())
@output_options(EXPORT_FORMATS, "jsonl")
@click.option("--charger", "chargers", multiple=True, help="Only this charger (repeatable).")
def export(
    capture: tuple[str, ...], fmt: str, chargers: tuple[str, ...], output: Path | None
) -> None:
    """Write a capture's WebSocket messages as jsonl, one frame a line, in time order.

    \b
    Fields: ts (ISO 8601 UTC), charge_point_id, direction, raw (raw_base64 for a binary frame),
    connection_id. `ocpp-audit import --format jsonl` reads it back into the same frames.
    Exit status 2 when there is nothing to export (no Parquet parts, no such --charger).

    \b
    Example:
      ocpp-audit export captures/demo --charger CP001 -o cp001.jsonl
    """
    import duckdb

    from ocpp_audit.capture.parts import check_part, error_line, frames_sql

    capture = tuple(local_captures(capture))
    parts = require_parts(capture)
    for part in parts:
        check_part(part)
    con = duckdb.connect()
    try:
        # Nothing to export is an input error, said before the output file is written.
        found = con.execute(
            f"SELECT DISTINCT charge_point_id FROM ({frames_sql(parts, chargers=chargers)}) "
            f"WHERE event = 'message' AND charge_point_id IS NOT NULL"
        ).fetchall()
        check_found(
            capture,
            parts,
            {charge_point_id for (charge_point_id,) in found},
            chargers=chargers,
            what="messages",
            messages_only=True,
        )
        relation = con.sql(
            f"SELECT epoch_us(ts) AS ts_us, charge_point_id, direction, raw, raw_binary, "
            f"connection_id, ocpp_version FROM ({frames_sql(parts, chargers=chargers)}) "
            f"WHERE event = 'message' ORDER BY ts, connection_id, seq"
        )
        with progress("exporting", unit="frames") as show:
            emit(_lines(relation, show), output)
    except duckdb.Error as error:
        raise InputError(f"{', '.join(map(str, capture))}: {error_line(error)}") from None
    finally:
        con.close()


def _lines(relation: object, show: Show) -> Iterator[str]:
    from ocpp_audit.importers.jsonl import export_line

    done = 0
    for batch in relation.to_arrow_reader(BATCH_ROWS):  # type: ignore[attr-defined]
        done += batch.num_rows
        show(done, None, "")
        chunk = []
        for row in batch.to_pylist():
            moment = datetime.fromtimestamp(row["ts_us"] // 1_000_000, UTC).replace(
                microsecond=row["ts_us"] % 1_000_000
            )
            chunk.append(
                export_line(
                    moment,
                    row["charge_point_id"],
                    row["direction"],
                    row["raw"],
                    row["raw_binary"],
                    row["connection_id"],
                    row["ocpp_version"],
                )
            )
        yield "".join(chunk)
