"""``ocpp-audit analyse``: exit statuses, formats, baselines and one-line input errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ocpp_audit.analyser import capture as capture_module
from ocpp_audit.analyser.rules import load_rules
from ocpp_audit.cli import main
from tests.test_analyser_engine import (
    _corrupt_parts,
    standin_views,
    three_chargers,
    write_rule,
    write_sample_rules,
)


@pytest.fixture(autouse=True)
def _views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_module, "_create_views", standin_views)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_sample_rules(tmp_path / "rules")


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return three_chargers(tmp_path)


def run(*args: object) -> Result:
    return CliRunner().invoke(main, ["analyse", *map(str, args)], catch_exceptions=False)


def one_line_error(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.output
    return lines[-1]


def test_exit_0_when_nothing_fails(capture: Path, rules_dir: Path) -> None:
    result = run(capture, "--rules", rules_dir, "--select", "boot-notification")
    assert result.exit_code == 0, result.output
    assert "Charger CP1  (1 PASS, 0 FAIL, 0 NOT OBSERVED)" in result.stdout
    assert "Charger CP3  (0 PASS, 0 FAIL, 1 NOT OBSERVED)" in result.stdout


def test_exit_1_when_an_error_rule_fails(capture: Path, rules_dir: Path) -> None:
    result = run(capture, "--rules", rules_dir)
    assert result.exit_code == 1
    # A warning rule's FAIL alone does not fail the run.
    assert run(capture, "--rules", rules_dir, "--exclude", "heartbeat").exit_code == 0
    # Overriding the threshold turns CP2's heartbeat into a PASS.
    assert run(capture, "--rules", rules_dir, "--param", "max_gap_s=150").exit_code == 0


def test_charger_filter(capture: Path, rules_dir: Path) -> None:
    result = run(capture, "--rules", rules_dir, "--charger", "CP1", "--format", "json")
    assert [c["charge_point_id"] for c in json.loads(result.stdout)["chargers"]] == ["CP1"]


def test_formats_to_stdout_and_file(tmp_path: Path, capture: Path, rules_dir: Path) -> None:
    document = json.loads(run(capture, "--rules", rules_dir, "-f", "json").stdout)
    assert document["format_version"] == 1 and len(document["chargers"]) == 3
    junit = ET.fromstring(run(capture, "--rules", rules_dir, "--format", "junit").stdout)
    assert len(junit.findall("testsuite")) == 3
    markdown = run(capture, "--rules", rules_dir, "--format", "markdown").stdout
    assert "| # | Function | Acceptance Criteria | Result |" in markdown

    out = tmp_path / "report.json"
    result = run(capture, "--rules", rules_dir, "--format", "json", "--output", out)
    assert result.stdout == ""
    assert json.loads(out.read_text()) == document


def test_baseline_unchanged_and_changed(tmp_path: Path, capture: Path, rules_dir: Path) -> None:
    baseline = tmp_path / "baseline.json"
    written = run(capture, "--rules", rules_dir, "--write-baseline", baseline)
    assert written.exit_code == 1  # CP2's heartbeat FAILs
    assert json.loads(baseline.read_text())["format_version"] == 1

    # Same verdicts, FAIL included: the CI run passes.
    same = run(capture, "--rules", rules_dir, "--baseline", baseline)
    assert same.exit_code == 0, same.output
    assert "unchanged" in same.stderr

    changed = run(capture, "--rules", rules_dir, "--baseline", baseline, "--param", "max_gap_s=500")
    assert changed.exit_code == 1
    assert "CP2 heartbeat: FAIL -> PASS" in changed.stderr

    fewer = run(capture, "--rules", rules_dir, "--baseline", baseline, "--exclude", "fold-check")
    assert fewer.exit_code == 1
    assert "CP1 fold-check: FAIL -> absent" in fewer.stderr


def test_bad_baseline_file_exits_2(tmp_path: Path, capture: Path, rules_dir: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"chargers": []}')
    result = run(capture, "--rules", rules_dir, "--baseline", bad)
    assert result.exit_code == 2
    assert str(bad) in one_line_error(result)


@pytest.mark.parametrize(
    "kind", ["not parquet", "truncated", "foreign", "future major", "missing columns", "wrong type"]
)
def test_corrupt_capture_exits_2_naming_the_file(
    tmp_path: Path, rules_dir: Path, kind: str
) -> None:
    path, problem = _corrupt_parts(tmp_path)[kind]
    result = run(path, "--rules", rules_dir)
    assert result.exit_code == 2
    message = one_line_error(result)
    assert message == f"Error: {path.resolve()}: {message.split(': ', 2)[2]}"
    assert problem in message


def test_corrupt_part_inside_a_capture_folder(
    tmp_path: Path, capture: Path, rules_dir: Path
) -> None:
    bad = capture / "frames" / "date=2024-05-01" / "part-broken.parquet"
    bad.write_bytes(b"PAR1 nothing more")
    result = run(capture, "--rules", rules_dir)
    assert result.exit_code == 2
    assert str(bad.resolve()) in one_line_error(result)


def test_missing_capture_exits_2(tmp_path: Path, rules_dir: Path) -> None:
    result = run(tmp_path / "nowhere", "--rules", rules_dir)
    assert result.exit_code == 2
    assert "nowhere: no such file or folder" in one_line_error(result)


def test_broken_rule_exits_2_naming_the_file(tmp_path: Path, capture: Path) -> None:
    path = write_rule(tmp_path / "broken", "03-x.sql", "/*+++\nid = 'x'\n+++*/\nSELECT 1")
    result = run(capture, "--rules", path.parent)
    assert result.exit_code == 2
    assert one_line_error(result).startswith(f"Error: {path}: header lacks the required key")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--param", "nope=1"], "'nope' is not declared"),
        (["--param", "max_gap_s=soon"], "expected int"),
        (["--param", "max_gap_s"], "NAME=VALUE"),
        (["--select", "typo"], "no rule with id typo"),
        (["--since", "yesterday"], "not an ISO 8601"),
        (["--format", "pdf"], "'pdf' is not one of"),
    ],
)
def test_usage_errors_exit_2(capture: Path, rules_dir: Path, args: list[str], words: str) -> None:
    result = run(capture, "--rules", rules_dir, *args)
    assert result.exit_code == 2
    assert words in result.stderr


def test_view_params_are_accepted(capture: Path, rules_dir: Path) -> None:
    # late_after_s belongs to the views (transactions), not to a rule: still a known --param.
    from ocpp_audit.analyser import views

    name = next(iter(getattr(views, "DEFAULT_PARAMS", {})), None)
    if name is None:
        pytest.skip("the views declare no parameters")
    result = run(
        capture, "--rules", rules_dir, "--param", f"{name}=120", "--select", "boot-notification"
    )
    assert result.exit_code == 0, result.output


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(main, ["analyse", "--help"])
    assert result.exit_code == 0
    assert "ocpp-audit analyse captures/" in result.stdout


def test_every_command_help_is_prose_with_an_example() -> None:
    """Each command's --help reads as text with an example; no source code slipped into it."""
    from ocpp_audit.cli import COMMANDS

    for name in COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert f"ocpp-audit {name}" in result.stdout, name
        for code in ("click.", "type=", "default=", "help="):
            assert code not in result.stdout, (name, code)


def test_packaged_rules_run_on_a_capture(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capture: Path
) -> None:
    """With the real views, every packaged rule runs (whatever its verdicts) and the JSON holds them."""
    from ocpp_audit.analyser import views

    if not load_rules():
        pytest.skip("no packaged rules yet")
    monkeypatch.setattr(capture_module, "_create_views", views.create_views)
    result = run(capture, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    # every packaged rule of the chargers' OCPP versions (a rule names the versions it judges)
    versions = {charger["ocpp_version"] for charger in document["chargers"]}
    rule_ids = {rule.id for rule in load_rules() if any(rule.judges(v) for v in versions)}
    seen = {
        entry["rule"]
        for charger in document["chargers"]
        for entry in charger["functions"] + charger["checks"]
    }
    assert seen == rule_ids


def test_memory_limit(capture: Path, rules_dir: Path) -> None:
    assert run(capture, "--rules", rules_dir, "--memory-limit", "64MB").exit_code == 1
    result = run(capture, "--rules", rules_dir, "--memory-limit", "lots")
    assert result.exit_code == 2
    assert "memory limit 'lots'" in result.stderr


def test_analyser_needs_no_proxy_or_websocket_library() -> None:
    """DESIGN.md: the analyser imports only the codec and schema from the recorder."""
    import subprocess
    import sys

    code = (
        "import sys, ocpp_audit.cli.analyse, ocpp_audit.cli.query, ocpp_audit.analyser.views\n"
        "loaded = {'mitmproxy', 'websockets'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
