"""Benchmark of the capture writer: appends per second (sealing included) and bytes per frame.

Realistic OCPP 1.6-J traffic from a fleet: MeterValues with Energy, Power, Current and Voltage per
phase, Heartbeats and StatusNotifications, each CALL with its CALLRESULT, recorded through the
ConnectionRecorder every engine uses. The rows are built first (into a list), then timed through
``CaptureWriter.append`` and ``close`` (which waits for the last journal to be sealed).

    .venv/bin/python bench/bench_writer.py            # 500,000 frames
    .venv/bin/python bench/bench_writer.py --quick    # 50,000 frames

Prints a table and writes ``bench/results/writer.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb
from _procs import print_table, write_result

from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import Direction
from ocpp_audit.capture.writer import CaptureWriter, _journal_line

RESULTS = Path(__file__).resolve().parent / "results" / "writer.json"
CHARGERS = 200
START_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z


class _ListSink:
    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def append(self, row: dict[str, object]) -> None:
        self.rows.append(row)


def _iso(ts_us: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_us / 1e6)) + "Z"


def _meter_values(rng: random.Random, connector_id: int, transaction_id: int, ts_us: int, wh: int):
    sampled = [
        {
            "value": str(wh),
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "unit": "Wh",
        },
        {
            "value": f"{rng.uniform(10000, 11000):.1f}",
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "unit": "W",
        },
    ]
    for phase in ("L1", "L2", "L3"):
        sampled.append(
            {
                "value": f"{rng.uniform(15, 16):.2f}",
                "context": "Sample.Periodic",
                "measurand": "Current.Import",
                "phase": phase,
                "unit": "A",
            }
        )
        sampled.append(
            {
                "value": f"{rng.uniform(228, 232):.1f}",
                "context": "Sample.Periodic",
                "measurand": "Voltage",
                "phase": f"{phase}-N",
                "unit": "V",
            }
        )
    return {"connectorId": connector_id, "transactionId": transaction_id,
            "meterValue": [{"timestamp": _iso(ts_us), "sampledValue": sampled}]}  # fmt: skip


def build_rows(frames: int, seed: int = 7) -> list[dict[str, object]]:
    """About ``frames`` message rows (CALL + CALLRESULT pairs) from a fleet, in time order."""
    rng = random.Random(seed)
    sink = _ListSink()
    recorders = [
        ConnectionRecorder(sink, f"CP{n:05d}", connection_id=f"conn-{n:05d}")
        for n in range(CHARGERS)
    ]
    energy = [rng.randint(0, 50_000) for _ in range(CHARGERS)]
    ts = START_US
    unique = 0
    while len(sink.rows) < frames:
        ts += rng.randint(50, 400)
        n = rng.randrange(CHARGERS)
        recorder = recorders[n]
        unique += 1
        uid = str(unique)
        kind = rng.random()
        if kind < 0.70:
            energy[n] += rng.randint(50, 100)
            payload = _meter_values(rng, 1, 1000 + n, ts, energy[n])
            call = json.dumps([2, uid, "MeterValues", payload], separators=(",", ":"))
            answer = f'[3,"{uid}",{{}}]'
        elif kind < 0.90:
            call = f'[2,"{uid}","Heartbeat",{{}}]'
            answer = f'[3,"{uid}",{{"currentTime":"{_iso(ts)}"}}]'
        else:
            status = rng.choice(["Available", "Preparing", "Charging", "SuspendedEV", "Finishing"])
            payload = {"connectorId": rng.randint(1, 2), "errorCode": "NoError", "status": status,
                       "timestamp": _iso(ts)}  # fmt: skip
            call = json.dumps([2, uid, "StatusNotification", payload], separators=(",", ":"))
            answer = f'[3,"{uid}",{{}}]'
        recorder.message(Direction.CP_TO_CS, call, ts=ts)
        recorder.message(Direction.CS_TO_CP, answer, ts=ts + rng.randint(2000, 30000))
    rows = sink.rows[:frames]
    rows.sort(key=lambda row: row["ts"])  # type: ignore[arg-type, return-value]
    return rows


def run(frames: int, rotate_bytes: int) -> dict[str, object]:
    rows = build_rows(frames)
    json_lines_bytes = sum(len(_journal_line(row)) for row in rows)
    raw_bytes = sum(len(row["raw"]) + 1 for row in rows)  # type: ignore[arg-type]
    folder = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    try:
        writer = CaptureWriter(folder / "capture", rotate_bytes=rotate_bytes)
        writer.start()
        started = time.perf_counter()
        for row in rows:
            writer.append(row)
        appended = time.perf_counter()
        writer.close()
        closed = time.perf_counter()

        parquet_bytes = sum(path.stat().st_size for path in writer.parts)
        pattern = str(folder / "capture" / "**" / "*.parquet")
        read_started = time.perf_counter()
        count = (
            duckdb.connect()
            .execute(f"select count(*) from read_parquet('{pattern}', hive_partitioning = true)")
            .fetchall()[0][0]
        )
        read_s = time.perf_counter() - read_started
        if count != frames:
            raise SystemExit(f"capture holds {count} rows, expected {frames}")
        return {
            "frames": frames,
            "rotate_bytes": rotate_bytes,
            "parts": len(writer.parts),
            "append_s": appended - started,
            "final_seal_s": closed - appended,
            "appends_per_s_without_final_seal": frames / (appended - started),
            "appends_per_s_sustained": frames / (closed - started),
            "parquet_bytes_per_frame": parquet_bytes / frames,
            "json_lines_bytes_per_frame": json_lines_bytes / frames,
            "raw_frame_bytes_per_frame": raw_bytes / frames,
            "parquet_to_json_lines_ratio": parquet_bytes / json_lines_bytes,
            "duckdb_count_s": read_s,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500_000, help="frames to append")
    parser.add_argument("--quick", action="store_true", help="50,000 frames")
    parser.add_argument(
        "--rotate-bytes", type=int, default=64 * 1024 * 1024, help="journal size that seals"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    frames = 50_000 if args.quick else args.frames
    result = run(frames, args.rotate_bytes)
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    rows = [
        ("frames", f"{result['frames']:,}"),
        ("parts sealed", f"{result['parts']}"),
        ("appends/s (appends only)", f"{result['appends_per_s_without_final_seal']:,.0f}"),
        ("appends/s (incl. sealing)", f"{result['appends_per_s_sustained']:,.0f}"),
        ("final seal at close", f"{result['final_seal_s']:.2f} s"),
        ("Parquet bytes/frame", f"{result['parquet_bytes_per_frame']:.1f}"),
        ("JSON lines bytes/frame", f"{result['json_lines_bytes_per_frame']:.1f}"),
        ("raw frame bytes/frame", f"{result['raw_frame_bytes_per_frame']:.1f}"),
        ("Parquet / JSON lines", f"{result['parquet_to_json_lines_ratio']:.3f}"),
        ("DuckDB count(*) over parts", f"{result['duckdb_count_s']:.3f} s"),
    ]
    print_table(rows)
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
