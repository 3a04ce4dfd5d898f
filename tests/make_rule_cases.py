"""Write each rule's pass and fail captures beside it: ``rules/cases/<rule-id>/{pass,fail}.jsonl``.

Run once from the repository's top (``python -m tests.make_rule_cases [RULE_ID ...]``) when
test_rules.py's or test_rules_v201.py's builders or cases change (with rule ids, only those rules'
folders are written again); the files are committed. Each case is one charger's messages from
test_rules.py's GOOD or BAD capture, in the form ``ocpp-audit import --format jsonl`` reads (what
``ocpp-audit export`` writes), with ``<verdict>.toml`` naming the charger, the verdict and a piece of
the detail; the well-behaved charger, which passes most rules, is one shared file
(``rules/cases/well-behaved.jsonl``) that those TOML files name with ``capture``. The jsonl form carries messages only (no connection open/close rows, no uploads): a case
whose verdict needs those is left out, and the script says which. tests/test_rule_cases.py runs
every rule on its cases.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.engine import judged_chargers, run_rule
from ocpp_audit.importers import import_files
from ocpp_audit.importers.jsonl import export_line
from tests import test_rules, test_rules_v201
from tests.capture_builder import CaptureBuilder

CASES_DIR = Path(__file__).resolve().parent.parent / "rules" / "cases"
# The chargers that go through all 16 functions (1.6 and 2.0.1), each one file the rules share.
SHARED = {"CP1": "well-behaved.jsonl", "CP201": "well-behaved-v201.jsonl"}
CAPTURES = {**test_rules.CAPTURES, **test_rules_v201.CAPTURES}
RULES = {**test_rules_v201.RULES, **test_rules.RULES}


def cases_of(rule_id: str) -> list[tuple[str, str, str, str, str]]:
    """A rule's cases: a rule that judges 1.6 has them in test_rules.py, a 2.0.1-only one in
    test_rules_v201.py."""
    source = test_rules.CASES if rule_id in test_rules.RULES else test_rules_v201.CASES
    return [case for case in source if case[2] == rule_id]


def case_lines(rows: list[dict[str, object]], charge_point_id: str) -> list[str]:
    """The charger's messages as jsonl lines, in the order the recorder wrote them."""
    return [
        export_line(
            dt.datetime.fromtimestamp(int(row["ts"]) / 1e6, dt.UTC),  # type: ignore[call-overload]
            charge_point_id,
            row.get("direction"),  # type: ignore[arg-type]
            row.get("raw"),  # type: ignore[arg-type]
            row.get("raw_binary"),  # type: ignore[arg-type]
            row.get("connection_id"),  # type: ignore[arg-type]
            # the version only where it is not 1.6, so the 1.6 cases stay as they were written
            None if row.get("ocpp_version") == "1.6" else row.get("ocpp_version"),  # type: ignore[arg-type]
        )
        for row in rows
        if row["event"] == "message" and row["charge_point_id"] == charge_point_id
    ]


def judge_jsonl(path: Path, rule_id: str, charge_point_id: str, work: Path):
    """The rule's result for the charger, on the capture ``import --format jsonl`` makes of path."""
    capture_dir = work / f"capture-{path.parent.name}-{path.stem}"
    shutil.rmtree(capture_dir, ignore_errors=True)
    import_files([path], "jsonl", capture_dir)
    con = open_capture([capture_dir])
    try:
        return run_rule(con, RULES[rule_id], judged_chargers(con))[charge_point_id]
    finally:
        con.close()


def case_toml(charge_point_id: str, verdict: str, detail: str, capture: str | None) -> str:
    return (
        "# Written by tests/make_rule_cases.py from tests/test_rules.py; run by test_rule_cases.py.\n"
        + (
            f"capture = {json.dumps(capture)}  # else <verdict>.jsonl beside this file\n"
            if capture
            else ""
        )
        + f"charge_point_id = {json.dumps(charge_point_id)}\n"
        f"verdict = {json.dumps(verdict)}\n"
        f"detail = {json.dumps(detail, ensure_ascii=False)}  # a piece of a finding's detail\n"
    )


def main(selected: list[str]) -> int:
    rows: dict[str, list[dict[str, object]]] = {}
    for name, build in CAPTURES.items():
        builder = CaptureBuilder()
        build(builder)
        rows[name] = builder.sorted_rows()
    rule_ids = sorted(selected or RULES)
    if selected:
        for rule_id in rule_ids:
            shutil.rmtree(CASES_DIR / rule_id, ignore_errors=True)
    else:
        shutil.rmtree(CASES_DIR, ignore_errors=True)
    left_out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rule_id in rule_ids:
            for verdict in ("PASS", "FAIL"):
                written = False
                # The smallest capture first: a charger that shows just this, not all 16 functions.
                candidates = sorted(
                    (
                        (case_lines(rows[capture], charge_point_id), charge_point_id, detail)
                        for capture, charge_point_id, case_rule, case_verdict, detail in cases_of(
                            rule_id
                        )
                        if case_verdict == verdict
                    ),
                    key=lambda candidate: len(candidate[0]),
                )
                for lines, charge_point_id, detail in candidates:
                    folder = CASES_DIR / rule_id
                    folder.mkdir(parents=True, exist_ok=True)
                    # The well-behaved charger (all 16 functions) is one file the rules share.
                    shared = charge_point_id in SHARED
                    jsonl = (
                        CASES_DIR / SHARED[charge_point_id]
                        if shared
                        else folder / f"{verdict.lower()}.jsonl"
                    )
                    jsonl.write_text("".join(lines))
                    result = judge_jsonl(jsonl, rule_id, charge_point_id, work)
                    details = [finding.detail or "" for finding in result.findings]
                    if result.verdict == verdict and any(detail in text for text in details):
                        toml = folder / f"{verdict.lower()}.toml"
                        capture = f"../{SHARED[charge_point_id]}" if shared else None
                        toml.write_text(case_toml(charge_point_id, verdict, detail, capture))
                        written = True
                        break
                    if not shared:
                        jsonl.unlink()
                if not written:
                    left_out.append(f"{rule_id} {verdict}")
            folder = CASES_DIR / rule_id
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    for case in left_out:
        print(f"left out (needs more than messages): {case}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
