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

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONTROL_URL = "http://127.0.0.1:9001"


class ControlOptionError(click.ClickException):
    """No usable token: a one-line message and exit status 2 (a usage error)."""

    exit_code = 2


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
            raise ControlOptionError(f"cannot read the token file: {exc}") from exc
        if not text:
            raise ControlOptionError(f"the token file {token_file} is empty")
        return text
    raise ControlOptionError(
        "give --token or --token-file (`record --control` prints where its token file is)"
    )
