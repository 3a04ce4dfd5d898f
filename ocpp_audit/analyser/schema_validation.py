"""Validation of payloads against the OCPP 1.6 JSON schemas shipped in the ``ocpp`` package.

DuckDB cannot validate JSON Schema, so this registers one vectorised (Arrow) function on a DuckDB
connection for the ``protocol-schema`` rule::

    ocpp_schema_error(action VARCHAR, message_type TINYINT, payload VARCHAR) -> VARCHAR

It returns NULL when the payload is valid (or there is nothing to validate: a CALLERROR, an answer
whose CALL is unknown), else a one-line reason. OCPP-J 1.6 section 4.1.3: a CALL payload is
validated against ``<Action>.json``, a CALLRESULT against ``<Action>Response.json`` of the CALL it
answers (the ``action`` the recorder resolved). Numbers are read as ``Decimal``, as the ``ocpp``
package does, so ``multipleOf`` constraints judge the number as written.
"""

from __future__ import annotations

import contextlib
import json
import logging
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

logger = logging.getLogger(__name__)

FUNCTION_NAME = "ocpp_schema_error"

# Small payloads repeat a lot (Heartbeat "{}", empty answers); their verdicts are cached.
_CACHE_MAX_ENTRIES = 20_000
_CACHE_MAX_PAYLOAD = 512


@cache
def _validator(schema_name: str) -> Any | None:
    """A Draft 4 validator for ``ocpp/v16/schemas/<schema_name>.json``; None if there is none."""
    from jsonschema import Draft4Validator

    resource = resources.files("ocpp.v16.schemas").joinpath(f"{schema_name}.json")
    if not resource.is_file():
        return None
    schema = json.loads(resource.read_text(encoding="utf-8"))
    return Draft4Validator(schema)


def schema_error(action: str | None, message_type: int | None, payload: str | None) -> str | None:
    """Why ``payload`` breaks the OCPP 1.6 schema of its action, or None when it is valid."""
    if message_type not in (2, 3) or not action or payload is None:
        return None
    schema_name = action if message_type == 2 else f"{action}Response"
    validator = _validator(schema_name)
    if validator is None:
        if message_type == 2:
            return f"{action} is not an OCPP 1.6 action"
        return None
    try:
        document = json.loads(payload, parse_float=Decimal)
    except ValueError as error:
        return f"{schema_name}: payload is not JSON ({error})"
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "payload"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{schema_name} {where}: {first.message}{more}"


def _schema_errors(actions: pa.Array, message_types: pa.Array, payloads: pa.Array) -> pa.Array:
    cache: dict[tuple[str | None, int | None, str], str | None] = {}
    out: list[str | None] = []
    for action, message_type, payload in zip(
        actions.to_pylist(), message_types.to_pylist(), payloads.to_pylist(), strict=True
    ):
        if payload is not None and len(payload) <= _CACHE_MAX_PAYLOAD:
            key = (action, message_type, payload)
            if key in cache:
                out.append(cache[key])
                continue
            verdict = schema_error(action, message_type, payload)
            if len(cache) < _CACHE_MAX_ENTRIES:
                cache[key] = verdict
            out.append(verdict)
        else:
            out.append(schema_error(action, message_type, payload))
    return pa.array(out, type=pa.string())


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Define ``ocpp_schema_error(action, message_type, payload)`` on ``con`` (idempotent)."""
    with contextlib.suppress(duckdb.InvalidInputException, duckdb.CatalogException):
        con.remove_function(FUNCTION_NAME)
    con.create_function(
        FUNCTION_NAME,
        _schema_errors,
        [duckdb.sqltypes.VARCHAR, duckdb.sqltypes.TINYINT, duckdb.sqltypes.VARCHAR],
        duckdb.sqltypes.VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
