"""``analyse --shards N``: the chargers judged in N groups, one after the other (issue 16).

Every rule is keyed by charger, so the report must be exactly the one-pass report (verdicts,
details, evidence, charger order) for any N, on the sample captures, a capture mixing OCPP 1.6 and
2.0.1, and a synthetic fleet; only the memory differs (bench/bench_analyser.py --shards measures it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from ocpp_audit.analyser import engine
from ocpp_audit.analyser.capture import find_parts
from ocpp_audit.analyser.engine import analyse
from ocpp_audit.analyser.render import render
from ocpp_audit.cli import main
from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
from tests.capture_builder import CaptureBuilder

ROOT = Path(__file__).parent.parent
SAMPLES = [ROOT / "captures" / "lab-faults", ROOT / "captures" / "lab-good"]


def report_json(*args: object) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["analyse", *map(str, args), "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    document.pop("elapsed_s", None)
    return result.exit_code, document


def test_the_sample_captures_in_shards_as_in_one_pass_with_progress_over_every_shard() -> None:
    status, whole = report_json(*SAMPLES)
    heard: list[tuple[int, int, str]] = []
    report = analyse(SAMPLES, shards=3, progress=lambda *a: heard.append(a))
    sharded = json.loads(render(report, "json"))
    sharded.pop("elapsed_s", None)
    assert (report.exit_status, sharded) == (status, whole)
    assert len(whole["chargers"]) > 3
    assert {r["verdict"] for c in whole["chargers"] for r in c["functions"]} >= {"PASS", "FAIL"}
    done, total, _ = heard[-1]
    assert done == total
    assert {note.split(":")[0] for _, _, note in heard} == {"shard 1/3", "shard 2/3", "shard 3/3"}


def test_mixed_versions_and_a_synthetic_fleet_in_shards_as_in_one_pass(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    for number in range(4):
        old = capture.charger(f"CP-16-{number}").connect()
        old.boot()
        old.heartbeats(3, every=60 + number * 40)
        new = capture.charger(f"CS-201-{number}").connect(version="2.0.1")
        new.boot201()
        new.status201(1, 1, "Occupied")
    capture.write(tmp_path / "mixed")
    generate_fleet_capture(tmp_path / "fleet", chargers=12, days=1)
    captures = (tmp_path / "mixed", tmp_path / "fleet", "--param", "max_gap_s=20")
    whole = report_json(*captures)
    assert report_json(*captures, "--shards", 3) == whole
    in_201_terms = [
        all(r["rule"].endswith("-v201") for r in c["functions"]) for c in whole[1]["chargers"]
    ]
    assert len(in_201_terms) == 20 and sum(in_201_terms) == 4


def test_shards_are_for_the_duckdb_engine() -> None:
    result = CliRunner().invoke(
        main, ["analyse", str(SAMPLES[1]), "--engine", "spark", "--shards", "2"]
    )
    assert result.exit_code == 2
    assert "--shards is for --engine duckdb" in result.output


def test_auto_shards_follow_the_capture_size_and_give_the_one_pass_report(
    monkeypatch, tmp_path: Path
) -> None:
    generate_fleet_capture(tmp_path / "fleet", chargers=7, days=1)
    rows = sum(pq.read_metadata(part).num_rows for part in find_parts([tmp_path / "fleet"]))
    whole = json.loads(render(analyse([tmp_path / "fleet"], shards=1), "json"))
    monkeypatch.setattr(engine, "AUTO_SHARD_FRAMES", rows // 3 + 1)
    assert engine.auto_shards([tmp_path / "fleet"]) == 3
    heard: list[str] = []
    report = analyse([tmp_path / "fleet"], progress=lambda done, total, note: heard.append(note))
    automatic = json.loads(render(report, "json"))
    for document in (whole, automatic):
        document.pop("elapsed_s", None)
    assert automatic == whole
    assert {note.split(":")[0] for note in heard} == {"shard 1/3", "shard 2/3", "shard 3/3"}
    # A capture under the size is one pass, and more shards than chargers give one per charger.
    monkeypatch.setattr(engine, "AUTO_SHARD_FRAMES", rows + 1)
    assert engine.auto_shards([tmp_path / "fleet"]) == 1
    heard.clear()
    analyse([tmp_path / "fleet"], shards=50, progress=lambda d, t, note: heard.append(note))
    assert {note.split(":")[0] for note in heard} == {f"shard {n}/7" for n in range(1, 8)}


def test_shards_on_the_command_line_are_a_number_or_auto() -> None:
    assert report_json(SAMPLES[1], "--shards", "auto") == report_json(SAMPLES[1])
    result = CliRunner().invoke(main, ["analyse", str(SAMPLES[1]), "--shards", "0"])
    assert result.exit_code == 2
    assert "'0' is neither auto nor a whole number of at least 1" in result.output
