"""``ocpp-audit import``: logs people already have, turned into a capture."""

from __future__ import annotations

from pathlib import Path

import click

from ocpp_audit.cli.output import InputError


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(
        ["auto", "jsonl", "mitmproxy", "pcap", "steve", "ocpp-log", "evcc", "microocpp", "libocpp"]
    ),
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

    \b
    Formats: jsonl (ocpp-audit export's form), mitmproxy (flow files), pcap (pcap/pcapng of
    plaintext ws://), steve (SteVe's log), ocpp-log (the ocpp Python library's "receive message" /
    "send" log lines), evcc (evcc / ocpp-go), microocpp (MicroOcpp's console), libocpp (EVerest's
    message log).

    \b
    Example:
      ocpp-audit import steve.log --format steve --timezone Europe/Amsterdam --capture captures/steve
      ocpp-audit analyse captures/steve
    """
    from ocpp_audit.importers import ImportFileError, import_files

    for path in files:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    try:
        summary = import_files(
            files, fmt, capture_dir, chargers=chargers, timezone=timezone or None
        )
    except ImportFileError as error:
        raise InputError(str(error)) from None
    for line in summary.lines():
        click.echo(line)
    click.echo(f"capture: {capture_dir}")
