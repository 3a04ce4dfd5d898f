"""Smoke runs of the benchmarks at tiny sizes, so the scripts cannot rot.

Each benchmark runs in a subprocess as a user would run it, writing its JSON to a temporary folder;
the tests check that the JSON holds the figures the README quotes. No timing is asserted: these are
not performance tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ocpp_audit.capture.schema import META_SCHEMA_CHECK, arrow_schema
from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
from ocpp_audit.protocol.schema_validation import checker_fingerprint
from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _run(script: str, *arguments: str, seconds: float = 60) -> str:
    completed = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout(seconds),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_synthetic_capture_is_a_valid_capture(tmp_path: Path) -> None:
    stats = generate_fleet_capture(tmp_path / "fleet", chargers=3, days=2)
    assert len(stats.parts) == 2
    table = pq.read_table(stats.parts[0])
    assert table.schema.equals(arrow_schema())
    # the capture's version metadata, and the checker that judged each payload as it was sealed
    expected = {**arrow_schema().metadata, META_SCHEMA_CHECK: checker_fingerprint().encode()}
    assert table.schema.metadata == expected
    # every message payload judged: the synthetic chargers send valid payloads only
    messages = table.filter(pc.equal(table["event"], "message"))
    assert set(messages["schema_error"].to_pylist()) == {""}
    # in the writer's order: one charger's rows together, in time order
    keys = list(zip(table["charge_point_id"].to_pylist(), table["ts"].to_pylist(), strict=True))
    assert keys == sorted(keys)
    total = sum(pq.read_metadata(part).num_rows for part in stats.parts)
    assert total == stats.frames
    # one connection per charger: seq runs 0, 1, 2, ... across the days, without holes
    rows = pq.read_table(stats.parts, columns=["charge_point_id", "seq"]).to_pylist()
    for charger in ("SYN00000", "SYN00002"):
        seqs = sorted(row["seq"] for row in rows if row["charge_point_id"] == charger)
        assert seqs == list(range(len(seqs)))
    # every CALL has its CALLRESULT
    messages = pq.read_table(stats.parts, columns=["message_type", "unique_id"]).to_pylist()
    calls = {row["unique_id"] for row in messages if row["message_type"] == 2}
    results = {row["unique_id"] for row in messages if row["message_type"] == 3}
    assert calls and calls == results


def test_bench_writer_quick(tmp_path: Path) -> None:
    output = tmp_path / "writer.json"
    _run("bench_writer.py", "--frames", "3000", "--output", str(output))
    result = json.loads(output.read_text())
    assert result["frames"] == 3000
    for key in (
        "appends_per_s_sustained",
        "parquet_to_json_lines_ratio",
        "parquet_bytes_per_frame",
    ):
        assert result[key] > 0


def test_bench_analyser_quick(tmp_path: Path) -> None:
    output = tmp_path / "analyser.json"
    arguments = ("--chargers", "3", "--days", "1", "--cache-dir", str(tmp_path), "--output")
    stdout = _run("bench_analyser.py", *arguments, str(output), seconds=90)
    assert "rule suite / scan floor" in stdout
    result = json.loads(output.read_text())
    assert result["capture"]["frames"] > 1000
    assert result["rule_suite"]["chargers"] == 3
    for key in ("wall_s", "work_s", "peak_rss_mb"):
        assert result["rule_suite"][key] > 0
        assert result["scan_floor"][key] > 0
    assert result["scan_floor"]["rows"] == result["capture"]["frames"]
    # cached for the next run, with how it was made
    stamp = json.loads((tmp_path / "fleet-3x1" / "generated.json").read_text())
    assert stamp["frames"] == result["capture"]["frames"]


def test_bench_proxy_quick(tmp_path: Path) -> None:
    output = tmp_path / "proxy.json"
    arguments = ("--quick", "--chargers", "1", "4", "--seconds", "0.3", "--warmup", "0.1")
    _run("bench_proxy.py", *arguments, "--output", str(output), seconds=120)
    result = json.loads(output.read_text())
    targets = {(run["target"], run["chargers"]) for run in result["runs"]}
    assert targets == {
        (target, n) for target in ("direct", "relay", "relay+uvloop", "mitmproxy") for n in (1, 4)
    }
    for run in result["runs"]:
        assert run["round_trips"] > 0
        assert run["p99_ms"] >= run["p50_ms"] > 0
        if run["target"] != "direct":
            assert run["recorder_cpu_us_per_round_trip"] > 0
    assert "relay_over_mitmproxy_throughput" in result["ratios"]["N=4"]


def test_bench_fleet_quick(tmp_path: Path) -> None:
    output = tmp_path / "fleet.json"
    arguments = ("--quick", "--chargers", "20", "--seconds", "1")
    _run("bench_fleet.py", *arguments, "--output", str(output), seconds=90)
    result = json.loads(output.read_text())
    relay = result["relay"]
    assert relay["connected"] == 20
    assert relay["dropped_during_load"] == 0
    assert relay["calls"] > 0
    assert relay["recorder_kb_per_charger_connected"] is not None
    assert result["recorded_rows"] >= 2 * relay["calls"]
    assert "p99_added_ms" in result


def test_bench_mirror_quick(tmp_path: Path) -> None:
    output = tmp_path / "mirror.json"
    _run("bench_mirror.py", "--quick", "--output", str(output), seconds=120)
    results = json.loads(output.read_text())["results"]
    assert [r["mirrors"] for r in results] == [0, 1, 3]
    assert all(r["round_trips"] > 0 and "added_p50_ms" in r for r in results)
