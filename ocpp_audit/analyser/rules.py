"""Rule files: a SELECT over the views, with a TOML header between ``/*+++`` and ``+++*/``.

::

    /*+++
    id = "boot-notification"
    title = "Boot notification"
    criterion = "Receive a (not empty) BootNotification ..."
    function = 1                 # omitted for protocol checks
    ocpp_versions = ["1.6"]      # the versions whose chargers it judges (default: 1.6 only)
    severity = "error"           # error | warning
    references = ["OCPP 1.6 section 4.2"]
    [params]
    max_gap_s = 30
    +++*/
    SELECT ...

The header is checked strictly (unknown keys, wrong types and duplicate ids are errors naming the
file), because a typo in a rule silently judging nothing is worse than a refusal.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

HEADER_OPEN = "/*+++"
HEADER_CLOSE = "+++*/"
SEVERITIES = ("error", "warning")
# The OCPP versions a rule may judge (a charger's version: its connections' negotiated subprotocol;
# a charger without one is judged as 1.6, as every capture was before versions were recorded).
OCPP_VERSIONS = ("1.6", "2.0.1", "2.1")
DEFAULT_OCPP_VERSIONS = ("1.6",)
FUNCTION_RANGE = range(1, 17)  # the acceptance script's functions 1..16

_REQUIRED = {"id": str, "title": str, "criterion": str, "severity": str}
_OPTIONAL = {"function", "references", "params", "ocpp_versions"}
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

ParamValue = str | int | float | bool


class RuleError(Exception):
    """A rule file that cannot be used; the message names the file."""


class ParamError(ValueError):
    """A --param override that no selected rule declares, or of the wrong type."""


@dataclass
class Rule:
    id: str
    title: str
    criterion: str
    function: int | None
    severity: str
    references: list[str]
    params: dict[str, object]
    sql: str
    path: Path
    defaults: dict[str, object] = field(default_factory=dict, repr=False)
    ocpp_versions: tuple[str, ...] = DEFAULT_OCPP_VERSIONS

    def judges(self, ocpp_version: str | None) -> bool:
        """Whether the rule judges a charger of this version (None: 1.6)."""
        return (ocpp_version or "1.6") in self.ocpp_versions

    def referenced_params(self) -> list[str]:
        """The declared params the SQL uses (``$name``), in declaration order."""
        used = _param_references(self.sql)
        return [name for name in self.params if name in used]

    def bound_params(self) -> dict[str, object]:
        """Named parameters to pass to DuckDB: only those the SQL uses."""
        return {name: self.params[name] for name in self.referenced_params()}


def _param_references(sql: str) -> set[str]:
    """The ``$name`` references in the SQL, outside comments and string literals."""
    return set(_PARAM_REFERENCE.findall(_strip_sql_comments(sql)))


def _strip_sql_comments(sql: str) -> str:
    """The SQL without comments and string literals, to find ``$name`` references in."""
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"--[^\n]*", " ", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _fail(path: Path, problem: str) -> RuleError:
    return RuleError(f"{path}: {problem}")


def parse_rule(text: str, path: Path) -> Rule:
    """Read one rule file's text; raises RuleError naming ``path``."""
    stripped = text.lstrip()
    if not stripped.startswith(HEADER_OPEN):
        raise _fail(path, f"does not start with a {HEADER_OPEN} ... {HEADER_CLOSE} header")
    end = stripped.find(HEADER_CLOSE)
    if end < 0:
        raise _fail(path, f"header is not closed with {HEADER_CLOSE}")
    header_text = stripped[len(HEADER_OPEN) : end]
    sql = stripped[end + len(HEADER_CLOSE) :].strip()
    try:
        header = tomllib.loads(header_text)
    except tomllib.TOMLDecodeError as error:
        raise _fail(path, f"header is not valid TOML: {error}") from None

    unknown = sorted(set(header) - set(_REQUIRED) - _OPTIONAL)
    if unknown:
        raise _fail(path, f"unknown header keys: {', '.join(unknown)}")
    for key, kind in _REQUIRED.items():
        if key not in header:
            raise _fail(path, f"header lacks the required key {key!r}")
        if not isinstance(header[key], kind) or not header[key].strip():
            raise _fail(path, f"{key!r} must be a non-empty string")
    rule_id = header["id"]
    if not _ID_PATTERN.match(rule_id):
        raise _fail(path, f"id {rule_id!r} must be lower-case letters, digits and '-'")
    severity = header["severity"]
    if severity not in SEVERITIES:
        raise _fail(path, f"severity {severity!r} must be one of {', '.join(SEVERITIES)}")

    function = header.get("function")
    if function is not None and (
        not isinstance(function, int)
        or isinstance(function, bool)
        or function not in FUNCTION_RANGE
    ):
        raise _fail(path, f"function {function!r} must be an integer from 1 to 16")

    versions = header.get("ocpp_versions", list(DEFAULT_OCPP_VERSIONS))
    if (
        not isinstance(versions, list)
        or not versions
        or not all(isinstance(v, str) and v in OCPP_VERSIONS for v in versions)
    ):
        raise _fail(path, f"ocpp_versions must be a non-empty list of {', '.join(OCPP_VERSIONS)}")

    references = header.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise _fail(path, "references must be a list of strings")

    params = header.get("params", {})
    if not isinstance(params, dict):
        raise _fail(path, "[params] must be a table")
    for name, value in params.items():
        if not _PARAM_NAME.match(name):
            raise _fail(path, f"param name {name!r} is not an identifier")
        if not isinstance(value, ParamValue):
            raise _fail(path, f"param {name!r} must be a string, integer, float or boolean")

    if not sql:
        raise _fail(path, "has no SQL after the header")
    undeclared = sorted(_param_references(sql) - set(params))
    if undeclared:
        raise _fail(path, f"SQL uses undeclared params: {', '.join('$' + n for n in undeclared)}")

    return Rule(
        id=rule_id,
        title=header["title"].strip(),
        criterion=" ".join(header["criterion"].split()),
        function=function,
        severity=severity,
        references=list(references),
        params=dict(params),
        sql=sql.rstrip().rstrip(";").rstrip(),
        path=path,
        defaults=dict(params),
        ocpp_versions=tuple(versions),
    )


def packaged_rules_dir() -> Path:
    """The folder of the rules shipped with ocpp-audit."""
    return Path(str(resources.files("ocpp_audit.rules")))


def load_rules(dirs: Sequence[Path] | None = None) -> list[Rule]:
    """Every ``*.sql`` rule in the folders (None: the packaged rules), in judging order.

    Order: functions 1..16, then protocol checks, each by id. Raises RuleError naming the file.
    """
    folders = [packaged_rules_dir()] if dirs is None else [Path(d) for d in dirs]
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            raise RuleError(f"{folder}: not a folder of rules")
        for path in sorted(folder.glob("*.sql")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise _fail(path, f"cannot be read: {error}") from None
            rule = parse_rule(text, path)
            if rule.id in seen:
                raise _fail(path, f"duplicate rule id {rule.id!r} (also in {seen[rule.id]})")
            seen[rule.id] = path
            rules.append(rule)
    return sort_rules(rules)


def function_titles(rules: Iterable[Rule] | None = None) -> dict[int, str]:
    """Function number -> its title without a trailing remark in brackets ("Clear cache (if
    applicable)" -> "Clear cache"), from the rules' headers (None: the packaged rules), so a
    function's name is written once, in its rule."""
    titles: dict[int, str] = {}
    for rule in load_rules() if rules is None else rules:
        if rule.function is not None and rule.function not in titles and rule.judges("1.6"):
            titles[rule.function] = re.sub(r"\s*\([^()]*\)$", "", rule.title) or rule.title
    return titles


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    """Functions 1..16 first, then protocol checks; ties by id."""
    return sorted(rules, key=lambda r: (r.function is None, r.function or 0, r.id))


def select_rules(
    rules: Sequence[Rule], select: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Rule]:
    """Keep the rules named in ``select`` (all when empty), minus ``exclude``.

    An id that names no rule is a ParamError, so a typo never silently judges nothing.
    """
    known = {rule.id for rule in rules}
    unknown = sorted({*select, *exclude} - known)
    if unknown:
        raise ParamError(
            f"no rule with id {', '.join(unknown)}; rule ids: {', '.join(sorted(known))}"
        )
    chosen = [r for r in rules if (not select or r.id in select) and r.id not in exclude]
    return chosen


def coerce_param(name: str, default: object, value: object) -> object:
    """``value`` in the type of ``default``; strings (from the command line) are parsed."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                lowered = text.lower()
                if lowered in ("true", "yes", "on", "1"):
                    return True
                if lowered in ("false", "no", "off", "0"):
                    return False
                raise ValueError(text)
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
        except ValueError:
            raise ParamError(
                f"param {name}={value!r}: expected {kind.__name__} like {default!r}"
            ) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ParamError(f"param {name}={value!r}: expected {kind.__name__} like {default!r}")
    return value


def apply_params(rules: Sequence[Rule], overrides: Mapping[str, object]) -> None:
    """Set each override on every rule that declares it, typed by the rule's default.

    A name that none of ``rules`` declares is a ParamError.
    """
    for name, value in overrides.items():
        declaring = [rule for rule in rules if name in rule.defaults]
        if not declaring:
            raise ParamError(f"param {name!r} is not declared by any selected rule")
        for rule in declaring:
            rule.params[name] = coerce_param(name, rule.defaults[name], value)


def parse_param_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """``["max_gap_s=30", ...]`` from the command line into a dict; raises ParamError."""
    overrides: dict[str, str] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip()
        if not sep or not _PARAM_NAME.match(name):
            raise ParamError(f"--param {assignment!r}: expected NAME=VALUE")
        overrides[name] = value
    return overrides
