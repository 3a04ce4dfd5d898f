"""The analyser's engine: capture checks, rule headers, params, folding and every report format.

Rules here are small SQL files written by the tests, over a stand-in for the analyst views (only
``messages``), so the engine is tested apart from the packaged rules and views.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocpp_audit.analyser import capture as capture_module
from ocpp_audit.analyser.baseline import compare, load_baseline, write_baseline
from ocpp_audit.analyser.capture import CaptureError, open_capture, parse_time
from ocpp_audit.analyser.engine import FAIL, NOT_OBSERVED, PASS, analyse, fold, materialize_views
from ocpp_audit.analyser.report import render
from ocpp_audit.analyser.rules import (
    ParamError,
    RuleError,
    apply_params,
    load_rules,
    parse_param_assignments,
    parse_rule,
    select_rules,
)
from ocpp_audit.capture import schema
from tests.capture_builder import START, CaptureBuilder


def standin_views(con: duckdb.DuckDBPyConnection, params: object = None) -> None:
    con.execute("CREATE OR REPLACE VIEW messages AS SELECT * FROM frames WHERE event = 'message'")


@pytest.fixture(autouse=True)
def _views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_module, "_create_views", standin_views)


def header(
    rule_id: str, *, function: int | None = None, severity: str = "error", params: str = ""
) -> str:
    lines = [
        "/*+++",
        f'id = "{rule_id}"',
        f'title = "Title of {rule_id}"',
        f'criterion = "Criterion of {rule_id}"',
    ]
    if function is not None:
        lines.append(f"function = {function}")
    lines += [f'severity = "{severity}"', 'references = ["OCPP 1.6 section 4.2"]']
    if params:
        lines += ["[params]", params]
    lines.append("+++*/")
    return "\n".join(lines) + "\n"


BOOT_SQL = """
SELECT charge_point_id, 'boot' AS "check", 'pass' AS verdict,
       'BootNotification received' AS detail,
       list({'ts': ts, 'unique_id': unique_id} ORDER BY ts) AS evidence
FROM messages WHERE action = 'BootNotification' AND message_type = 2
GROUP BY charge_point_id
"""

# OCPP 1.6 section 4.6: the charger sends Heartbeat at the interval the backend set.
HEARTBEAT_SQL = """
WITH beats AS (
    SELECT charge_point_id, ts, unique_id,
           epoch(ts) - epoch(lag(ts) OVER (PARTITION BY charge_point_id ORDER BY ts)) AS gap_s
    FROM messages WHERE action = 'Heartbeat' AND message_type = 2
)
SELECT charge_point_id, 'gap' AS "check",
       CASE WHEN max(gap_s) > $max_gap_s THEN 'fail' ELSE 'pass' END AS verdict,
       'largest gap ' || CAST(max(gap_s) AS INTEGER) || ' s' AS detail,
       NULL AS evidence
FROM beats WHERE gap_s IS NOT NULL GROUP BY charge_point_id;
"""

FOLD_SQL = """
-- a comment mentioning $not_a_param must not count
SELECT * FROM (VALUES
    ('CP1', 'a', 'fail', 'broken', NULL),
    ('CP1', 'b', 'pass', 'fine', NULL),
    ('CP2', 'a', 'pass', 'fine', NULL),
    ('CP2', 'n', 'note', 'ICCID not included', NULL),
    ('CP3', 'n', 'note', 'only a note', NULL),
    ('CP3', 'x', 'not_observed', 'no Reset seen', NULL)
) AS t(charge_point_id, "check", verdict, detail, evidence)
"""


def write_rule(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def write_sample_rules(folder: Path) -> Path:
    """The heartbeat, boot and fold rules above, as files in ``folder``."""
    write_rule(
        folder,
        "02-heartbeat.sql",
        header("heartbeat", function=2, params="max_gap_s = 90") + HEARTBEAT_SQL,
    )
    write_rule(folder, "01-boot.sql", header("boot-notification", function=1) + BOOT_SQL)
    write_rule(folder, "protocol-fold.sql", header("fold-check", severity="warning") + FOLD_SQL)
    return folder


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_sample_rules(tmp_path / "rules")


def three_chargers(tmp_path: Path) -> Path:
    """CP1 boots and beats every 60 s; CP2 boots, beats with a 120 s gap; CP3 never boots."""
    builder = CaptureBuilder()
    cp1 = builder.charger("CP1").connect()
    cp1.boot()
    cp1.heartbeats(3, 60)
    cp2 = builder.charger("CP2").connect()
    cp2.boot(iccid=None)
    cp2.heartbeats(2, 60).heartbeats(1, 120)
    cp3 = builder.charger("CP3").connect()
    cp3.status(0, "Available")
    folder = tmp_path / "capture"
    builder.write(folder)
    return folder


# --- rule headers -----------------------------------------------------------------------------

GOOD = header("x", function=3) + "SELECT 1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 1", "does not start with"),
        ("/*+++\nid = 'x'\nSELECT 1", "not closed"),
        ("/*+++\nid = \n+++*/ SELECT 1", "not valid TOML"),
        (GOOD.replace("severity", "colour = 'red'\nseverity"), "unknown header keys: colour"),
        (GOOD.replace('id = "x"\n', ""), "lacks the required key 'id'"),
        (GOOD.replace('title = "Title of x"', "title = 3"), "'title' must be a non-empty string"),
        (GOOD.replace("function = 3", "function = 17"), "integer from 1 to 16"),
        (GOOD.replace("function = 3", 'function = "3"'), "integer from 1 to 16"),
        (GOOD.replace("function = 3", "function = true"), "integer from 1 to 16"),
        (GOOD.replace('severity = "error"', 'severity = "fatal"'), "severity 'fatal'"),
        (GOOD.replace('references = ["OCPP 1.6 section 4.2"]', "references = 4"), "references"),
        (GOOD.replace('id = "x"', 'id = "Bad Id"'), "lower-case"),
        (header("x", params="a = [1, 2]") + "SELECT $a", "param 'a' must be"),
        (header("x") + "SELECT $missing", "undeclared params: $missing"),
        (header("x"), "no SQL"),
    ],
)
def test_header_errors_name_the_file(text: str, problem: str) -> None:
    path = Path("/rules/07-broken.sql")
    with pytest.raises(RuleError) as raised:
        parse_rule(text, path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_header_fields_are_read() -> None:
    text = header("heartbeat", function=2, params="max_gap_s = 90\nfactor = 1.5") + HEARTBEAT_SQL
    rule = parse_rule(text, Path("02-heartbeat.sql"))
    assert (rule.id, rule.function, rule.severity) == ("heartbeat", 2, "error")
    assert rule.references == ["OCPP 1.6 section 4.2"]
    assert rule.params == {"max_gap_s": 90, "factor": 1.5}
    assert rule.bound_params() == {"max_gap_s": 90}  # factor is declared but unused
    assert not rule.sql.endswith(";")


def test_json_paths_in_strings_are_not_params() -> None:
    rule = parse_rule(
        header("x") + "SELECT json_extract(payload, '$.iccid') FROM messages", Path("x")
    )
    assert rule.bound_params() == {}


def test_duplicate_ids_across_folders(tmp_path: Path) -> None:
    write_rule(tmp_path / "a", "01-boot.sql", header("boot") + BOOT_SQL)
    second = write_rule(tmp_path / "b", "99-boot.sql", header("boot") + BOOT_SQL)
    with pytest.raises(RuleError, match=f"{second}: duplicate rule id 'boot'"):
        load_rules([tmp_path / "a", tmp_path / "b"])


def test_rules_ordered_functions_then_checks(rules_dir: Path) -> None:
    write_rule(rules_dir, "16-trigger.sql", header("trigger", function=16) + BOOT_SQL)
    write_rule(rules_dir, "protocol-aaa.sql", header("aaa") + BOOT_SQL)
    ids = [rule.id for rule in load_rules([rules_dir])]
    assert ids == ["boot-notification", "heartbeat", "trigger", "aaa", "fold-check"]


# --- params -----------------------------------------------------------------------------------


def test_param_overrides_are_typed_by_the_default() -> None:
    text = header("x", params='n = 1\nf = 1.5\nb = true\ns = "Accepted"') + "SELECT $n, $f, $b, $s"
    rule = parse_rule(text, Path("x.sql"))
    apply_params([rule], parse_param_assignments(["n=45", "f=2", "b=no", "s=Rejected"]))
    assert rule.params == {"n": 45, "f": 2.0, "b": False, "s": "Rejected"}
    assert type(rule.params["f"]) is float
    apply_params([rule], {"n": 7, "f": 3})  # typed values from Python work too
    assert rule.params["n"] == 7 and rule.params["f"] == 3.0


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"n": "abc"}, "expected int"),
        ({"b": "maybe"}, "expected bool"),
        ({"n": 1.5}, "expected int"),
        ({"nope": "1"}, "'nope' is not declared by any selected rule"),
    ],
)
def test_bad_param_overrides(overrides: dict[str, object], problem: str) -> None:
    rule = parse_rule(header("x", params="n = 1\nb = false") + "SELECT $n, $b", Path("x.sql"))
    with pytest.raises(ParamError, match=problem):
        apply_params([rule], overrides)


def test_param_assignment_syntax() -> None:
    assert parse_param_assignments(["a=1=2"]) == {"a": "1=2"}
    with pytest.raises(ParamError, match="NAME=VALUE"):
        parse_param_assignments(["novalue"])


def test_select_and_exclude(rules_dir: Path) -> None:
    rules = load_rules([rules_dir])
    assert [r.id for r in select_rules(rules, ["heartbeat"])] == ["heartbeat"]
    assert "heartbeat" not in [r.id for r in select_rules(rules, (), ["heartbeat"])]
    with pytest.raises(ParamError, match="no rule with id typo"):
        select_rules(rules, ["typo"])


def test_param_override_changes_the_verdict(tmp_path: Path, rules_dir: Path) -> None:
    capture = three_chargers(tmp_path)
    strict = analyse([capture], rule_dirs=[rules_dir], select=["heartbeat"])
    lenient = analyse(
        [capture], rule_dirs=[rules_dir], select=["heartbeat"], params={"max_gap_s": "150"}
    )
    assert strict.verdicts()[("CP2", "heartbeat")] == FAIL
    assert lenient.verdicts()[("CP2", "heartbeat")] == PASS
    with pytest.raises(ParamError):  # boot-notification declares no max_gap_s
        analyse(
            [capture], rule_dirs=[rules_dir], select=["boot-notification"], params={"max_gap_s": 1}
        )


# --- running and folding ----------------------------------------------------------------------


def test_fold() -> None:
    assert fold(["pass", "fail", "note"]) == FAIL
    assert fold(["note", "pass"]) == PASS
    assert fold(["note", "not_observed"]) == NOT_OBSERVED
    assert fold([]) == NOT_OBSERVED


def test_analyse_folds_per_charger_and_rule(tmp_path: Path, rules_dir: Path) -> None:
    report = analyse([three_chargers(tmp_path)], rule_dirs=[rules_dir])
    assert [c.charge_point_id for c in report.chargers] == ["CP1", "CP2", "CP3"]
    verdicts = report.verdicts()
    assert verdicts[("CP1", "boot-notification")] == PASS
    assert verdicts[("CP3", "boot-notification")] == NOT_OBSERVED  # no evidence: not a FAIL
    assert verdicts[("CP1", "heartbeat")] == PASS
    assert verdicts[("CP2", "heartbeat")] == FAIL
    assert verdicts[("CP3", "heartbeat")] == NOT_OBSERVED
    assert verdicts[("CP1", "fold-check")] == FAIL  # fail beats pass
    assert verdicts[("CP2", "fold-check")] == PASS
    assert verdicts[("CP3", "fold-check")] == NOT_OBSERVED

    cp2 = report.chargers[1]
    fold_result = cp2.checks[0]
    assert fold_result.notes == ["ICCID not included"]
    assert {f.verdict for f in fold_result.findings} == {"pass", "note"}
    assert report.chargers[2].checks[0].notes == ["only a note"]  # notes ride along

    boot = report.chargers[0].functions[0]
    assert boot.findings[0].evidence[0]["unique_id"] == "CP1-1"
    assert boot.findings[0].evidence[0]["ts"] == START.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert report.exit_status == 1  # heartbeat (severity error) FAILs for CP2


def test_warning_failures_do_not_set_the_exit_status(tmp_path: Path, rules_dir: Path) -> None:
    report = analyse([three_chargers(tmp_path)], rule_dirs=[rules_dir], select=["fold-check"])
    assert report.verdicts()[("CP1", "fold-check")] == FAIL
    assert report.exit_status == 0


def test_findings_for_unknown_chargers_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    sql = "SELECT 'GHOST' AS charge_point_id, 'x' AS \"check\", 'fail' AS verdict, '' AS detail, NULL AS evidence"
    write_rule(folder, "protocol-ghost.sql", header("ghost") + sql)
    report = analyse([three_chargers(tmp_path)], rule_dirs=[folder])
    assert set(report.verdicts().values()) == {NOT_OBSERVED}


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELEC nonsense", "SQL failed"),
        ("SELECT * FROM no_such_view", "SQL failed"),
        (
            "SELECT charge_point_id, 'x' AS \"check\" FROM messages",
            "lacks columns verdict, detail, evidence",
        ),
        (
            "SELECT charge_point_id, 'x' AS \"check\", 'ok' AS verdict, '' AS detail, NULL AS evidence"
            " FROM messages",
            "verdict 'ok' is not one of",
        ),
        (
            "SELECT charge_point_id, 'x' AS \"check\", 'pass' AS verdict, '' AS detail, 3 AS evidence"
            " FROM messages",
            "SQL failed",
        ),
    ],
)
def test_broken_rule_sql_names_the_file(tmp_path: Path, sql: str, problem: str) -> None:
    path = write_rule(tmp_path / "rules", "05-broken.sql", header("broken", function=5) + sql)
    with pytest.raises(RuleError) as raised:
        analyse([three_chargers(tmp_path)], rule_dirs=[tmp_path / "rules"])
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)


def test_findings_are_capped(tmp_path: Path) -> None:
    sql = (
        "SELECT 'CP1' AS charge_point_id, 'n' AS \"check\", 'fail' AS verdict,"
        " 'finding ' || i AS detail, NULL AS evidence FROM range(250) AS r(i)"
    )
    write_rule(tmp_path / "rules", "protocol-many.sql", header("many") + sql)
    report = analyse([three_chargers(tmp_path)], rule_dirs=[tmp_path / "rules"])
    result = report.chargers[0].checks[0]
    assert result.verdict == FAIL
    assert len(result.findings) == 100
    assert result.omitted_findings == 150
    assert result.to_dict()["notes"] == ["150 more findings not shown; query the capture for all"]
    table = render(report, "table").splitlines()
    assert table[5].endswith("finding 0")
    # The note closes the notes (wrapped to the terminal's width).
    assert table[9].strip().startswith("150 more findings not shown")
    assert "150 more findings not shown; query the capture for all" in " ".join(
        line.strip() for line in table[9:11]
    )


# --- capture filters and checks -----------------------------------------------------------------


def test_filters_by_charger_and_time(tmp_path: Path, rules_dir: Path) -> None:
    capture = three_chargers(tmp_path)
    only = analyse([capture], rule_dirs=[rules_dir], chargers=["CP2"])
    assert [c.charge_point_id for c in only.chargers] == ["CP2"]
    # From 30 s on, CP1's boot is outside the window: no evidence either way.
    later = (START + dt.timedelta(seconds=30)).isoformat()
    report = analyse([capture], rule_dirs=[rules_dir], since=later)
    assert report.verdicts()[("CP1", "boot-notification")] == NOT_OBSERVED
    # Until the boot's second: CP3 (status only, at the start too) is still judged.
    report = analyse([capture], rule_dirs=[rules_dir], until=later)
    assert report.verdicts()[("CP1", "boot-notification")] == PASS
    assert report.verdicts()[("CP1", "heartbeat")] == NOT_OBSERVED
    # A bare date as until includes the whole day.
    day = START.date().isoformat()
    assert analyse([capture], rule_dirs=[rules_dir], since=day, until=day).chargers
    before = (START.date() - dt.timedelta(days=1)).isoformat()
    assert analyse([capture], rule_dirs=[rules_dir], until=before).chargers == []


def test_parse_time() -> None:
    assert parse_time("2024-05-01").instant == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert parse_time("2024-05-01").is_date
    assert parse_time("2024-05-01T12:00:00+02:00").instant.hour == 10
    assert parse_time("2024-05-01T12:00:00Z").instant.hour == 12
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_time("yesterday")


def test_empty_capture_judges_no_one(tmp_path: Path, rules_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = analyse([tmp_path / "empty"], rule_dirs=[rules_dir])
    assert report.chargers == [] and report.exit_status == 0
    for fmt in ("table", "json", "junit", "markdown"):
        assert render(report, fmt)


def test_single_part_outside_its_date_folder(tmp_path: Path) -> None:
    parts = sorted((three_chargers(tmp_path) / "frames").rglob("*.parquet"))
    lone = tmp_path / "lone.parquet"
    lone.write_bytes(parts[0].read_bytes())
    con = open_capture([lone])
    assert con.execute("SELECT DISTINCT date FROM frames").fetchall() == [(START.date(),)]
    con.close()


def _corrupt_parts(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """One bad file of each kind, and the words its error must hold."""
    good = sorted((three_chargers(tmp_path) / "frames").rglob("*.parquet"))[0]
    not_parquet = tmp_path / "bad" / "notes.parquet"
    not_parquet.parent.mkdir()
    not_parquet.write_text("hello, not parquet")
    truncated = tmp_path / "bad" / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "bad" / "foreign.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), foreign)
    table = pq.read_table(good)
    future = tmp_path / "bad" / "future.parquet"
    metadata = dict(table.schema.metadata)
    metadata[schema.META_SCHEMA_VERSION] = b"2.0"
    pq.write_table(table.replace_schema_metadata(metadata), future)
    missing = tmp_path / "bad" / "missing.parquet"
    pq.write_table(table.drop_columns(["unique_id", "payload"]), missing)
    wrong_type = tmp_path / "bad" / "wrong-type.parquet"
    pq.write_table(
        table.set_column(
            1, "ts", pa.array(range(table.num_rows), pa.int64())
        ).replace_schema_metadata(table.schema.metadata),
        wrong_type,
    )
    return {
        "not parquet": (not_parquet, "not a readable Parquet file"),
        "truncated": (truncated, "not a readable Parquet file"),
        "foreign": (foreign, "not an ocpp-audit capture part"),
        "future major": (future, "schema version 2.0 is not supported"),
        "missing columns": (missing, "missing columns unique_id, payload"),
        "wrong type": (wrong_type, "column ts has type int64"),
    }


def test_corrupt_parts_are_refused_naming_the_file(tmp_path: Path) -> None:
    for kind, (path, problem) in _corrupt_parts(tmp_path).items():
        with pytest.raises(CaptureError) as raised:
            open_capture([path])
        message = str(raised.value)
        assert message.startswith(f"{path.resolve()}: "), kind
        assert problem in message, kind
        assert "\n" not in message, kind


def test_missing_capture_path(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file or folder"):
        open_capture([tmp_path / "nope"])


# --- reports ----------------------------------------------------------------------------------


def test_every_format_parses_back(tmp_path: Path, rules_dir: Path) -> None:
    report = analyse([three_chargers(tmp_path)], rule_dirs=[rules_dir])

    document = json.loads(render(report, "json"))
    assert document == json.loads(json.dumps(report.to_dict()))
    assert document["format_version"] == 1
    cp2 = document["chargers"][1]
    assert cp2["charge_point_id"] == "CP2"
    assert [f["function"] for f in cp2["functions"]] == [1, 2]
    assert cp2["functions"][1] | {"findings": None} == {
        "function": 2,
        "rule": "heartbeat",
        "title": "Title of heartbeat",
        "verdict": "FAIL",
        "notes": [],
        "findings": None,
    }
    assert cp2["functions"][1]["findings"] == [
        {"check": "gap", "verdict": "fail", "detail": "largest gap 120 s", "evidence": []}
    ]
    assert cp2["checks"][0]["rule"] == "fold-check" and cp2["checks"][0]["function"] is None
    assert cp2["functions"][0]["findings"][0]["evidence"][0]["unique_id"] == "CP2-1"

    root = ET.fromstring(render(report, "junit"))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["CP1", "CP2", "CP3"]
    cp2_cases = suites[1].findall("testcase")
    assert len(cp2_cases) == 3
    failure = cp2_cases[1].find("failure")
    assert failure is not None and failure.get("message") == "Criterion of heartbeat"
    assert "largest gap 120 s" in (failure.text or "")
    cp3_skipped = [c for c in suites[2].findall("testcase") if c.find("skipped") is not None]
    assert len(cp3_skipped) == 3
    assert root.get("failures") == str(sum(int(s.get("failures")) for s in suites))

    markdown = render(report, "markdown")
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    header_row = "| # | Function | Acceptance Criteria | Result |"
    assert rows.count(header_row) == 3  # one table per charger
    body = [row for row in rows if row != header_row]
    assert len(body) == 9  # 3 chargers x 3 rules
    cells = [cell.strip() for cell in body[4].strip("|").split("|")]
    assert cells == ["2", "Title of heartbeat", "Criterion of heartbeat", "FAIL: largest gap 120 s"]

    table = render(report, "table")
    assert "Charger CP2  (2 PASS, 1 FAIL, 0 NOT OBSERVED)" in table
    heartbeat_line = next(
        line for line in table.splitlines() if "Title of heartbeat" in line and "FAIL" in line
    )
    assert heartbeat_line.split()[0] == "2" and heartbeat_line.endswith("largest gap 120 s")
    assert "FAIL (warning)" in table
    assert "ICCID not included" in table


def test_baseline_round_trip(tmp_path: Path, rules_dir: Path) -> None:
    capture = three_chargers(tmp_path)
    report = analyse([capture], rule_dirs=[rules_dir])
    write_baseline(report, tmp_path / "baseline.json")
    stored = load_baseline(tmp_path / "baseline.json")
    assert compare(report, stored) == []
    lenient = analyse([capture], rule_dirs=[rules_dir], params={"max_gap_s": 500})
    changes = compare(lenient, stored)
    assert [str(c) for c in changes] == ["CP2 heartbeat: FAIL -> PASS"]


def test_connection_settings(tmp_path: Path) -> None:
    con = open_capture([three_chargers(tmp_path)], memory_limit="100MB")
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings()"
            " WHERE name IN ('enable_progress_bar', 'temp_directory', 'TimeZone', 'memory_limit')"
        ).fetchall()
    )
    con.close()
    assert settings["enable_progress_bar"] == "false"  # no bar drawn into our output
    assert settings["TimeZone"] == "UTC"
    assert "ocpp-audit-" in settings["temp_directory"]  # spills go to the system temp folder
    assert settings["memory_limit"].startswith(("95", "100"))  # 100MB, shown in MiB


def test_materialized_views_give_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocpp_audit.analyser import views

    if not load_rules():
        pytest.skip("no packaged rules yet")
    monkeypatch.setattr(capture_module, "_create_views", views.create_views)
    capture = three_chargers(tmp_path)
    computed_once = analyse([capture])
    computed_per_rule = analyse([capture], materialize=())
    assert computed_once.to_dict() == computed_per_rule.to_dict()
    # The heading of the table and markdown reports names the charger from its BootNotification.
    assert computed_once.chargers[0].identity == {
        "Manufacturer": "ACME",
        "Model": "Wallbox 22",
        "Serial number": "SN-0001",
        "Firmware version": "1.0.0",
        "OCPP version": "1.6",
    }
    assert computed_once.chargers[2].identity == {}  # CP3 never booted
    assert "- Manufacturer: ACME" in render(computed_once, "markdown")
    assert "Manufacturer: ACME  Model: Wallbox 22" in render(computed_once, "table")
    con = open_capture([capture])
    materialize_views(con, ["calls", "no_such_view"])
    assert con.execute("SELECT count(*) FROM materialized_calls").fetchone() == (9,)
    assert con.execute("SELECT count(*) FROM calls").fetchone() == (9,)
    con.close()


def test_findings_in_a_stable_order(tmp_path: Path) -> None:
    """Deciding findings first (fail, note, pass), then by the time of their first evidence."""
    sql = """
    SELECT 'CP1' AS charge_point_id, c AS "check", v AS verdict, d AS detail,
           [{'ts': TIMESTAMPTZ '2024-05-01 10:00:00+00' + to_seconds(s), 'unique_id': d}] AS evidence
    FROM (VALUES ('p', 'pass', 'p1', 2), ('f', 'fail', 'f3', 3), ('f', 'fail', 'f1', 1),
                 ('n', 'note', 'n5', 5)) AS t(c, v, d, s)
    ORDER BY random()
    """
    write_rule(tmp_path / "rules", "protocol-order.sql", header("order") + sql)
    report = analyse([three_chargers(tmp_path)], rule_dirs=[tmp_path / "rules"])
    result = report.chargers[0].checks[0]
    assert [f.detail for f in result.findings] == ["f1", "f3", "n5", "p1"]
    assert result.findings[0].evidence == [{"ts": "2024-05-01T10:00:01.000000Z", "unique_id": "f1"}]


def test_view_params_reach_the_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A view parameter comes from a rule declaring it, and a --param override beats that."""
    seen: list[object] = []

    def recording_views(con: duckdb.DuckDBPyConnection, params: object = None) -> None:
        seen.append(params)
        standin_views(con)

    monkeypatch.setattr(capture_module, "_create_views", recording_views)
    monkeypatch.setattr(
        "ocpp_audit.analyser.engine._view_param_defaults", lambda: {"late_after_s": 60.0}
    )
    folder = tmp_path / "rules"
    write_rule(
        folder, "14-x.sql", header("x", function=14, params="late_after_s = 90.0") + BOOT_SQL
    )
    capture = three_chargers(tmp_path)
    analyse([capture], rule_dirs=[folder])
    analyse([capture], rule_dirs=[folder], params={"late_after_s": "120"})
    write_rule(tmp_path / "other", "01-y.sql", header("y", function=1) + BOOT_SQL)
    analyse([capture], rule_dirs=[tmp_path / "other"], params={"late_after_s": "30"})
    assert seen == [{"late_after_s": 90.0}, {"late_after_s": 120.0}, {"late_after_s": 30.0}]
