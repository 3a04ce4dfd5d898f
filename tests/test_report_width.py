"""The terminal report fits its width, ends with the totals, and a fleet summary (issue 13).

Run on the repository's sample capture of six faulty lab chargers; every figure the text shows is
checked against the JSON report of the same capture.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ocpp_audit.cli import main

SAMPLE = Path(__file__).parent.parent / "captures" / "lab-faults"


def run(*args: object, columns: int = 80) -> Result:
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(
        main, ["analyse", *map(str, args)], catch_exceptions=False
    )


@pytest.fixture(scope="module")
def document() -> dict:
    result = run(SAMPLE, "-f", "json")
    assert result.exit_code == 1
    return json.loads(result.stdout)


def _counts(document: dict) -> tuple[Counter, dict[str, list[str]]]:
    counts: Counter = Counter()
    failed: dict[str, list[str]] = {}
    for charger in document["chargers"]:
        for entry in [*charger["functions"], *charger["checks"]]:
            counts[entry["verdict"]] += 1
            if entry["verdict"] == "FAIL":
                label = (
                    f"{entry['function']} {entry['rule']}"
                    if entry.get("function")
                    else entry["rule"]
                )
                failed.setdefault(charger["charge_point_id"], []).append(label)
    return counts, failed


@pytest.mark.parametrize("columns", [80, 100, 132])
def test_the_table_fits_the_terminal(columns: int) -> None:
    result = run(SAMPLE, columns=columns)
    assert result.exit_code == 1
    too_long = [line for line in result.stdout.splitlines() if len(line) > columns]
    assert too_long == []
    # Wide enough, the notes are a column; narrow, they go under each function.
    header = next(line for line in result.stdout.splitlines() if line.startswith(" #  Function"))
    assert header.endswith("Notes") == (columns >= 100)


def test_the_table_ends_with_the_totals_and_the_chargers_that_failed(document: dict) -> None:
    counts, failed = _counts(document)
    lines = run(SAMPLE).stdout.rstrip("\n").splitlines()
    start = max(i for i, line in enumerate(lines) if line.endswith("verdicts:"))
    closing = lines[start:]
    total = sum(counts.values())
    assert closing[0] == f"{len(document['chargers'])} chargers, {total} verdicts:"
    assert closing[1].split() == ["PASS", str(counts["PASS"])]
    assert closing[2].split() == ["FAIL", str(counts["FAIL"])]
    assert closing[3].split() == ["NOT", "OBSERVED", str(counts["NOT_OBSERVED"])]
    listing = " ".join(line.strip() for line in closing[4:])
    assert listing.startswith("Failed: ")
    named = {
        item.split(" (")[0]: item.split(" (")[1].rstrip(")") for item in listing[8:].split("; ")
    }
    assert named == {cp: ", ".join(labels) for cp, labels in failed.items()}


def test_summary_is_one_row_per_charger(document: dict) -> None:
    result = run(SAMPLE, "-f", "summary")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Charger", "PASS", "FAIL", "NOT", "OBSERVED", "Failed"]
    _, failed = _counts(document)
    for charger, line in zip(document["chargers"], lines[2:], strict=False):
        verdicts = Counter(e["verdict"] for e in [*charger["functions"], *charger["checks"]])
        cells = line.split(None, 4)
        assert cells[:4] == [
            charger["charge_point_id"],
            str(verdicts["PASS"]),
            str(verdicts["FAIL"]),
            str(verdicts["NOT_OBSERVED"]),
        ]
        assert cells[4] == ", ".join(failed.get(charger["charge_point_id"], ["-"]))
    assert lines[2 + len(document["chargers"])] == ""


def test_a_report_file_is_announced_with_its_counts(document: dict, tmp_path: Path) -> None:
    counts, _ = _counts(document)
    out = tmp_path / "report.html"
    result = run(SAMPLE, "-f", "html", "-o", out)
    assert result.exit_code == 1
    assert out.stat().st_size > 0
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"Wrote {out} (html): {len(document['chargers'])} chargers: {counts['PASS']} PASS, "
        f"{counts['FAIL']} FAIL, {counts['NOT_OBSERVED']} NOT OBSERVED"
    )
