"""``ocpp-audit compare``: the primary's answers beside each mirror's, from a capture."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ocpp_audit.cli.errors import InputError
from ocpp_audit.cli.output import emit, output_options
from ocpp_audit.cli.selection import require_parts
from ocpp_audit.protocol.answers import parse_ignore


def _ignore(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for text in value:
        try:
            parse_ignore(text)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


@click.command()
@click.argument("capture", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    metavar="NAME",
    help="Compare only this mirror (repeatable; default: every mirror in the capture).",
)
@click.option(
    "--ignore",
    multiple=True,
    callback=_ignore,
    metavar="JSONPATH",
    help="Also ignore this answer field: $.a.b, $.list[*].c, $..anywhere (repeatable).",
)
@output_options(("table", "json", "junit"), "table")
def compare(
    capture: tuple[Path, ...],
    mirrors: tuple[str, ...],
    ignore: tuple[str, ...],
    output: Path | None,
    fmt: str,
) -> None:
    """Compare the primary's answers with each mirror's, in a capture recorded with --mirror.

    Every CALL a charger sent, the primary's answer beside each mirror's: differences listed field
    by field as `replay` lists them (currentTime and the carried transactionId ignored; --ignore
    adds more), latency per backend, and the CALLs a mirror never answered (or never got: dropped
    from a full queue, or the mirror was down).

    Exit status: 0 when every mirror answered every CALL as the primary did, 1 on differences,
    2 on usage or input errors (a capture without mirrors: nothing to compare).

    \b
    Example:
        ocpp-audit compare captures/site-a
        ocpp-audit compare captures/site-a --mirror new-platform \\
            --ignore '$.idTagInfo.expiryDate' --format junit --output compare.xml
    """
    from ocpp_audit.analyser.capture import open_capture
    from ocpp_audit.analyser.mirrors import NothingToCompare, render
    from ocpp_audit.analyser.mirrors import compare as run_compare

    require_parts(capture)
    con = open_capture(list(capture))
    try:
        comparison = run_compare(con, mirrors=mirrors, ignore=ignore)
    except NothingToCompare as error:
        raise InputError(f"{', '.join(str(c) for c in capture)}: {error}") from None
    finally:
        con.close()
    emit(render(comparison, fmt), output)
    if output is not None:
        click.echo(f"{comparison.differences} difference(s); report in {output}", err=True)
    sys.exit(1 if comparison.differences else 0)
