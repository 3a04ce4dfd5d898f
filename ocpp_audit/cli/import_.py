"""``ocpp-audit import``: logs people already have, turned into a capture."""

from __future__ import annotations

from pathlib import Path

import click

from ocpp_audit.cli.errors import InputError, names
from ocpp_audit.cli.progress import progress
from ocpp_audit.importers import FORMATS, ImportSummary, import_files

REASONS_SHOWN = 3  # skip reasons named in the one-line error of an import of nothing


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="What the files are (auto: each file's format from its first lines).",
)
@click.option(
    "--capture",
    "capture_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Capture folder to write into (made if missing).",
)
@click.option(
    "--charger",
    "chargers",
    multiple=True,
    help="Import only this charger (repeatable); for a log without charger ids, the one it is about.",
)
@click.option(
    "--timezone",
    help="Zone of timestamps written without one, e.g. Europe/Amsterdam (default UTC).",
)
def import_(
    files: tuple[Path, ...],
    fmt: str,
    capture_dir: Path,
    chargers: tuple[str, ...],
    timezone: str | None,
) -> None:
    """Turn existing logs into a capture; every line not imported is counted with its reason.

    --format auto (the default) reads each file's format from its first lines.

    \b
    Example:
      ocpp-audit import steve.log --format steve --timezone Europe/Amsterdam --capture captures/steve
      ocpp-audit analyse captures/steve
    """
    for path in files:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    with progress("importing", unit="frames") as show:
        summary = import_files(
            files, fmt, capture_dir, chargers=chargers, timezone=timezone or None, progress=show
        )
    for line in summary.lines():
        click.echo(line)
    if not summary.frames:
        raise InputError(nothing_imported(files, summary, capture_dir))
    click.echo(f"capture: {capture_dir}")


def nothing_imported(files: tuple[Path, ...], summary: ImportSummary, capture_dir: Path) -> str:
    """The one line for an import of no frame: the main reasons, and what was written."""
    reasons = sorted(summary.skipped.items(), key=lambda item: (-item[1], item[0]))
    said = "; ".join(f"{reason} ({count})" for reason, count in reasons[:REASONS_SHOWN])
    if len(reasons) > REASONS_SHOWN:
        said += f"; {len(reasons) - REASONS_SHOWN} more reasons above"
    why = f"skipped: {said}" if said else "no lines in them"
    written = (
        f"only {summary.rows} connection rows written to {capture_dir}"
        if summary.rows
        else f"{capture_dir} not written"
    )
    return f"no frames imported from {names(files)} ({why}); {written}"
