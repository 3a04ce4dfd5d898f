"""Progress of a long job on stderr, drawn by rich, and only when stderr is a terminal.

``analyse`` on millions of frames, ``import`` of a large log, ``export`` and ``replay`` take tens of
seconds; a person at a terminal sees what is happening, a pipe or a CI log gets nothing extra
(standard output is never touched, so ``| tail -1`` and ``> report.json`` stay clean)::

    with progress("judging", unit="rules") as show:
        analyse(paths, progress=show)     # the engine calls show(done, total, note)

``show(done, total, note)`` sets the position (a count of rules, frames, chargers), the total when
it is known (``None``: a counter without a bar) and a note (the rule, the file).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

Show = Callable[[int, "int | None", str], None]


def _noop(done: int, total: int | None = None, note: str = "") -> None:
    return None


def shown() -> bool:
    """Draw progress: stderr is a terminal (``OCPP_AUDIT_PROGRESS=0`` turns it off, ``=1`` forces
    it, for tests)."""
    forced = os.environ.get("OCPP_AUDIT_PROGRESS")
    if forced is not None:
        return forced == "1"
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(label: str, unit: str = "") -> Iterator[Show]:
    """A progress line on stderr for the ``with`` block; a function that does nothing when not
    ``shown()``."""
    if not shown():
        yield _noop
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", markup=False),
    ]
    forced = os.environ.get("OCPP_AUDIT_PROGRESS") == "1"
    console = Console(file=sys.stderr, force_terminal=True if forced else None)
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None, note="")

        def show(done: int, total: int | None = None, note: str = "") -> None:
            bar.update(task, completed=done, total=total, note=note)

        yield show
