"""Run rules over a capture and fold their findings into one verdict per charger and rule.

A rule returns one row per finding (``charge_point_id``, ``check``, ``verdict``, ``detail``,
``evidence``). Folding, per charger and rule: any ``fail`` makes it FAIL; else any ``pass`` makes it
PASS; else NOT_OBSERVED (the capture shows nothing either way, as for a Reset the backend never sent).
``note`` findings ride along as notes. Findings stay in DuckDB until folded; only a bounded number per
charger and rule comes into Python for the report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.model import (  # noqa: F401  (re-exported: callers import them from here)
    FAIL,
    FINDING_VERDICTS,
    FORMAT_VERSION,
    NOT_OBSERVED,
    PASS,
    ChargerReport,
    Finding,
    Report,
    RuleResult,
    fold,
)
from ocpp_audit.analyser.rules import (
    Rule,
    RuleError,
    apply_params,
    coerce_param,
    load_rules,
    select_rules,
)
from ocpp_audit.capture.live import read_open_journals
from ocpp_audit.capture.parts import SkippedPart, error_line, find_parts, readable_parts

logger = logging.getLogger(__name__)

# progress(done, total, note): how far a long analysis is, for a progress display.
Progress = Callable[[int, int, str], None]

REQUIRED_COLUMNS = ("charge_point_id", "check", "verdict", "detail", "evidence")

# Findings and evidence kept per charger and rule in the report; the capture holds the rest.
MAX_FINDINGS = 100
MAX_EVIDENCE = 20
# Views that several rules read, computed once per analysis (see materialize_views) when a selected
# rule reads them; in dependency order (transactions reads calls). meter_samples (read by 2 rules)
# and transactions (5 rules) joined calls: 1.06M frames, suite 9.7 s -> 7.8 s, same verdicts.
# status_notifications (9 rules, a JSON parse and a window each time) and connections (4 rules, a
# group-by over frames): 10.6M frames, suite 104 s -> 67 s (meter-values 16 s -> 6 s).
MATERIALIZED_VIEWS = (
    "calls",
    "connections",
    "status_notifications",
    "meter_samples",
    "transactions",
)

# DuckDB's memory cap when the caller gives none: DuckDB's own default is 80% of the machine's memory,
# which a 10 M-frame suite fills (6.2 GB peak); under 3 GB it spills instead (3.4 GB peak RSS).
DEFAULT_MEMORY_LIMIT_BYTES = 3 * 1000**3


def default_memory_limit() -> str:
    """The smaller of 3 GB and DuckDB's own default (80% of physical memory), as DuckDB text."""
    limit = DEFAULT_MEMORY_LIMIT_BYTES
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        limit = min(limit, int(physical * 0.8))
    except (ValueError, OSError, AttributeError):  # no sysconf figures: keep 3 GB
        pass
    return f"{limit // 1000**2}MB"


_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Which findings a capped report keeps first: the ones that decide the verdict.
_VERDICT_RANK = "CASE verdict WHEN 'fail' THEN 0 WHEN 'note' THEN 1 WHEN 'pass' THEN 2 ELSE 3 END"
# ... then in time order, so that a report is the same from run to run.
_FINDING_ORDER = f'{_VERDICT_RANK}, evidence[1].ts NULLS LAST, "check", detail'


def _rule_error(rule: Rule, problem: str) -> RuleError:
    return RuleError(f"{rule.path}: {problem}")


def _raise_missing_columns(
    con: duckdb.DuckDBPyConnection, rule: Rule, params: Mapping[str, object]
) -> None:
    """RuleError when the rule's SQL fails on its own or its result lacks a required column."""
    try:
        columns = [name.lower() for name in con.sql(rule.sql, params=params).columns]
    except duckdb.Error as error:
        raise _rule_error(rule, f"SQL failed: {error_line(error)}") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise _rule_error(rule, f"result lacks columns {', '.join(missing)}")


def run_rule(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    charge_point_ids: Sequence[str],
    *,
    other_versions: Collection[str] = (),
) -> dict[str, RuleResult]:
    """Run one rule and fold its findings per charger; raises RuleError naming the rule's file.

    Findings for ``other_versions`` (chargers of an OCPP version the rule does not judge) are
    dropped without a word."""
    params = rule.bound_params()
    wrapped = (
        "SELECT CAST(charge_point_id AS VARCHAR) AS charge_point_id,"
        ' CAST("check" AS VARCHAR) AS "check", CAST(verdict AS VARCHAR) AS verdict,'
        " CAST(detail AS VARCHAR) AS detail,"
        " CAST(evidence AS STRUCT(ts TIMESTAMPTZ, unique_id VARCHAR)[]) AS evidence"
        f" FROM (\n{rule.sql}\n) AS finding"
    )
    try:
        # The rule is planned once, here. Only when that fails is it bound on its own, to say
        # which of its columns are missing (planning is most of a rule's time on a small capture).
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE rule_findings AS {wrapped}", params)
        except duckdb.Error as error:
            _raise_missing_columns(con, rule, params)
            raise _rule_error(rule, f"SQL failed: {error_line(error)}") from None
        counts = con.execute(
            "SELECT charge_point_id, list(DISTINCT verdict), count(*), bool_or(verdict IS NULL)"
            " FROM rule_findings GROUP BY charge_point_id"
        ).fetchall()
        bad = sorted(
            {repr(v) for _, verdicts, _, _ in counts for v in verdicts if v not in FINDING_VERDICTS}
            | ({"None"} if any(has_null for *_, has_null in counts) else set())
        )
        if bad:
            shown = ", ".join(bad[:3])
            raise _rule_error(rule, f"verdict {shown} is not one of {', '.join(FINDING_VERDICTS)}")
        rows = con.execute(
            f"""SELECT charge_point_id, "check", verdict, detail,
                   [{{'ts': strftime(e.ts, '{_TS_FORMAT}'), 'unique_id': e.unique_id}}
                    for e in coalesce(evidence, [])[1:{MAX_EVIDENCE}]]
               FROM rule_findings
               QUALIFY row_number() OVER (
                   PARTITION BY charge_point_id ORDER BY {_FINDING_ORDER}) <= {MAX_FINDINGS}
               ORDER BY charge_point_id, {_FINDING_ORDER}"""
        ).fetchall()
    except duckdb.Error as error:
        raise _rule_error(rule, f"SQL failed: {error_line(error)}") from None
    finally:
        con.execute("DROP TABLE IF EXISTS rule_findings")

    judged = set(charge_point_ids)
    results: dict[str, RuleResult] = {}
    for charge_point_id, verdicts, count, _ in counts:
        if charge_point_id in other_versions:
            continue
        if charge_point_id not in judged:
            logger.warning(
                "%s: %d findings for %r, which is not a judged charger; ignored",
                rule.path.name,
                count,
                charge_point_id,
            )
            continue
        results[charge_point_id] = RuleResult(
            rule, fold(verdicts), omitted_findings=max(0, count - MAX_FINDINGS)
        )
    for charge_point_id, check, verdict, detail, evidence in rows:
        result = results.get(charge_point_id)
        if result is None:
            continue
        result.findings.append(Finding(check, verdict, detail, list(evidence)))
        if verdict == "note":
            result.notes.append(detail if detail is not None else (check or "note"))
    for charge_point_id in charge_point_ids:
        results.setdefault(charge_point_id, RuleResult(rule, NOT_OBSERVED))
    return results


def materialize_views(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """Compute the named views once into temporary tables that the views then read.

    Many rules read ``calls`` (a self-join of every message); computing it once instead of per rule
    makes the whole suite about 2.5 times faster on a million frames. The tables stay in DuckDB,
    which spills them to disk under a memory limit. Names that are not views are skipped.
    """
    existing = {
        name
        for (name,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND temporary = false"
        ).fetchall()
    }
    for name in names:
        if name not in existing:
            logger.debug("no view %s to materialize", name)
            continue
        started = time.perf_counter()
        schema = _materialized_schema(con) if name in COMPRESSED_VIEWS else ""
        table = f'{schema}"materialized_{name}"'
        kind = "TABLE" if schema else "TEMP TABLE"
        con.execute(f'CREATE OR REPLACE {kind} {table} AS SELECT * FROM "{name}"')
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {table}')
        logger.info("materialized %s: %.3f s", name, time.perf_counter() - started)


_MATERIALIZED_DB = "ocpp_audit_materialized"
# Materialized views kept compressed (see _materialized_schema). meter_samples (13M rows on 10.6M
# frames): suite 66.6 s -> 64.4 s. calls compressed too made transactions read it 2.3 times slower.
COMPRESSED_VIEWS = frozenset({"meter_samples"})


def _materialized_schema(con: duckdb.DuckDBPyConnection) -> str:
    """Where materialized views go: a compressed in-memory database (``schema.`` prefix), or the
    temporary schema (empty prefix) when this DuckDB cannot attach one.

    DuckDB does not compress plain in-memory tables: on 10.6M frames calls and meter_samples
    outgrew the 3 GB cap and every rule read them back from the spill file.
    """
    attached = {
        name for (name,) in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    }
    if _MATERIALIZED_DB not in attached:
        try:
            con.execute(f"ATTACH ':memory:' AS {_MATERIALIZED_DB} (COMPRESS)")
        except duckdb.Error as error:
            logger.debug("no compressed in-memory database: %s", error_line(error))
            return ""
    return f"{_MATERIALIZED_DB}."


def views_read(rules: Sequence[Rule]) -> set[str]:
    """The packaged views the rules read, directly or through other views (by name in the SQL)."""
    from ocpp_audit.analyser import views

    sql_of = {view.name: view.sql for view in views.VIEWS}
    mentions = {name: re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE) for name in sql_of}
    read = {name for name, pattern in mentions.items() if any(pattern.search(r.sql) for r in rules)}
    pending = list(read)
    while pending:
        body = sql_of[pending.pop()]
        for name, pattern in mentions.items():
            if name not in read and pattern.search(body):
                read.add(name)
                pending.append(name)
    return read


def judged_chargers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every charge_point_id in the (filtered) frames view, sorted."""
    rows = con.execute(
        "SELECT DISTINCT charge_point_id FROM frames WHERE charge_point_id IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [charge_point_id for (charge_point_id,) in rows]


_IDENTITY_SQL = """
SELECT charge_point_id,
       last(vendor ORDER BY ts) FILTER (WHERE vendor IS NOT NULL),
       last(model ORDER BY ts) FILTER (WHERE model IS NOT NULL),
       last(serial_number ORDER BY ts) FILTER (WHERE serial_number IS NOT NULL),
       string_agg(DISTINCT firmware_version, ' / ' ORDER BY firmware_version)
FROM boots GROUP BY charge_point_id
"""
_IDENTITY_LABELS = ("Manufacturer", "Model", "Serial number", "Firmware version")


def charger_identities(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """charge_point_id -> vendor, model, serial number and firmware versions from the boots view."""
    try:
        rows = con.execute(_IDENTITY_SQL).fetchall()
    except duckdb.Error as error:  # no boots view (custom views): the heading goes without
        logger.debug("no charger identities: %s", error_line(error))
        return {}
    return {
        row[0]: {
            label: str(value)
            for label, value in zip(_IDENTITY_LABELS, row[1:], strict=True)
            if value is not None
        }
        for row in rows
    }


def charger_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """charge_point_id -> the OCPP version of its latest connection that negotiated one."""
    rows = con.execute(
        "SELECT charge_point_id, arg_max(ocpp_version, ts) FROM frames"
        " WHERE ocpp_version IS NOT NULL AND charge_point_id IS NOT NULL GROUP BY 1"
    ).fetchall()
    return dict(rows)


def run_rules(
    con: duckdb.DuckDBPyConnection, rules: Sequence[Rule], progress: Progress | None = None
) -> Report:
    """Judge every charger in ``con``'s frames view with ``rules`` (already selected and typed).

    Each charger is judged by the rules of its OCPP version (a rule's ``ocpp_versions``): one
    report layout, functions 1..16 then protocol checks, whatever the version.
    ``progress(done, total, note)`` is called before each rule and once at the end.
    """
    started = time.perf_counter()
    charge_point_ids = judged_chargers(con)
    versions = charger_versions(con)
    by_charger: dict[str, list[RuleResult]] = {cp: [] for cp in charge_point_ids}
    rule_seconds: dict[str, float] = {}
    for done, rule in enumerate(rules):
        if progress is not None:
            progress(done, len(rules), rule.id)
        judged = [cp for cp in charge_point_ids if rule.judges(versions.get(cp))]
        if not judged:
            continue
        rule_started = time.perf_counter()
        results = run_rule(
            con, rule, judged, other_versions=set(charge_point_ids).difference(judged)
        )
        rule_seconds[rule.id] = time.perf_counter() - rule_started
        logger.info("rule %s: %.3f s", rule.id, rule_seconds[rule.id])
        for charge_point_id in judged:
            by_charger[charge_point_id].append(results[charge_point_id])
    if progress is not None:
        progress(len(rules), len(rules), "")
    identities = charger_identities(con)
    for charge_point_id, version in versions.items():
        if charge_point_id in identities or version != "1.6":
            identities.setdefault(charge_point_id, {})["OCPP version"] = version
    return Report(
        chargers=[
            ChargerReport(cp, by_charger[cp], identities.get(cp, {}), versions.get(cp))
            for cp in charge_point_ids
        ],
        rules=list(rules),
        elapsed_s=time.perf_counter() - started,
        rule_seconds=rule_seconds,
    )


def _view_param_defaults() -> dict[str, object]:
    """The views' own parameters (such as ``late_after_s``), also settable with --param."""
    from ocpp_audit.analyser import views

    return dict(views.DEFAULT_PARAMS)


def prepare_rules(
    rule_dirs: Sequence[Path] | None,
    select: Sequence[str],
    exclude: Sequence[str],
    params: Mapping[str, object] | None,
) -> tuple[list[Rule], dict[str, object]]:
    """The selected rules with ``params`` applied, and the view parameters to create the views
    with; raises RuleError or ParamError naming what is wrong."""
    rules = select_rules(load_rules(rule_dirs), select, exclude)
    overrides = dict(params or {})
    view_defaults = _view_param_defaults()
    # A view parameter (late_after_s) may also be declared by a rule that depends on it; the rule's
    # value then reaches the view, and a --param override reaches both.
    view_params: dict[str, object] = {}
    for rule in rules:
        view_params.update({k: v for k, v in rule.defaults.items() if k in view_defaults})
    for name, value in overrides.items():
        if name in view_defaults:
            view_params[name] = coerce_param(name, view_defaults[name], value)
    apply_params(
        rules,
        {
            name: value
            for name, value in overrides.items()
            if name not in view_defaults or any(name in rule.defaults for rule in rules)
        },
    )
    return list(rules), view_params


def judge(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[Rule],
    *,
    materialize: Sequence[str] = MATERIALIZED_VIEWS,
    progress: Progress | None = None,
) -> Report:
    """Compute the shared views the rules read once, then judge every charger in ``con``'s
    frames view (the single-machine engine and each Spark task both come here)."""
    if rules:
        if progress is not None:
            progress(0, len(rules), "shared views")
        read = views_read(rules)
        materialize_views(con, [name for name in materialize if name in read])
    return run_rules(con, rules, progress)


def analyse(
    paths: Sequence[Path],
    *,
    rule_dirs: Sequence[Path] | None = None,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    params: Mapping[str, object] | None = None,
    chargers: Sequence[str] = (),
    since: str | dt.datetime | dt.date | None = None,
    until: str | dt.datetime | dt.date | None = None,
    memory_limit: str | None = None,
    materialize: Sequence[str] = MATERIALIZED_VIEWS,
    skip_bad_parts: bool = False,
    progress: Progress | None = None,
    shards: int | None = None,
) -> Report:
    """Judge a capture with the rules; the report holds one verdict per charger and rule.

    Raises CaptureError (unreadable capture), RuleError (broken rule file, failing rule SQL),
    ParamError (unknown rule id or param, badly typed param) and ValueError (bad since/until or
    memory limit), each naming what is at fault. ``memory_limit`` caps DuckDB's memory (see
    ``open_capture``); None means ``default_memory_limit()``. With ``skip_bad_parts``, parts that
    fail ``check_part`` are left out and listed in ``Report.skipped_parts`` instead of raising
    (CaptureError still if none is readable). ``progress(done, total, note)``, when given, hears
    of each step: the shared views computed, then each rule. ``shards`` > 1 judges the chargers in
    that many groups (runs of consecutive ids), one after the other: the same report, with the
    memory of the largest group instead of the whole capture's; None chooses one group per
    ``AUTO_SHARD_FRAMES`` rows of the parts (one for a capture smaller than that).

    Example::

        report = analyse([Path("captures/lab-faults")], params={"max_gap_s": 45})
        print(report.exit_status)
    """
    rules, view_params = prepare_rules(rule_dirs, select, exclude, params)
    # A capture still being recorded: its journals before its parts (a journal sealed meanwhile is
    # then read as parts), and the same snapshot for a renderer that opens the capture again.
    journals = read_open_journals(paths)
    skipped: list[SkippedPart] | None = None
    if skip_bad_parts:
        # The readable parts by name, so that a renderer reopening the capture skips the same ones.
        good, skipped = readable_parts(paths)
        paths = good
    if memory_limit is None:
        memory_limit = default_memory_limit()
    source: dict[str, object] = {
        "paths": list(paths),
        "chargers": list(chargers),
        "since": since,
        "until": until,
        "view_params": view_params,
        "memory_limit": memory_limit,
        "journals": journals,
    }
    if shards is None:
        shards = auto_shards(paths)
    if shards > 1:
        report = _judge_in_shards(source, rules, shards, materialize, progress)
    else:
        con = open_capture(**source)  # type: ignore[arg-type]
        try:
            report = judge(con, rules, materialize=materialize, progress=progress)
        finally:
            con.close()
    report.source = source
    report.skipped_parts = skipped
    report.open_journals = journals if journals.files else None
    return report


# Rows of the parts per shard when none is asked for. On 10.6M synthetic frames (2 cores): one
# pass 38.9 s and 3.3 GB; 4 shards 30.8 s, 2.1 GB; 10 shards 39.5 s, 1.1 GB (bench_analyser.py).
AUTO_SHARD_FRAMES = 2_500_000


def auto_shards(paths: Sequence[Path]) -> int:
    """How many shards ``analyse`` uses by default: one per ``AUTO_SHARD_FRAMES`` rows, from the
    parts' footers (no row is read)."""
    rows = 0
    for part in find_parts(paths):
        with contextlib.suppress(OSError, pa.ArrowException):  # check_part names a bad part
            rows += pq.read_metadata(part).num_rows
    return max(1, -(-rows // AUTO_SHARD_FRAMES))


def _judge_in_shards(
    source: Mapping[str, object],
    rules: list[Rule],
    shards: int,
    materialize: Sequence[str],
    progress: Progress | None,
) -> Report:
    """``judge`` on each shard of the chargers in turn, the reports joined, chargers sorted.

    A shard is a run of consecutive charger ids (in DuckDB's order), as many chargers in each, so
    that each shard reads only the row groups of its chargers (see ``open_capture``)."""
    con = open_capture(**source)  # type: ignore[arg-type]
    try:
        every = judged_chargers(con)
    finally:
        con.close()
    size = -(-len(every) // shards)  # ceiling: at most ``shards`` runs
    runs = [(every[i], every[min(i + size, len(every)) - 1]) for i in range(0, len(every), size)]
    chargers: list[ChargerReport] = []
    rule_seconds: dict[str, float] = {}
    elapsed = 0.0
    for index, run in enumerate(runs):
        shown = None
        if progress is not None:

            def shown(done: int, total: int, note: str, index: int = index) -> None:
                progress(
                    index * total + done,
                    len(runs) * total,
                    f"shard {index + 1}/{len(runs)}: {note}",
                )

        con = open_capture(**source, shard=run)  # type: ignore[arg-type]
        try:
            part = judge(con, rules, materialize=materialize, progress=shown)
        finally:
            con.close()
        chargers.extend(part.chargers)
        for rule_id, seconds in part.rule_seconds.items():
            rule_seconds[rule_id] = rule_seconds.get(rule_id, 0.0) + seconds
        elapsed += part.elapsed_s
    # Code point order, which is UTF-8 byte order: DuckDB's ORDER BY in judged_chargers.
    chargers.sort(key=lambda charger: charger.charge_point_id)
    return Report(chargers, rules, elapsed_s=elapsed, rule_seconds=rule_seconds)
