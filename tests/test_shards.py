"""``analyse --shards N``: the chargers judged in N groups, one after the other (issue 16).

Every rule is keyed by charger, so the report must be exactly the one-pass report (verdicts,
details, evidence, charger order) for any N, on the sample captures, a capture mixing OCPP 1.6 and
2.0.1, and a synthetic fleet; only the memory differs (bench/bench_analyser.py --shards measures it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocpp_audit.analyser.engine import analyse
from ocpp_audit.cli import main
from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
from tests.capture_builder import CaptureBuilder

ROOT = Path(__file__).parent.parent


def report_json(*args: object) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["analyse", *map(str, args), "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    document.pop("elapsed_s", None)
    return result.exit_code, document


@pytest.mark.parametrize("shards", [2, 5])
def test_the_sample_captures_in_shards_as_in_one_pass(shards: int) -> None:
    samples = [ROOT / "captures" / "lab-faults", ROOT / "captures" / "lab-good"]
    whole = report_json(*samples)
    sharded = report_json(*samples, "--shards", shards)
    assert sharded == whole
    assert len(whole[1]["chargers"]) > shards
    verdicts = {r["verdict"] for c in whole[1]["chargers"] for r in c["functions"]}
    assert verdicts >= {"PASS", "FAIL"}


def test_mixed_versions_in_shards_as_in_one_pass(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    for number in range(4):
        old = capture.charger(f"CP-16-{number}").connect()
        old.boot()
        old.heartbeats(3, every=60 + number * 40)
        new = capture.charger(f"CS-201-{number}").connect(version="2.0.1")
        new.boot201()
        new.status201(1, 1, "Occupied")
    capture.write(tmp_path / "mixed")
    whole = report_json(tmp_path / "mixed")
    assert report_json(tmp_path / "mixed", "--shards", 3) == whole
    in_201_terms = {
        c["charge_point_id"]: all(r["rule"].endswith("-v201") for r in c["functions"])
        for c in whole[1]["chargers"]
    }
    assert sorted(in_201_terms.values()) == [False] * 4 + [True] * 4


def test_a_synthetic_fleet_in_shards_as_in_one_pass(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    generate_fleet_capture(fleet, chargers=30, days=2)
    whole = report_json(fleet, "--param", "max_gap_s=20")
    sharded = report_json(fleet, "--param", "max_gap_s=20", "--shards", 4)
    assert sharded == whole
    assert len(whole[1]["chargers"]) == 30


def test_shards_report_progress_over_every_shard() -> None:
    heard: list[tuple[int, int, str]] = []
    report = analyse(
        [ROOT / "captures" / "lab-faults"], shards=3, progress=lambda *a: heard.append(a)
    )
    assert report.chargers
    done, total, _ = heard[-1]
    assert done == total and {note.split(":")[0] for _, _, note in heard} == {
        "shard 1/3",
        "shard 2/3",
        "shard 3/3",
    }


def test_shards_are_for_the_duckdb_engine() -> None:
    result = CliRunner().invoke(
        main, ["analyse", str(ROOT / "captures" / "lab-good"), "--engine", "spark", "--shards", "2"]
    )
    assert result.exit_code == 2
    assert "--shards is for --engine duckdb" in result.output
