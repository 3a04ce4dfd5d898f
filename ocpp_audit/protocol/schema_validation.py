"""Validation of payloads against the OCPP JSON schemas shipped in the ``ocpp`` package, by version.

DuckDB cannot validate JSON Schema, so this registers one vectorised (Arrow) function on a DuckDB
connection for the ``protocol-schema`` rule::

    ocpp_schema_error(action VARCHAR, message_type TINYINT, payload VARCHAR,
                      ocpp_version VARCHAR) -> VARCHAR

It returns NULL when the payload is valid (or there is nothing to validate: a CALLERROR, an answer
whose CALL is unknown), else a one-line reason. The schemas are those of the connection's version
(``ocpp/v16``, ``ocpp/v201``, ``ocpp/v21``; a connection without a known version is read as 1.6, as
before versions were recorded). OCPP-J 1.6 section 4.1.3: a CALL payload is validated against
``<Action>.json``, a CALLRESULT against ``<Action>Response.json`` of the CALL it answers (the
``action`` the recorder resolved). OCPP 2.0.1 / 2.1 name the CALL's schema ``<Action>Request.json``;
a 2.1 SEND (message type 6) has ``<Action>.json``, with neither suffix. Numbers are read as
``Decimal``, as the ``ocpp`` package does, so ``multipleOf`` constraints judge the number as written.

Validating every payload in Python costs about 60 us each (10 M frames: 10 minutes), so the rule
validates one payload per *shape* and only re-validates the rows of failing shapes. It also registers
the SQL macro::

    ocpp_schema_key(action, message_type, payload, ocpp_version) -> VARCHAR

Two payloads with the same key are either both valid or both invalid against their schema: the key
is the payload with each digit 1-9 written as chr(1) (so every string keeps its length, every number
its zeros, sign, point and exponent: JSON grammar, integer-ness, ``maxLength`` and ``minItems`` judge
both alike), then chr(2), then the payload's runs of digits that follow a letter, as written and
joined by chr(3) (so enum values such as ``L1-N`` or ``SHA256`` stay exact: such runs sit at the same
places in two payloads whose digit-masked texts are equal; valid JSON text has no raw chr(1) to
chr(5), so the key reads back unambiguously). Nine replace() calls and one regexp_extract_all:
on 10 M frames the key is most of the rule's cost, and a regexp_replace of every digit (one RE2
match per digit) was 1.3 times dearer. A schema whose verdict could depend on other digits (numeric
bounds, ``multipleOf``, ``pattern``, ``uniqueItems``, an enum value or property name with other
digits) has the whole payload appended to its key, after chr(5).

A payload's verdict depends only on its own row (action, message type, payload, version), so the
writer judges each part's payloads once, as it seals the part (``payload_verdicts``), into the
capture's ``schema_error`` column ('' valid, else the reason), and the rule then only reads them.
Each part records which checker judged it (``checker_fingerprint``: this module's revision and the
versions of the ``ocpp`` schemas and the validators); an analysis trusts the column only when every
part was judged by the checker it would run itself, and otherwise judges on the fly as above.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from decimal import Decimal
from functools import cache
from importlib import metadata, resources
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)

FUNCTION_NAME = "ocpp_schema_error"
KEY_MACRO_NAME = "ocpp_schema_key"

# Small payloads repeat a lot (Heartbeat "{}", empty answers); their verdicts are cached.
_CACHE_MAX_ENTRIES = 20_000
_CACHE_MAX_PAYLOAD = 512

# Bump when a change here can change a verdict or its wording: parts judged by another revision
# are judged again at analysis time (see ``checker_fingerprint``).
CHECK_REVISION = "1"
# Shape keys already judged by ``payload_verdicts`` in this process (digest -> valid), across parts:
# a recorder seals a part every few minutes, and a fleet's shapes repeat from part to part.
_SEALED_SHAPES_MAX = 100_000  # (about 10 MB)
# Larger payloads (rare: a diagnostics DataTransfer, a huge configuration) are left to the analysis:
# their keys would be copied whole several times over in the seal thread of a recorder that is
# taking a fleet's traffic (tests/test_address_budget.py holds its memory flat).
SEAL_MAX_PAYLOAD_BYTES = 65_536
_sealed_shapes: dict[str, bool] = {}


# Keywords whose verdict may depend on the value of a digit, not only on where digits are.
_DIGIT_SENSITIVE = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "pattern",
        "patternProperties",
        "uniqueItems",
        "const",
        "not",
        "dependencies",
    }
)
# A digit is kept exact in the key only when its run of digits follows a letter (the regex the
# macro extracts); any other digit in an enum value or property name makes the schema exact-keyed.
_KEPT_DIGITS = re.compile(r"[A-Za-z][0-9]+")
_ANY_DIGIT = re.compile(r"[0-9]")


_PACKAGES = {"1.6": "ocpp.v16.schemas", "2.0.1": "ocpp.v201.schemas", "2.1": "ocpp.v21.schemas"}
VERSIONS = tuple(_PACKAGES)


def _version(version: str | None) -> str:
    """The schema set for a connection's version: 1.6 when none (captures before versions)."""
    return version if version in _PACKAGES else "1.6"


def schema_name(action: str, message_type: int | None, version: str | None = None) -> str:
    """The schema file (without .json) for a payload of ``action`` sent as ``message_type``."""
    if message_type == 3:
        return f"{action}Response"
    if _version(version) == "1.6" or message_type == 6:
        return action
    return f"{action}Request"


@cache
def schema_names(version: str | None = None) -> frozenset[str]:
    """The names of the version's schema files (``BootNotification``, ``BootNotificationResponse``,
    ...): the fixed table every action is looked up in. An action comes from the charger, so it is
    never joined into a path (``../../x`` would open any ``.json`` file)."""
    return frozenset(
        resource.name.removesuffix(".json")
        for resource in resources.files(_PACKAGES[_version(version)]).iterdir()
        if resource.name.endswith(".json")
    )


def _schema_file(schema_name: str, version: str | None = None, *, parse_float: Any = float) -> Any:
    if schema_name not in schema_names(version):
        return None
    package = _PACKAGES[_version(version)]
    resource = resources.files(package).joinpath(f"{schema_name}.json")
    return json.loads(resource.read_text(encoding="utf-8"), parse_float=parse_float)


@cache
def _validator(schema_name: str, version: str | None = None) -> Any | None:
    """A Draft 4 validator for ``ocpp/<version>/schemas/<schema_name>.json``; None if there is none.

    The 2.0.1 and 2.1 schemas declare draft-06 but use none of its additions (``const``,
    ``contains``, ``propertyNames``, numeric ``exclusiveMinimum``), so Draft 4 judges them alike, as
    the ``ocpp`` package itself does."""
    from jsonschema import Draft4Validator

    # Schema numbers as Decimal too (as the ocpp package loads them): ``multipleOf: 0.1`` against a
    # Decimal payload number would otherwise raise TypeError (Decimal / float).
    schema = _schema_file(schema_name, version, parse_float=Decimal)
    return None if schema is None else Draft4Validator(schema)


@cache
def _fast_validator(schema_name: str, version: str | None = None) -> Any | None:
    """A compiled (fastjsonschema) validator for the schema, used as a quick pass: a payload it
    accepts is valid; one it rejects goes to jsonschema, whose verdict and message are kept. None
    when fastjsonschema is not installed or cannot compile the schema."""
    try:
        import fastjsonschema
    except ImportError:
        return None
    schema = _schema_file(schema_name, version)
    if schema is None:
        return None
    try:
        # Draft 4 as jsonschema runs it here: no format checks, and the payload left as it is.
        return fastjsonschema.compile(
            schema, use_formats=False, use_default=False, detailed_exceptions=False
        )
    except Exception as error:
        logger.debug("fastjsonschema cannot compile %s: %s", schema_name, error)
        return None


def _digits_matter(text: str) -> bool:
    """Whether ``text`` has a digit that the shape key does not keep exact."""
    return bool(_ANY_DIGIT.search(_KEPT_DIGITS.sub("", text)))


def shape_keyed(schema: Any) -> bool:
    """Whether payloads of ``schema`` may be judged by their shape key (see the module doc)."""
    if isinstance(schema, list):
        return all(shape_keyed(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    for keyword, value in schema.items():
        if keyword in _DIGIT_SENSITIVE:
            return False
        if keyword == "enum" and any(
            not isinstance(item, str) or _digits_matter(item) for item in value
        ):
            return False
        if keyword in ("properties", "definitions") and isinstance(value, dict):
            if any(_digits_matter(name) for name in value):
                return False
            if not all(shape_keyed(sub) for sub in value.values()):
                return False
        elif (keyword == "required" and any(_digits_matter(name) for name in value)) or (
            isinstance(value, (dict, list)) and not shape_keyed(value)
        ):
            return False
    return True


@cache
def exact_keyed_schemas() -> tuple[str, ...]:
    """The schemas whose payloads are keyed by the whole payload, as ``<version>:<schema name>``."""
    return tuple(
        f"{version}:{name}"
        for version in VERSIONS
        for name in sorted(schema_names(version))
        if not shape_keyed(_schema_file(name, version))
    )


def _sql_in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})" if values else "false"


def exact_keyed_sql(action: str, message_type: str, known_version: str) -> str:
    """SQL: whether the payload's schema (``schema_name`` of the row) is exact-keyed, tested on the
    action itself per version and message type. Building each row's schema name to look it up
    cost a third of the key at 10 M frames; this is the same test turned around."""
    by_version: dict[str, list[str]] = {version: [] for version in VERSIONS}
    for entry in exact_keyed_schemas():
        version, _, name = entry.partition(":")
        by_version[version].append(name)

    def stripped(names: list[str], suffix: str) -> list[str]:
        return [name[: -len(suffix)] for name in names if name.endswith(suffix)]

    branches = []
    for version, names in by_version.items():
        result = _sql_in(action, stripped(names, "Response"))
        plain = _sql_in(action, names)
        if version == "1.6":  # schema_name: a CALL (or a SEND) has no suffix in 1.6
            test = f"CASE WHEN {message_type} = 3 THEN {result} ELSE {plain} END"
        else:
            request = _sql_in(action, stripped(names, "Request"))
            test = (
                f"CASE WHEN {message_type} = 3 THEN {result}"
                f" WHEN {message_type} = 6 THEN {plain} ELSE {request} END"
            )
        branches.append(f"WHEN '{version}' THEN {test}")
    return f"CASE {known_version} {' '.join(branches)} END"


def shape_key_sql(action: str, message_type: str, payload: str, version: str = "NULL") -> str:
    """SQL for the shape key of a payload (the body of the ``ocpp_schema_key`` macro)."""
    known = f"CASE WHEN {version} IN ('2.0.1', '2.1') THEN {version} ELSE '1.6' END"
    exact = exact_keyed_sql(action, message_type, known)
    digits = payload
    for digit in "123456789":
        digits = f"replace({digits}, '{digit}', chr(1))"
    kept = f"array_to_string(regexp_extract_all({payload}, '{_KEPT_DIGITS.pattern}'), chr(3))"
    # The version leads the key: one payload shape may be valid in one version, not in another.
    # An exact-keyed payload is appended whole after chr(5) (no other part of a key holds one): a
    # CASE choosing between the payload and the masked text copied every key once more (10 M
    # frames: 20 s -> 14 s for the key).
    return (
        f"{known} || chr(4) || {digits} || chr(2) || {kept}"
        f" || CASE WHEN {exact} THEN chr(5) || {payload} ELSE '' END"
    )


def schema_error(
    action: str | None,
    message_type: int | None,
    payload: str | None,
    version: str | None = None,
) -> str | None:
    """Why ``payload`` breaks the schema of its action in ``version`` (None: 1.6), or None when it
    is valid.

    Never raises: a payload the validators choke on (``1e999999999`` against ``multipleOf``) is a
    finding for its charger, not the end of the analysis for the fleet.
    """
    try:
        return _schema_error(action, message_type, payload, version)
    except Exception as error:  # one charger's payload must not stop every other's verdicts
        name = schema_name(action or "", message_type, version)
        return f"{name}: payload cannot be checked ({type(error).__name__}: {error})"


def _schema_error(
    action: str | None, message_type: int | None, payload: str | None, version: str | None
) -> str | None:
    if message_type not in (2, 3, 6) or not action or payload is None:
        return None
    version = _version(version)
    name = schema_name(action, message_type, version)
    validator = _validator(name, version)
    if validator is None:
        if message_type == 2:
            return f"{action} is not an OCPP {version} action"
        if message_type == 6:
            return f"{action} is not an OCPP {version} SEND message"
        return None
    schema_name_ = name
    try:
        document = json.loads(payload, parse_float=Decimal)
    except ValueError as error:
        return f"{schema_name_}: payload is not JSON ({error})"
    fast = _fast_validator(schema_name_, version)
    if fast is not None:
        try:
            fast(document)
            return None
        except Exception:
            pass  # jsonschema decides, and says why
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "payload"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{schema_name_} {where}: {first.message}{more}"


def _schema_errors(
    actions: pa.Array, message_types: pa.Array, payloads: pa.Array, versions: pa.Array
) -> pa.Array:
    cache: dict[tuple[str | None, int | None, str, str | None], str | None] = {}
    out: list[str | None] = []
    for action, message_type, payload, version in zip(
        actions.to_pylist(),
        message_types.to_pylist(),
        payloads.to_pylist(),
        versions.to_pylist(),
        strict=True,
    ):
        if payload is not None and len(payload) <= _CACHE_MAX_PAYLOAD:
            key = (action, message_type, payload, version)
            if key in cache:
                out.append(cache[key])
                continue
            verdict = schema_error(action, message_type, payload, version)
            if len(cache) < _CACHE_MAX_ENTRIES:
                cache[key] = verdict
            out.append(verdict)
        else:
            out.append(schema_error(action, message_type, payload, version))
    return pa.array(out, type=pa.string())


def _register_key_macro(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary macro ``ocpp_schema_key`` on ``con`` (each connection its own)."""
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO {KEY_MACRO_NAME}(action, message_type, payload,"
        " ocpp_version) AS " + shape_key_sql("action", "message_type", "payload", "ocpp_version")
    )


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Define ``ocpp_schema_error(action, message_type, payload, ocpp_version)`` and the temporary
    macro ``ocpp_schema_key(action, message_type, payload, ocpp_version)`` on ``con``
    (idempotent)."""
    _register_key_macro(con)
    with contextlib.suppress(duckdb.InvalidInputException, duckdb.CatalogException):
        con.remove_function(FUNCTION_NAME)
    con.create_function(
        FUNCTION_NAME,
        _schema_errors,
        [
            duckdb.sqltypes.VARCHAR,
            duckdb.sqltypes.TINYINT,
            duckdb.sqltypes.VARCHAR,
            duckdb.sqltypes.VARCHAR,
        ],
        duckdb.sqltypes.VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )


@cache
def checker_fingerprint() -> str:
    """Which checker a part's ``schema_error`` verdicts come from: this module's revision and the
    versions of the packages that hold the schemas (ocpp) and judge against them (jsonschema words
    the reason; fastjsonschema's pass is taken as valid)."""
    versions = []
    for package in ("ocpp", "jsonschema", "fastjsonschema"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} none")
    return f"check {CHECK_REVISION}; " + "; ".join(versions)


def payload_verdicts(rows: pa.Table) -> pa.Array:
    """Each row's schema verdict, as the protocol-schema rule would give it: '' for a valid
    payload, the reason for an invalid one, null for a row the rule does not judge and for a
    payload over ``SEAL_MAX_PAYLOAD_BYTES`` (the rule judges it at analysis time).

    ``rows`` has the capture's columns ``event``, ``message_type``, ``parse_error``, ``action``,
    ``payload`` and ``ocpp_version``. As in the rule, the payloads are grouped by shape key (in
    DuckDB, on one thread, without the GIL), one payload per new shape is validated in Python, and
    the rows of failing shapes are validated one by one, each with its own reason. Shapes judged
    before in this process are not validated again.
    """
    picked = rows.select(["message_type", "action", "payload", "ocpp_version"])
    # The rule's candidates (rules/protocol-schema.sql) up to the size bound; a null payload has
    # no length, so it is not judged either.
    judged = pc.fill_null(
        pc.and_(
            pc.and_(pc.equal(rows.column("event"), "message"), pc.is_null(rows["parse_error"])),
            pc.and_(
                pc.is_in(rows["message_type"], pa.array([2, 3, 6], pa.int8())),
                pc.and_(
                    pc.is_valid(rows["action"]),
                    pc.less_equal(pc.binary_length(rows["payload"]), SEAL_MAX_PAYLOAD_BYTES),
                ),
            ),
        ),
        False,
    ).combine_chunks()
    verdicts = pc.if_else(judged, "", pa.scalar(None, pa.string()))
    if not pc.any(judged).as_py():
        return verdicts
    invalid = _invalid_rows(picked.append_column("judged", judged))
    if not invalid:
        return verdicts
    reasons = [_row_error(row) or "" for row in picked.take(pa.array(invalid)).to_pylist()]
    replaced = np.zeros(rows.num_rows, dtype=bool)
    replaced[invalid] = True
    return pc.replace_with_mask(verdicts, pa.array(replaced), pa.array(reasons, pa.string()))


def prepare() -> None:
    """Do the checker's one-off work now (reading every version's schemas for the shape key, about
    0.4 s of Python; DuckDB's first query), so that ``payload_verdicts`` does not do it in a seal
    thread under load."""
    exact_keyed_schemas()
    checker_fingerprint()
    # The first DuckDB query of a process loads DuckDB's Python helpers (and pandas, when it is
    # installed): over half a second, under the GIL, if a seal thread did it with chargers online.
    heartbeat = {
        "event": ["message"],
        "message_type": pa.array([2], pa.int8()),
        "parse_error": pa.array([None], pa.string()),
        "action": ["Heartbeat"],
        "payload": ["{}"],
        "ocpp_version": ["1.6"],
    }
    payload_verdicts(pa.table(heartbeat))


_local = threading.local()
_database: duckdb.DuckDBPyConnection | None = None
_database_lock = threading.Lock()


def _seal_connection() -> duckdb.DuckDBPyConnection:
    """This thread's connection to the process's one sealing database (one DuckDB thread, 256 MB),
    kept for the process's life: a database opened per part grew the recorder by about a megabyte
    a seal, and one per thread would be set up again in the seal thread, under load, after
    ``prepare`` set one up at start."""
    global _database
    con = getattr(_local, "con", None)
    if con is None:
        with _database_lock:
            if _database is None:
                _database = duckdb.connect(config={"threads": 1, "memory_limit": "256MB"})
            con = _database.cursor()  # the same database; temp tables and macros its own
        # The key macro only: the seal validates in Python, and ocpp_schema_error is the
        # database's own (one registration per database, not per cursor).
        _register_key_macro(con)
        _local.con = con
    return con


def _invalid_rows(rows: pa.Table) -> list[int]:
    """The indices of the judged rows whose shape fails (see ``payload_verdicts``)."""
    # Only the judged rows reach DuckDB (a frame of megabytes is never copied into it).
    source = rows.append_column("idx", pa.array(np.arange(rows.num_rows, dtype=np.int64))).filter(
        rows["judged"]
    )
    con = _seal_connection()
    try:
        con.register("part_rows", source)
        # As the rule: one verdict per action, message type and shape key.
        con.execute(
            "CREATE TEMP TABLE keyed AS SELECT idx, action, message_type, ocpp_schema_key(action,"
            " message_type, payload, ocpp_version) AS shape FROM part_rows"
        )
        # Only a digest of each group comes back to Python: fetching the keys themselves held the
        # GIL for 55 ms per 60,000 frames (the event loop of a recorder stalls as long).
        con.execute(
            "CREATE TEMP TABLE shapes AS SELECT action, message_type, shape, min(idx) AS sample,"
            " md5(length(action)::VARCHAR || ':' || action || message_type::VARCHAR || ':'"
            " || shape) AS digest FROM keyed GROUP BY action, message_type, shape"
        )
        failing: list[str] = []
        unseen: list[tuple[str, int]] = []
        for digest, sample in con.execute("SELECT digest, sample FROM shapes").fetchall():
            valid = _sealed_shapes.get(digest)
            if valid is None:
                unseen.append((digest, sample))
            elif not valid:
                failing.append(digest)
        # New shapes, one payload each, in slices: one to_pylist of thousands of rows would hold
        # the GIL for tens of milliseconds.
        for start in range(0, len(unseen), 256):
            batch = unseen[start : start + 256]
            samples = rows.take(pa.array([sample for _, sample in batch], pa.int64()))
            for (digest, _), row in zip(batch, samples.to_pylist(), strict=True):
                valid = _row_error(row) is None
                if len(_sealed_shapes) >= _SEALED_SHAPES_MAX:
                    _sealed_shapes.clear()
                _sealed_shapes[digest] = valid
                if not valid:
                    failing.append(digest)
        if not failing:
            return []
        con.register("failing_shapes", pa.table({"digest": pa.array(failing, pa.string())}))
        found = con.execute(
            "SELECT idx FROM keyed SEMI JOIN (SELECT action, message_type, shape FROM shapes"
            " SEMI JOIN failing_shapes USING (digest)) f USING (action, message_type, shape)"
            " ORDER BY idx"
        ).fetchall()
        return [idx for (idx,) in found]
    finally:
        con.execute("DROP TABLE IF EXISTS keyed")
        con.execute("DROP TABLE IF EXISTS shapes")
        con.unregister("part_rows")
        con.unregister("failing_shapes")


def _row_error(row: dict[str, Any]) -> str | None:
    return schema_error(row["action"], row["message_type"], row["payload"], row["ocpp_version"])
