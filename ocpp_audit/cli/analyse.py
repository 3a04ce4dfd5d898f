"""``ocpp-audit analyse``: judge a capture against the acceptance rules."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ocpp_audit.analyser.baseline import compare, load_baseline
from ocpp_audit.analyser.baseline import write_baseline as store_baseline
from ocpp_audit.analyser.engine import analyse as run_analysis
from ocpp_audit.analyser.render.table import written
from ocpp_audit.analyser.report import FORMATS, render
from ocpp_audit.analyser.rules import parse_param_assignments
from ocpp_audit.capture.parts import find_parts, parse_time
from ocpp_audit.cli.errors import InputError, writable_file_callback
from ocpp_audit.cli.output import emit, output_options
from ocpp_audit.cli.progress import progress
from ocpp_audit.cli.selection import check_found, local_captures, require_parts


class ShardCount(click.ParamType):
    """--shards: a whole number of at least 1, or auto (None: ``engine.auto_shards``)."""

    name = "N|auto"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | None:
        if value is None or (isinstance(value, int) and value >= 1):
            return value  # type: ignore[return-value]
        if str(value).strip().lower() == "auto":
            return None
        try:
            number = int(str(value))
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is neither auto nor a whole number of at least 1", param, ctx)
        return number


def _check_time(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_time(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--charger", "chargers", multiple=True, metavar="ID", help="Judge only this charger.")
@click.option("--since", callback=_check_time, metavar="T", help="From T (ISO 8601, inclusive).")
@click.option(
    "--until",
    callback=_check_time,
    metavar="T",
    help="Up to T (exclusive; a date: that whole day).",
)
@click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Rules from DIR instead of the built-in ones (repeatable).",
)
@click.option("--select", multiple=True, metavar="ID", help="Run only this rule (repeatable).")
@click.option("--exclude", multiple=True, metavar="ID", help="Skip this rule (repeatable).")
@click.option(
    "--param",
    "param_assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a rule parameter, typed like its default (repeatable).",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="Cap DuckDB's memory (such as 2GB); beyond it DuckDB spills to a temporary folder."
    " Default: 3GB, or 80% of the machine's memory if that is less.",
)
@click.option(
    "--skip-bad-parts",
    is_flag=True,
    help="Analyse the readable parts; list the unreadable ones on stderr (and in the JSON report).",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="duckdb: on this machine. spark: the same rules per charger bucket on Spark"
    " (pip install 'ocpp-audit[spark]').",
)
@click.option(
    "--shards",
    type=ShardCount(),
    default="auto",
    show_default=True,
    help="With --engine duckdb: judge the chargers in N groups of consecutive ids, one after the"
    " other: the same report in about 1/N of the memory, each group reading its own rows. auto:"
    " one group per 2.5 million rows of the capture.",
)
@click.option(
    "--spark-master",
    metavar="URL",
    help="With --engine spark: local[N], spark://host:7077, yarn, k8s://...;"
    " default the active session, else local[*].",
)
@output_options(FORMATS, "table")
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Compare verdicts with a stored JSON report; exit 1 on any change.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    callback=writable_file_callback,
    help="Store this run's report as a baseline (its folder must exist).",
)
def analyse(
    captures: tuple[str, ...],
    chargers: tuple[str, ...],
    since: str | None,
    until: str | None,
    rule_dirs: tuple[Path, ...],
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    param_assignments: tuple[str, ...],
    memory_limit: str | None,
    skip_bad_parts: bool,
    engine: str,
    shards: int | None,
    spark_master: str | None,
    fmt: str,
    output: Path | None,
    baseline: Path | None,
    write_baseline: Path | None,
) -> None:
    """Judge each charger in CAPTURE against the acceptance rules.

    CAPTURE is a capture folder or Parquet file (several may be given). One verdict per charger and
    rule: PASS, FAIL or NOT OBSERVED (the capture shows nothing either way).

    Exit status: 0 when nothing FAILs, 1 when a rule of severity error FAILs (with --baseline:
    when any verdict changed), 2 on usage or input errors, and when nothing was judged (no
    Parquet parts, no such --charger, no frames between --since and --until). Also spelt
    `analyze`.

    \b
    Example:
        ocpp-audit analyse captures/lab-faults --format markdown --output report.md
        ocpp-audit analyse captures/lab-faults --charger LAB-SLOWHB --param max_gap_s=45
        ocpp-audit analyse captures/lab-faults --write-baseline baseline.json
        ocpp-audit analyse captures/lab-faults --baseline baseline.json
        ocpp-audit analyse captures/fleet --shards 8
        ocpp-audit analyse captures/fleet --engine spark --spark-master 'local[2]'
    """
    # Arguments first, the work after: a baseline that cannot be read stops the run before it.
    known = load_baseline(baseline) if baseline is not None else None
    captures = tuple(local_captures(captures))  # an s3:// capture: fetched, then read locally
    require_parts(captures, live=True)
    if spark_master is not None and engine != "spark":
        raise click.UsageError("--spark-master goes with --engine spark")
    if engine == "spark" and skip_bad_parts:
        raise click.UsageError("--skip-bad-parts is not available with --engine spark")
    if engine == "spark" and shards not in (None, 1):
        raise click.UsageError("--shards is for --engine duckdb (Spark groups chargers itself)")
    try:
        options = {
            "rule_dirs": list(rule_dirs) or None,
            "select": select,
            "exclude": exclude,
            "params": parse_param_assignments(param_assignments),
            "chargers": chargers,
            "since": since,
            "until": until,
            "memory_limit": memory_limit,
        }
        if engine == "spark":
            report = _analyse_on_spark(captures, spark_master=spark_master, **options)
        else:
            with progress("analysing", unit="rules") as show:
                report = run_analysis(
                    list(captures),
                    skip_bad_parts=skip_bad_parts,
                    progress=show,
                    shards=shards,
                    **options,
                )
    except ValueError as error:  # ParamError too: a bad --param, --select or --exclude
        raise InputError(str(error)) from None

    for part in report.skipped_parts or ():
        click.echo(f"Skipped {part}", err=True)
    if report.open_journals is not None:
        click.echo(f"Capture being recorded: {report.open_journals.summary()}", err=True)
    # The parts analysed (with --skip-bad-parts, the readable ones), to say what they hold.
    analysed = report.source["paths"] if report.source else captures
    check_found(
        captures,
        find_parts(analysed),  # type: ignore[arg-type]
        {charger.charge_point_id for charger in report.chargers},
        chargers=chargers,
        since=since,
        until=until,
    )
    emit(render(report, fmt), output)
    if output is not None:
        click.echo(f"Wrote {output} ({fmt}): {written(report)}", err=True)

    status = report.exit_status
    if known is not None:
        changes = compare(report, known)
        if changes:
            click.echo(f"{len(changes)} verdicts changed from {baseline}:", err=True)
            for change in changes:
                click.echo(f"  {change}", err=True)
        else:
            click.echo(f"Verdicts unchanged from {baseline}.", err=True)
        status = 1 if changes else 0
    if write_baseline is not None:
        try:
            store_baseline(report, write_baseline)
        except OSError as error:
            raise InputError(f"{write_baseline}: cannot write: {error.strerror or error}") from None
    sys.exit(status)


def _analyse_on_spark(captures: tuple[str, ...], **options: object):  # type: ignore[no-untyped-def]
    try:
        from ocpp_audit.analyser.spark import SparkUnavailableError, analyse_spark
    except ImportError:
        raise InputError(
            "--engine spark needs PySpark: pip install 'ocpp-audit[spark]' (and Java 17)"
        ) from None
    try:
        return analyse_spark([Path(c) for c in captures], **options)  # type: ignore[arg-type]
    except SparkUnavailableError as error:
        raise InputError(str(error)) from None
