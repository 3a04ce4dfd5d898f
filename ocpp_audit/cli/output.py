"""Output options shared by the commands, so every command speaks the same formats and flags.

In the manner of sqlite-utils' ``output_options``: one decorator adds ``--format`` and ``--output``;
``emit`` writes text (or chunks of it) to the file or to standard output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class InputError(click.ClickException):
    """A bad input (unreadable capture, broken rule file): a one-line message and exit status 2.

    click's own ClickException exits with 1, which here means "a charger FAILed".
    """

    exit_code = 2


def output_options(formats: Sequence[str], default: str) -> Callable[[F], F]:
    """Add ``--format/-f`` (one of ``formats``) and ``--output/-o FILE`` to a command."""

    def decorator(function: F) -> F:
        function = click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, writable=True, path_type=Path),
            help="Write to FILE instead of standard output.",
        )(function)
        function = click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(list(formats)),
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
