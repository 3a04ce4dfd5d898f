"""``ocpp-audit prune``: remove the sealed parts of days older than a limit."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ocpp_audit.cli.errors import InputError


def parse_age(value: str) -> int:
    """``30d`` or ``30`` -> 30 days."""
    found = re.fullmatch(r"\s*(\d+)\s*d?\s*", value)
    if found is None:
        raise click.BadParameter(f"expected a number of days such as 30d, got {value!r}")
    return int(found[1])


@click.command()
@click.argument("capture", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    callback=lambda ctx, param, value: parse_age(value),
    help="Remove the days whose whole date (UTC) is older than AGE (such as 30d).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune(capture: Path, older_than: int, dry_run: bool) -> None:
    """Remove CAPTURE's sealed parts of days older than --older-than.

    Whole days go (frames/date=YYYY-MM-DD/, by the UTC date the rows were recorded); the journal
    being written, uploads and anything outside frames/ are never touched. `record --retain-days N`
    does the same every hour while it records.

    \b
    Example:
      ocpp-audit prune captures/site-a --older-than 90d --dry-run
    """
    from ocpp_audit.capture.retention import prune as run_prune

    if not (capture / "frames").is_dir():
        raise InputError(f"no frames/ folder under {capture}: not a capture")
    removed = run_prune(capture, older_than, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for day in removed:
        click.echo(f"{verb} {day.folder} ({day.parts} part(s), {day.bytes} bytes)")
    total = sum(day.parts for day in removed)
    click.echo(f"{verb} {len(removed)} day(s), {total} part(s) older than {older_than} days")
