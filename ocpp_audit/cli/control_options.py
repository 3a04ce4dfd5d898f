"""The options that reach a recorder's control API, shared by ``inject`` and ``acceptance``.

One decorator adds ``--control URL``, ``--token`` and ``--token-file``; :func:`control_url` and
:func:`read_token` turn them into the ``ControlClient``'s base URL and bearer token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ocpp_audit.cli.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONTROL_URL = "http://127.0.0.1:9001"


def control_options(function: F) -> F:
    """Add ``--control`` (also OCPP_AUDIT_CONTROL), ``--token`` and ``--token-file`` to a command."""
    function = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File holding the token (the one `record --control` writes, <capture>/control-token).",
    )(function)
    function = click.option(
        "--token",
        envvar="OCPP_AUDIT_CONTROL_TOKEN",
        help="Bearer token of the control API (also OCPP_AUDIT_CONTROL_TOKEN).",
    )(function)
    function = click.option(
        "--control",
        "control",
        default=lambda: os.environ.get("OCPP_AUDIT_CONTROL", DEFAULT_CONTROL_URL),
        show_default=DEFAULT_CONTROL_URL,
        metavar="URL",
        help="The recorder's control API (also OCPP_AUDIT_CONTROL); a bare port means 127.0.0.1.",
    )(function)
    return function


def control_url(value: str) -> str:
    """``http://host:port``, ``host:port`` or a bare port -> the API's base URL."""
    if value.isdigit():
        return f"http://127.0.0.1:{value}"
    if "://" not in value:
        return f"http://{value}"
    return value.rstrip("/")


def read_token(token: str | None, token_file: Path | None) -> str:
    """The bearer token: ``--token``, else the text of ``--token-file``; else exit 2."""
    if token:
        return token
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(
                f"{token_file}: cannot read the token file: {exc.strerror or exc}"
            ) from None
        if not text:
            raise InputError(f"the token file {token_file} is empty")
        return text
    raise InputError(
        "give --token or --token-file (`record --control` prints where its token file is)"
    )


def unreachable(what: str, url: str, error: OSError) -> InputError:
    """The exit-2 error for an API that cannot be reached: it names the URL and why."""
    cause = getattr(error, "os_error", None) or error  # aiohttp wraps the socket's error
    code = getattr(cause, "errno", None)
    reason = os.strerror(code) if isinstance(code, int) else str(cause) or type(cause).__name__
    return InputError(f"cannot reach {what} at {url}: {reason}")
