"""The analysts' stable SQL surface: DuckDB views over the ``frames`` view of a capture.

Every view is plain SQL over ``frames``, the primary backend's rows (``mirror_answers`` also reads
``all_frames``, which keeps the mirrors' rows): no Python functions, literal parameters only, so the views
also work in a DuckDB file opened by another program, and stay streaming over captures of millions of
frames: JSON is read with DuckDB's JSON functions, lists with ``unnest``, pairs with window functions.

Each view is a file ``views/<name>.sql``, a SELECT under a TOML header like a rule's::

    /*+++
    name = "boots"
    description = "BootNotification requests ..."
    [columns]                      # in the SELECT's order, each with its one-line meaning
    charge_point_id = "the charger"
    [params]                       # $name in the SQL, overridable with --param NAME=VALUE
    late_after_s = 60.0
    +++*/
    SELECT ...

This module loads them: ``VIEWS`` documents each view column by column (``ocpp-audit query --views``
and the README print it), and ``create_views`` creates them on a connection.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import duckdb

logger = logging.getLogger(__name__)

HEADER_OPEN = "/*+++"
HEADER_CLOSE = "+++*/"

# In dependency order: each view reads only ``frames`` (``all_frames``) and the views before it.
VIEW_NAMES = (
    "messages",
    "calls",
    "mirror_answers",
    "connections",
    "boots",
    "status_notifications",
    "meter_samples",
    "transactions",
    "configuration",
    "firmware_status",
    "diagnostics_status",
    # OCPP 2.0.1 and 2.1 (each reads the views above and filters on ocpp_version)
    "transaction_events",
    "notify_reports",
    "device_variables",
    "notify_events",
    "log_status",
)


@dataclass(frozen=True)
class View:
    name: str
    description: str
    columns: tuple[tuple[str, str], ...]  # (column name, one-line meaning)
    sql: str
    params: tuple[tuple[str, float], ...] = ()  # (name, default) of each $name in the SQL


def parse_view(text: str, source: str) -> View:
    """A view from its file's text; raises ValueError naming ``source`` when it is malformed."""
    stripped = text.lstrip()
    end = stripped.find(HEADER_CLOSE)
    if not stripped.startswith(HEADER_OPEN) or end < 0:
        raise ValueError(f"{source}: does not start with a {HEADER_OPEN} ... {HEADER_CLOSE} header")
    try:
        header = tomllib.loads(stripped[len(HEADER_OPEN) : end])
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{source}: header is not valid TOML: {error}") from None
    unknown = sorted(set(header) - {"name", "description", "columns", "params"})
    if unknown:
        raise ValueError(f"{source}: unknown header keys: {', '.join(unknown)}")
    columns = header.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ValueError(f"{source}: header lacks its [columns]")
    params = header.get("params", {})
    return View(
        name=header["name"],
        description=header["description"],
        columns=tuple((str(name), str(meaning)) for name, meaning in columns.items()),
        sql=stripped[end + len(HEADER_CLOSE) :].strip(),
        params=tuple((str(name), float(value)) for name, value in params.items()),
    )


def load_views() -> tuple[View, ...]:
    """Every view shipped in ``views/``, in dependency order (``VIEW_NAMES``)."""
    folder = resources.files("ocpp_audit.analyser").joinpath("views")
    shipped = sorted(
        entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    if shipped != sorted(VIEW_NAMES):
        raise ValueError(f"views/ holds {shipped}, VIEW_NAMES lists {sorted(VIEW_NAMES)}")
    loaded = []
    for name in VIEW_NAMES:
        source = f"views/{name}.sql"
        view = parse_view(folder.joinpath(f"{name}.sql").read_text(encoding="utf-8"), source)
        if view.name != name:
            raise ValueError(f"{source}: names the view {view.name!r}")
        loaded.append(view)
    return tuple(loaded)


VIEWS: tuple[View, ...] = load_views()

# View parameters and their defaults (overridable with --param NAME=VALUE), from the views' headers.
DEFAULT_PARAMS: dict[str, float] = {name: value for view in VIEWS for name, value in view.params}


def view_params(params: Mapping[str, object] | None = None) -> dict[str, float]:
    """The view parameters: defaults, overridden by the known names in ``params``."""
    values = dict(DEFAULT_PARAMS)
    for name, value in (params or {}).items():
        if name not in values:
            continue  # a rule's parameter, not a view's
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"view parameter {name} must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"view parameter {name} must be a finite number, not {value!r}")
        values[name] = number
    return values


def view_sql(view: View, params: Mapping[str, object] | None = None) -> str:
    """The view's SELECT with its parameters written in as literals (so a stored view keeps them)."""
    sql = view.sql
    for name, value in view_params(params).items():
        sql = sql.replace(f"${name}", repr(float(value)))
    return sql


def create_views(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, object] | None = None
) -> None:
    """Create every view of ``VIEWS`` on ``con``, which must already have the ``all_frames`` and
    ``frames`` views."""
    for view in VIEWS:
        logger.debug("creating view %s", view.name)
        con.execute(f"CREATE OR REPLACE VIEW {view.name} AS {view_sql(view, params)}")
    # The protocol-schema rule calls ocpp_schema_error(); DuckDB cannot validate JSON Schema itself.
    # No view uses it, so views stored in a DuckDB file stay plain SQL.
    try:
        from ocpp_audit.protocol import schema_validation

        schema_validation.register(con)
    except (ImportError, duckdb.Error) as error:
        logger.warning("schema validation unavailable (protocol-schema cannot run): %s", error)
