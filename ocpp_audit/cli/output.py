"""Output options shared by the commands, so every command speaks the same formats and flags.

In the manner of sqlite-utils' ``output_options``: one decorator adds ``--format`` and ``--output``;
``emit`` writes text (or chunks of it) to the file or to standard output. ``InputError`` lives in
``ocpp_audit.cli.errors`` and is imported here too, for the commands that import it from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ocpp_audit.cli.errors import InputError, writable_file_callback

F = TypeVar("F", bound=Callable[..., Any])


def output_options(
    formats: Iterable[str],
    default: str,
    *,
    output_flags: Sequence[str] = ("-o", "--output"),
    output_help: str = "Write to FILE instead of standard output.",
) -> Callable[[F], F]:
    """Add ``--format/-f`` (one of ``formats``, a registry's names) and ``--output/-o FILE``.

    The option's value is the parameter ``output`` (``output_flags`` may add a command's own
    spelling, such as ``--report``). Its folder is checked before the command does any work.
    """
    choices = list(formats)

    def decorator(function: F) -> F:
        function = click.option(
            *output_flags,
            "output",
            type=click.Path(dir_okay=False, writable=True, path_type=Path),
            callback=writable_file_callback,
            metavar="FILE",
            help=output_help,
        )(function)
        function = click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(choices),
            default=default,
            show_default=True,
            help="Output format.",
        )(function)
        return function

    return decorator


def emit(text: str | Iterable[str], output: Path | None) -> None:
    """Write ``text`` (a string, or chunks) to ``output``, or to standard output when None."""
    chunks = [text] if isinstance(text, str) else text
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as stream:
            for chunk in chunks:
                stream.write(chunk)
    except OSError as error:
        raise InputError(f"{output}: cannot write: {error.strerror or error}") from None
