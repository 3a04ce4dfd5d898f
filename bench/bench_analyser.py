"""Benchmark of the analyser: the full rule suite on a synthetic fleet capture, against the scan floor.

The capture (1,000 chargers x 7 days, about 10.5 M frames by default) is generated without sockets by
``ocpp_audit.lab.simulator.synthetic`` and cached under ``bench/results/fleet-<chargers>x<days>/``, so
reruns skip generation. Each measurement runs in its own subprocess, whose peak RSS comes from
``os.wait4`` (the child's ``getrusage``):

- scan floor: DuckDB reading every ``raw`` value of the same parts (``sum(length(raw))``);
- rule suite: ``ocpp_audit.analyser.engine.analyse`` with every packaged rule (what
  ``ocpp-audit analyse`` runs).

    .venv/bin/python bench/bench_analyser.py            # 1,000 chargers x 7 days
    .venv/bin/python bench/bench_analyser.py --quick    # 20 chargers x 2 days
    .venv/bin/python bench/bench_analyser.py --chargers 100 --engine spark   # Spark local[2]

Prints a table and writes ``bench/results/analyser.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _procs import print_table, write_result  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"

SCAN_FLOOR = """
import duckdb, json, sys, time
started = time.perf_counter()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # it would print into our JSON line
pattern = sys.argv[1]
rows, chars = con.execute(
    f"select count(*), sum(length(raw)) from read_parquet('{pattern}', hive_partitioning = true)"
).fetchone()
print(json.dumps({"work_s": time.perf_counter() - started, "rows": rows, "raw_chars": chars}))
"""

# The floor of issue 16: reading the columns the rules need and parsing every payload's JSON once.
NEEDED_FLOOR = """
import duckdb, json, sys, time
started = time.perf_counter()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # it would print into our JSON line
pattern = sys.argv[1]
rows, *_ = con.execute(
    "select count(*), sum(seq), count(distinct connection_id), max(ts), max(charge_point_id),"
    " count(distinct unique_id), max(action), max(direction), max(message_type),"
    " sum(len(json_keys(try_cast(payload as json))))"
    f" from read_parquet('{pattern}', hive_partitioning = true) where event = 'message'"
).fetchone()
print(json.dumps({"work_s": time.perf_counter() - started, "rows": rows}))
"""

RULE_SUITE = """
import json, sys, time
from pathlib import Path
from ocpp_audit.analyser.engine import analyse
started = time.perf_counter()
exclude = [r for r in sys.argv[2].split(",") if r]
if sys.argv[5] == "spark":  # the JVM's start is part of the time, as for a user
    from ocpp_audit.analyser.spark import analyse_spark
    report = analyse_spark([Path(sys.argv[1])], exclude=exclude, memory_limit=sys.argv[3] or None,
                           spark_master=sys.argv[6])
else:
    report = analyse([Path(sys.argv[1])], exclude=exclude, memory_limit=sys.argv[3] or None,
                     shards=None if sys.argv[4] == "auto" else int(sys.argv[4]))
doc = report.to_dict()
slowest = sorted(getattr(report, "rule_seconds", {}).items(), key=lambda item: -item[1])
print(json.dumps({"work_s": time.perf_counter() - started,
                  "chargers": len(doc.get("chargers", [])), "exit_status": report.exit_status,
                  "slowest_rules_s": dict(slowest[:8])}))
"""


def _measure(code: str, *arguments: str, timeout_s: float) -> dict[str, object]:
    """Run ``code`` in a fresh Python; its wall time, CPU time and peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = started + timeout_s
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            _, status, usage = os.wait4(child.pid, 0)
            print(f"measurement stopped at the {timeout_s:.0f} s timeout", file=sys.stderr)
            return {
                "timed_out": True,
                "wall_s": time.perf_counter() - started,
                "work_s": time.perf_counter() - started,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
            }
        time.sleep(0.05)
    wall = time.perf_counter() - started
    stdout = child.stdout.read() if child.stdout else ""
    stderr = child.stderr.read() if child.stderr else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"measurement failed ({child.returncode}):\n{stderr[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
        **json.loads(stdout.strip().splitlines()[-1]),
    }


def ensure_capture(
    chargers: int, days: int, regenerate: bool = False, cache_dir: Path = RESULTS_DIR
) -> tuple[Path, dict]:
    """The cached synthetic capture (generated when missing) and how it was made."""
    from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture

    folder = cache_dir / f"fleet-{chargers}x{days}"
    stamp = folder / "generated.json"
    if stamp.exists() and not regenerate:
        info = json.loads(stamp.read_text())
        info["generation_cached"] = True
        return folder, info
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    stats = generate_fleet_capture(folder, chargers=chargers, days=days)
    elapsed = time.perf_counter() - started
    size = sum(path.stat().st_size for path in stats.parts)
    info = {
        "chargers": chargers,
        "days": days,
        "frames": stats.frames,
        "parts": len(stats.parts),
        "capture_bytes": size,
        "generation_s": elapsed,
        "generation_frames_per_s": stats.frames / elapsed,
    }
    stamp.write_text(json.dumps(info, indent=2) + "\n")
    info["generation_cached"] = False
    return folder, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="20 chargers x 2 days")
    parser.add_argument("--regenerate", action="store_true", help="ignore the cached capture")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="per measurement, seconds (then reported)"
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="RULE", help="leave a rule out (repeat)"
    )
    parser.add_argument(
        "--memory-limit", help="DuckDB memory cap for the rule suite, as analyse --memory-limit"
    )
    parser.add_argument(
        "--shards",
        default="auto",
        help="judge the chargers in N groups (analyse --shards; default auto, as analyse)",
    )
    parser.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="spark: analyse --engine spark (needs the spark extra and Java 17)",
    )
    parser.add_argument("--spark-master", default="local[2]", help="with --engine spark")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "analyser.json")
    parser.add_argument(
        "--cache-dir", type=Path, default=RESULTS_DIR, help="where generated captures are kept"
    )
    args = parser.parse_args(argv)
    chargers, days = (20, 2) if args.quick else (args.chargers, args.days)

    capture, info = ensure_capture(chargers, days, args.regenerate, args.cache_dir)
    pattern = str(capture / "frames" / "**" / "*.parquet")
    scan = _measure(SCAN_FLOOR, pattern, timeout_s=args.timeout)
    needed = _measure(NEEDED_FLOOR, pattern, timeout_s=args.timeout)
    suite = _measure(
        RULE_SUITE,
        str(capture),
        ",".join(args.exclude),
        args.memory_limit or "",
        str(args.shards),
        args.engine,
        args.spark_master,
        timeout_s=args.timeout,
    )
    result: dict[str, object] = {
        "capture": info,
        "excluded_rules": args.exclude,
        "memory_limit": args.memory_limit,
        "shards": args.shards,
        "engine": args.engine if args.engine == "duckdb" else f"spark {args.spark_master}",
        "scan_floor": scan,
        "needed_columns_floor": needed,
        "rule_suite": suite,
        # process wall times (interpreter start included) and in-process times of the work itself
        "suite_to_scan_ratio": suite["wall_s"] / scan["wall_s"],  # type: ignore[operator]
        "suite_to_scan_ratio_work": suite["work_s"] / scan["work_s"],  # type: ignore[operator]
        "suite_to_needed_floor_ratio": suite["wall_s"] / needed["wall_s"],  # type: ignore[operator]
        "frames_per_s_rule_suite": info["frames"] / suite["wall_s"],  # type: ignore[operator]
        "targets": {"rule_suite_wall_s": 60, "suite_to_scan_ratio": 5, "peak_rss_mb": 4096},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    rows = [
        ("frames", f"{info['frames']:,}"),
        ("chargers x days", f"{chargers} x {days}"),
        ("capture size", f"{info['capture_bytes'] / 1e6:,.0f} MB"),
        (
            "generation",
            "cached" if info["generation_cached"] else f"{info['generation_s']:.1f} s",
        ),
        ("scan floor wall (sum length raw)", f"{scan['wall_s']:.2f} s"),
        ("scan floor work (in process)", f"{scan['work_s']:.2f} s"),
        ("scan floor peak RSS", f"{scan['peak_rss_mb']:,.0f} MB"),
        ("needed columns + JSON once, wall", f"{needed['wall_s']:.2f} s"),
        ("engine", result["engine"]),
        ("shards", str(args.shards)),
        (
            "rule suite wall",
            f"{suite['wall_s']:.2f} s" + (" (timeout)" if suite.get("timed_out") else ""),
        ),
        ("rule suite work (in process)", f"{suite['work_s']:.2f} s"),
        ("rule suite CPU", f"{suite['cpu_s']:.2f} s"),
        ("rule suite peak RSS", f"{suite['peak_rss_mb']:,.0f} MB"),
        ("rule suite / scan floor (process)", f"{result['suite_to_scan_ratio']:.1f}x"),
        ("rule suite / scan floor (work)", f"{result['suite_to_scan_ratio_work']:.1f}x"),
        ("rule suite / needed-columns floor", f"{result['suite_to_needed_floor_ratio']:.1f}x"),
    ]
    print_table(rows)
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
