"""Option values several commands parse the same way."""

from __future__ import annotations

import click


def basic_auth(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, str] | None:
    """A click callback: ``USER:PASS`` -> (user, password) for HTTP Basic auth, None when absent.

    The password may contain colons; the user name may not (RFC 7617 section 2).
    """
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user:
        raise click.BadParameter("expected USER:PASS")
    return user, password
