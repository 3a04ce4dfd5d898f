"""``record --config FILE``: every ``record`` option in a TOML file, and ``--print-config``.

Keys are the options' long names without the dashes (``listen``, ``upstream``, ``capture``,
``rotate-seconds``, ``id-tag`` as a list, ...; ``rotate_seconds`` is read the same). Flags on the
command line win over the file, the file over the defaults. Secrets stay out of files: the control
token and the idTag key come from their environment variables (``OCPP_AUDIT_CONTROL_TOKEN``,
``OCPP_AUDIT_IDTAG_KEY``) or flags, and a file that holds one is refused.

Each value is checked with the option's own type when the file is read, so a mistake is one line
naming the file and the key: ``recorder.toml: rotate-seconds: 'soon' is not a valid float``.

Implemented with click's ``default_map``: the file's values become the command's defaults, which
is exactly "flags win".
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

SECRETS = frozenset({"control_token", "pseudonymise_key"})
# Options that are not configuration (they act on the file itself).
NOT_IN_FILE = frozenset({"config", "print_config", "help"})


def _key(param: click.Parameter) -> str:
    """The file's key of an option: its longest flag without the dashes."""
    flags = [opt for opt in param.opts if opt.startswith("--")]
    return max(flags, key=len)[2:] if flags else str(param.name)


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        _key(param): param
        for param in command.params
        if isinstance(param, click.Option) and param.name not in NOT_IN_FILE
    }


def load(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """The ``--config`` callback: read the file into ``ctx.default_map``."""
    if value is None:
        return None
    try:
        document = tomllib.loads(value.read_text(encoding="utf-8"))
    except OSError as error:
        raise click.BadParameter(f"{value}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"{value}: not TOML: {error}") from None
    options = _options(ctx.command)
    defaults: dict[str, Any] = {}
    for raw_key, item in document.items():
        key = raw_key.replace("_", "-")
        option = options.get(key)
        if option is None:
            known = ", ".join(sorted(options))
            raise click.BadParameter(f"{value}: unknown key {raw_key!r}; keys: {known}")
        if option.name in SECRETS:
            raise click.BadParameter(
                f"{value}: {raw_key!r} is a secret: give it in {option.envvar} instead of a file"
            )
        if option.multiple and not isinstance(item, list):
            item = [item]
        if isinstance(item, dict):
            raise click.BadParameter(f"{value}: {raw_key}: a table is not a value of this key")
        try:
            option.type_cast_value(ctx, item)
        except click.BadParameter as error:
            raise click.BadParameter(f"{value}: {raw_key}: {error.message}") from None
        defaults[str(option.name)] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def effective(ctx: click.Context) -> str:
    """The configuration in force (defaults, file, flags) as TOML, secrets masked."""
    lines = ["# ocpp-audit record: the configuration in force (flags > --config file > defaults)"]
    for key, option in sorted(_options(ctx.command).items()):
        name = str(option.name)
        current = ctx.params.get(name)
        if current is None or current == () or (current is False and option.is_flag):
            if option.is_flag and current is False:
                lines.append(f"{key} = false")
            else:
                lines.append(f"# {key} =  (not set)")
            continue
        if name in SECRETS:
            lines.append(f'{key} = "********"  # from the command line or {option.envvar}')
            continue
        lines.append(f"{key} = {_toml(current)}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string
