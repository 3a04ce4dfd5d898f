"""One exit policy for every command: 0 all well, 1 a charger failed (or answers differ), 2 the rest.

Exit 2 means a usage or input error: a file that cannot be read or written, a charger or rule that
is not there, a service that cannot be reached. It is always :class:`InputError` (one line, naming
the file or the thing asked). The packages below the command line raise their own exceptions for
bad input; the click group (``ocpp_audit.cli.main``) turns those into ``InputError`` in one place,
so a command lets them through instead of catching each one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click


class InputError(click.ClickException):
    """A usage or input error: the one-line message ``Error: ...`` and exit status 2.

    click's own ClickException exits with 1, which here means "a charger FAILed".
    """

    exit_code = 2


# The exceptions that mean "bad input" in the packages below the command line, by module and name
# rather than imported: the group must not import DuckDB for `record`, and an exception whose
# module is not loaded cannot have been raised. CaptureError is named in both its homes (it moves
# from analyser/capture.py to capture/parts.py); a name that does not resolve is skipped.
INPUT_ERRORS: tuple[str, ...] = (
    "ocpp_audit.analyser.capture:CaptureError",
    "ocpp_audit.capture.parts:CaptureError",
    "ocpp_audit.analyser.rules:RuleError",
    "ocpp_audit.analyser.rules:ParamError",
    "ocpp_audit.analyser.baseline:BaselineError",
    "ocpp_audit.importers.common:ImportFileError",
)


def input_error_types() -> tuple[type[BaseException], ...]:
    """The classes of INPUT_ERRORS whose modules are loaded."""
    found: list[type[BaseException]] = []
    for target in INPUT_ERRORS:
        module_name, _, name = target.partition(":")
        cls = getattr(sys.modules.get(module_name), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def as_input_error(error: BaseException) -> InputError | None:
    """``error`` as an InputError when it is one of INPUT_ERRORS, else None."""
    if isinstance(error, input_error_types()):
        return InputError(one_line(str(error)) or type(error).__name__)
    return None


def one_line(text: str) -> str:
    """A message on one line (a multi-line message has its lines joined)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def names(paths: Sequence[Path | str]) -> str:
    """Paths for a message: ``a``, or ``a, b``."""
    return ", ".join(str(path) for path in paths)


def check_writable_file(path: Path, what: str = "") -> None:
    """Refuse, before any work, a FILE that cannot be written: its folder missing, or a folder.

    A missing folder is refused rather than made: a typo in it (or a run from the wrong folder)
    should not scatter reports into new folders, and ``> ci/report.json`` in a shell refuses too.
    Nothing is created here; the file is written only when the work succeeded.
    """
    label = f"{what} {path}" if what else str(path)
    if path.is_dir():
        raise InputError(f"{label}: is a folder, not a file")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{label}: cannot write: no folder {folder} (create it first)")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise InputError(f"{label}: cannot write: permission denied")


def writable_file_callback(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    """A click callback: ``check_writable_file`` on an option's value (None passes)."""
    if value is not None:
        check_writable_file(value, param.opts[-1] if param.opts else "")
    return value
