"""Every rule on the pass and fail captures kept beside it (rules/cases/<rule-id>/).

Each ``<verdict>.toml`` names a capture in the form ``ocpp-audit import --format jsonl`` reads (its
``capture``, else ``<verdict>.jsonl`` beside it), a charger, the verdict the rule gives it and a piece
of a finding's detail. tests/make_rule_cases.py writes them from test_rules.py's builders.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import duckdb
import pytest

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.engine import judged_chargers, run_rule
from ocpp_audit.analyser.rules import load_rules
from ocpp_audit.importers import import_files

CASES_DIR = Path(__file__).resolve().parent.parent / "rules" / "cases"
RULES = {rule.id: rule for rule in load_rules()}
CASE_FILES = sorted(CASES_DIR.glob("*/*.toml"))

# The jsonl form carries messages only: these verdicts need connection rows or uploads, which only
# a recorded capture holds (test_rules.py judges them there).
NEEDS_MORE_THAN_MESSAGES = {("diagnostics", "PASS"), ("offline-replay", "PASS")}
# The shared protocol checks judge 2.0.1 chargers too; their cases are the 1.6 ones (2.0.1 protocol
# cases are in tests/test_rules_v201.py).


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory):
    """jsonl file -> an open capture of it, each imported once (the shared one serves many)."""
    opened: dict[Path, duckdb.DuckDBPyConnection] = {}

    def capture_of(jsonl: Path) -> duckdb.DuckDBPyConnection:
        if jsonl not in opened:
            capture_dir = tmp_path_factory.mktemp("case")
            import_files([jsonl], "jsonl", capture_dir)
            opened[jsonl] = open_capture([capture_dir])
        return opened[jsonl]

    yield capture_of
    for con in opened.values():
        con.close()


@pytest.mark.parametrize(
    "case_file", CASE_FILES, ids=[f"{p.parent.name}-{p.stem}" for p in CASE_FILES]
)
def test_rule_on_its_case(imported, case_file: Path) -> None:
    case = tomllib.loads(case_file.read_text(encoding="utf-8"))
    jsonl = (case_file.parent / case.get("capture", f"{case_file.stem}.jsonl")).resolve()
    con = imported(jsonl)
    rule = RULES[case_file.parent.name]
    result = run_rule(con, rule, judged_chargers(con))[case["charge_point_id"]]
    details = [finding.detail or "" for finding in result.findings]
    assert result.verdict == case["verdict"] == case_file.stem.upper(), details
    assert any(case["detail"] in text for text in details), details


def test_every_rule_has_its_cases() -> None:
    present = {(path.parent.name, path.stem.upper()) for path in CASE_FILES}
    wanted = {(rule_id, verdict) for rule_id in RULES for verdict in ("PASS", "FAIL")}
    assert wanted - present == NEEDS_MORE_THAN_MESSAGES
    assert present <= wanted  # no case for a rule that is gone
