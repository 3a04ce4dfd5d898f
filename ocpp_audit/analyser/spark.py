"""``analyse --engine spark``: the same views and rule files, run per charger bucket on Spark.

Spark reads the capture's parts, groups the rows by a bucket of the charger id, and each task runs an
in-process DuckDB over its bucket's Arrow data (``GroupedData.applyInArrow``) through the very code
the single-machine engine runs (``engine.judge``: the packaged views, the shared views materialized,
every rule, the findings folded). Every view and rule is keyed by charger, so a bucket holds all that
its chargers' verdicts need, and no rule is rewritten for Spark. The tasks return each charger's
folded verdicts as JSON; the driver puts them in charger order, so the report is the one the
single-machine engine writes (verdicts, details, evidence, order).

PySpark is an extra (``pip install 'ocpp-audit[spark]'``, with Java 17); ``--spark-master`` is
``local[N]``, ``spark://host:7077``, ``yarn`` or ``k8s://...``; without it an active session (as
under spark-submit or on Databricks) is used, else ``local[*]``. Open journals (a capture still being
recorded) are not read: Spark reads sealed parts only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ocpp_audit.analyser.capture import _configure, _create_views
from ocpp_audit.analyser.engine import (
    Progress,
    default_memory_limit,
    judge,
    prepare_rules,
)
from ocpp_audit.analyser.model import ChargerReport, Finding, Report, RuleResult
from ocpp_audit.analyser.rules import Rule
from ocpp_audit.capture import schema
from ocpp_audit.capture.parts import (
    _DUCKDB_TYPES,
    _VERSION_OF_SUBPROTOCOL,
    check_part,
    find_parts,
    frames_sql,
    stale_verdicts,
)

logger = logging.getLogger(__name__)

# What each task returns: one row per charger, its report as JSON (see _charger_json).
RESULT_SCHEMA = "charge_point_id string, report string"


class SparkUnavailableError(RuntimeError):
    """PySpark (or the Java it runs on) is missing; the message says how to install it."""


def _bucket_frames_sql(present: set[str]) -> str:
    """The bucket's rows in the capture schema: every column typed as in the parts, null where no
    part had it, and ``ocpp_version`` derived from the connection's open row for schema 1.0 rows
    (as ``frames_sql`` does for such parts)."""
    columns = []
    for column in schema.COLUMNS:
        duckdb_type = _DUCKDB_TYPES[column.type]
        if column.name == "ocpp_version":
            known = 'CAST("ocpp_version" AS VARCHAR)' if column.name in present else "NULL"
            columns.append(f'coalesce({known}, {_VERSION_OF_SUBPROTOCOL}) AS "ocpp_version"')
        elif column.name in present:
            columns.append(f'CAST("{column.name}" AS {duckdb_type}) AS "{column.name}"')
        else:
            columns.append(f'CAST(NULL AS {duckdb_type}) AS "{column.name}"')
    return f"SELECT {', '.join(columns)} FROM bucket_arrow"


def judge_bucket(
    table: pa.Table,
    rules: Sequence[Rule],
    view_params: Mapping[str, object],
    *,
    chargers: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    memory_limit: str | None = None,
) -> pa.Table:
    """One bucket's chargers judged in an in-process DuckDB: a table of (charge_point_id, report)."""
    con = duckdb.connect()
    try:
        _configure(con, in_memory=True, memory_limit=memory_limit)
        con.register("bucket_arrow", table)
        con.execute(f"CREATE TABLE bucket_rows AS {_bucket_frames_sql(set(table.column_names))}")
        con.unregister("bucket_arrow")
        sql = frames_sql(
            [], chargers=chargers, since=since, until=until, journal="bucket_rows", mirrors=True
        )
        con.execute(f"CREATE VIEW all_frames AS {sql}")
        con.execute("CREATE VIEW frames AS SELECT * FROM all_frames WHERE backend IS NULL")
        _create_views(con, view_params)
        report = judge(con, rules)
    finally:
        con.close()
    return pa.table(
        {
            "charge_point_id": [c.charge_point_id for c in report.chargers],
            "report": [_charger_json(c) for c in report.chargers],
        }
    )


def _charger_json(charger: ChargerReport) -> str:
    return json.dumps(
        {
            "identity": charger.identity,
            "ocpp_version": charger.ocpp_version,
            "results": [
                [
                    result.rule.id,
                    result.verdict,
                    result.notes,
                    result.omitted_findings,
                    [[f.check, f.verdict, f.detail, f.evidence] for f in result.findings],
                ]
                for result in charger.results
            ],
        }
    )


def _charger_from_json(
    charge_point_id: str, text: str, rules_by_id: Mapping[str, Rule]
) -> ChargerReport:
    data = json.loads(text)
    results = [
        RuleResult(
            rules_by_id[rule_id],
            verdict,
            notes=list(notes),
            findings=[Finding(*finding) for finding in findings],
            omitted_findings=omitted,
        )
        for rule_id, verdict, notes, omitted, findings in data["results"]
    ]
    return ChargerReport(charge_point_id, results, data["identity"], data["ocpp_version"])


def spark_session(master: str | None) -> Any:
    """The Spark session to run on: ``master`` if given, else the active one, else ``local[*]``."""
    try:
        import pandas  # noqa: F401  (PySpark's applyInArrow requires it)
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(
            "--engine spark needs PySpark: pip install 'ocpp-audit[spark]' (and Java 17)"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName("ocpp-audit").master(master or "local[*]")
    # Timestamps as UTC both ways between the JVM and Arrow, as the capture holds them.
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    builder = builder.config("spark.ui.enabled", "false")
    builder = builder.config("spark.ui.showConsoleProgress", "false")  # stdout is the report's
    if (master or "local").startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        # Local workers run the driver's own Python (PySpark's default is whatever `python3` is
        # on PATH, which may be another version: "PYTHON_VERSION_MISMATCH"). On a cluster the
        # workers' Python is the cluster's, set by its operators.
        # (SparkContext reads PYSPARK_PYTHON when it starts; the spark.pyspark.python setting
        # is for spark-submit.)
        os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        session = builder.getOrCreate()
    except Exception as error:  # no Java, a master that cannot be reached
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SparkUnavailableError(
            f"cannot start Spark ({master or 'local[*]'}): {first}"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def analyse_spark(
    paths: Sequence[Path],
    *,
    spark_master: str | None = None,
    buckets: int | None = None,
    rule_dirs: Sequence[Path] | None = None,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    params: Mapping[str, object] | None = None,
    chargers: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    memory_limit: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """``engine.analyse`` on Spark: the same report, the capture's chargers judged in ``buckets``
    groups (default: twice Spark's default parallelism) on the tasks of ``spark_master``.

    Raises what ``engine.analyse`` raises, and SparkUnavailableError without PySpark or Java."""
    started = time.perf_counter()
    rules, view_params = prepare_rules(rule_dirs, select, exclude, params)
    parts = find_parts(paths)
    for part in parts:
        check_part(part)  # a damaged part is named here, as by the single-machine engine
    if memory_limit is None:
        memory_limit = default_memory_limit()
    chargers_found: list[ChargerReport] = []
    if parts and rules:
        spark = spark_session(spark_master)
        if progress is not None:
            progress(0, 1, "Spark")
        chargers_found = list(
            _run_buckets(
                spark,
                parts,
                rules,
                view_params,
                buckets=buckets,
                chargers=chargers,
                since=since,
                until=until,
                memory_limit=memory_limit,
            )
        )
        if progress is not None:
            progress(1, 1, "")
    chargers_found.sort(key=lambda charger: charger.charge_point_id)
    report = Report(chargers=chargers_found, rules=list(rules))
    report.elapsed_s = time.perf_counter() - started
    report.source = {
        "paths": list(paths),
        "chargers": list(chargers),
        "since": since,
        "until": until,
        "view_params": view_params,
        "memory_limit": memory_limit,
    }
    return report


def _run_buckets(
    spark: Any,
    parts: Sequence[Path],
    rules: Sequence[Rule],
    view_params: Mapping[str, object],
    *,
    buckets: int | None,
    chargers: Sequence[str],
    since: str | None,
    until: str | None,
    memory_limit: str,
) -> Iterator[ChargerReport]:
    from pyspark.sql import functions as F

    # The parts themselves (found and checked as for DuckDB), never other Parquet files under
    # the folder; mergeSchema reads parts of older minor versions beside newer ones.
    frame = spark.read.option("mergeSchema", "true").parquet(*(str(p) for p in parts))
    frame = frame.drop(schema.PARTITION_KEY) if schema.PARTITION_KEY in frame.columns else frame
    if stale_verdicts(parts):  # as frames_sql: judged again, by this analysis's checker
        frame = frame.drop("schema_error")
    if chargers:
        frame = frame.filter(F.col("charge_point_id").isin(list(chargers)))
    count = buckets or max(1, 2 * spark.sparkContext.defaultParallelism)
    frame = frame.withColumn("ocpp_audit_bucket", F.abs(F.xxhash64("charge_point_id")) % count)
    # One shuffle into the buckets (not spark.sql.shuffle.partitions' 200 partitions, mostly
    # empty); the groupBy below finds the rows already placed.
    frame = frame.repartition(count, "ocpp_audit_bucket")
    rules = list(rules)
    view_params = dict(view_params)
    charger_filter = list(chargers)

    def task(table: pa.Table) -> pa.Table:
        return judge_bucket(
            table.drop_columns(["ocpp_audit_bucket"]),
            rules,
            view_params,
            chargers=charger_filter,
            since=since,
            until=until,
            memory_limit=memory_limit,
        )

    rules_by_id = {rule.id: rule for rule in rules}
    results = frame.groupBy("ocpp_audit_bucket").applyInArrow(task, RESULT_SCHEMA)
    for row in results.toLocalIterator():
        yield _charger_from_json(row["charge_point_id"], row["report"], rules_by_id)
