"""``ocpp-audit export``: a capture's frames written back out in the jsonl form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from ocpp_audit.cli.output import InputError, emit

BATCH_ROWS = 10_000


@click.command("export")
@click.argument("capture", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True
)
@click.option("--charger", "chargers", multiple=True, help="Only this charger (repeatable).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output.",
)
def export(
    capture: tuple[Path, ...], fmt: str, chargers: tuple[str, ...], output: Path | None
) -> None:
    """Write a capture's WebSocket messages as jsonl, one frame a line, in time order.

    \b
    Fields: ts (ISO 8601 UTC), charge_point_id, direction, raw (raw_base64 for a binary frame),
    connection_id. `ocpp-audit import --format jsonl` reads it back into the same frames.

    \b
    Example:
      ocpp-audit export captures/demo --charger CP001 -o cp001.jsonl
    """
    import duckdb

    from ocpp_audit.analyser.capture import (
        CaptureError,
        check_part,
        error_line,
        find_parts,
        frames_sql,
    )

    try:
        parts = find_parts(capture)
        for part in parts:
            check_part(part)
    except CaptureError as error:
        raise InputError(str(error)) from None
    con = duckdb.connect()
    try:
        relation = con.sql(
            f"SELECT epoch_us(ts) AS ts_us, charge_point_id, direction, raw, raw_binary, "
            f"connection_id FROM ({frames_sql(parts, chargers=chargers)}) "
            f"WHERE event = 'message' ORDER BY ts, connection_id, seq"
        )
        emit(_lines(relation), output)
    except duckdb.Error as error:
        raise InputError(f"{', '.join(map(str, capture))}: {error_line(error)}") from None
    finally:
        con.close()


def _lines(relation: object) -> Iterator[str]:
    from ocpp_audit.importers.jsonl import export_line

    for batch in relation.to_arrow_reader(BATCH_ROWS):  # type: ignore[attr-defined]
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
                )
            )
        yield "".join(chunk)
