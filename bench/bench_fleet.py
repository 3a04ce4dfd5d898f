"""Benchmark of fleet scale: thousands of chargers connected at once through the relay, recording.

Each charger is a minimal raw WebSocket client (not the full simulator: cheaper), which boots, then
sends Heartbeats and MeterValues on a compressed clock (every ``--heartbeat-s`` / ``--meter-s``
seconds, each charger at its own phase), one CALL in flight at a time. The backend is
``bench/_backend.py`` and the recorder ``bench/_recorder.py`` (relay engine, asyncio's default loop
unless ``--uvloop``), each in its own process. Reported: the time to connect every charger, the
recorder's RSS per connected charger (RSS with the fleet connected minus RSS before, over N), the
latency of the CALLs during the load window, through the relay and (same fleet, same backend, one
after the other) straight to the backend, the p99 added by the relay, and connections dropped.

    .venv/bin/python bench/bench_fleet.py                  # 10,000 chargers, 30 s of load
    .venv/bin/python bench/bench_fleet.py --quick          # 50 chargers, 2 s of load

Raises RLIMIT_NOFILE itself (the recorder holds two sockets per charger). Prints a table and writes
``bench/results/fleet.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _procs import Child, percentile, print_table, raise_open_files, write_result
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

RESULTS = Path(__file__).resolve().parent / "results" / "fleet.json"
METER_VALUES = (
    '{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"{ts}","sampledValue":['
    '{{"value":"{wh}","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register",'
    '"unit":"Wh"}},{{"value":"11000","context":"Sample.Periodic","measurand":"Power.Active.Import",'
    '"unit":"W"}}]}}]}}'
)


class _Fleet:
    def __init__(self, chargers: int) -> None:
        self.chargers = chargers
        self.connections: list[ClientConnection | None] = [None] * chargers
        self.connect_failures = 0
        self.dropped = 0
        self.latencies: list[float] = []
        self.per_second: dict[int, list[float]] = {}  # second of the load window -> latencies
        self.calls = 0
        self.timeouts = 0


async def _call(websocket: ClientConnection, unique_id: str, action: str, payload: str) -> float:
    sent = time.perf_counter()
    await websocket.send(f'[2,"{unique_id}","{action}",{payload}]')
    await asyncio.wait_for(websocket.recv(), 30)
    return time.perf_counter() - sent


async def _connect_all(url: str, fleet: _Fleet, concurrency: int) -> float:
    """Connect and boot every charger, ``concurrency`` handshakes at a time; seconds it took."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            try:
                websocket = await connect(
                    f"{url}/FLEET{index:05d}",
                    subprotocols=["ocpp1.6"],
                    compression=None,
                    ping_interval=None,
                    open_timeout=60,
                )
                await _call(websocket, "boot", "BootNotification",
                            '{"chargePointVendor":"Bench","chargePointModel":"Raw"}')  # fmt: skip
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                fleet.connect_failures += 1
                if fleet.connect_failures <= 3:
                    print(f"charger {index} could not connect: {exc!r}", file=sys.stderr)
                return
            fleet.connections[index] = websocket

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(fleet.chargers)))
    return time.perf_counter() - started


async def _load(fleet: _Fleet, seconds: float, heartbeat_s: float, meter_s: float) -> None:
    """Every connected charger sends Heartbeats and MeterValues until ``seconds`` have passed."""
    end = time.perf_counter() + seconds
    rng = random.Random(6)

    async def one(index: int, websocket: ClientConnection) -> None:
        next_heartbeat = time.perf_counter() + rng.uniform(0, heartbeat_s)
        next_meter = time.perf_counter() + rng.uniform(0, meter_s)
        n, wh = 0, 1000
        try:
            while True:
                due = min(next_heartbeat, next_meter)
                if due >= end:
                    return
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                n += 1
                if next_meter <= next_heartbeat:
                    wh += 30
                    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    payload = METER_VALUES.format(tx=index + 1, ts=now, wh=wh)
                    latency = await _call(websocket, f"m{n}", "MeterValues", payload)
                    next_meter += meter_s
                else:
                    latency = await _call(websocket, f"h{n}", "Heartbeat", "{}")
                    next_heartbeat += heartbeat_s
                fleet.latencies.append(latency)
                second = int(seconds - (end - time.perf_counter()))
                fleet.per_second.setdefault(second, []).append(latency)
                fleet.calls += 1
        except ConnectionClosed:
            fleet.dropped += 1
        except TimeoutError:
            fleet.timeouts += 1

    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(fleet.connections) if ws is not None))


async def _close_all(fleet: _Fleet) -> None:
    async def one(websocket: ClientConnection) -> None:
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(websocket.close(), 10)

    await asyncio.gather(*(one(ws) for ws in fleet.connections if ws is not None))


def run_phase(url: str, recorder: Child | None, args: argparse.Namespace) -> dict[str, object]:
    import uvloop

    fleet = _Fleet(args.chargers)
    rss_before = recorder.rss_bytes() if recorder else 0

    async def go() -> dict[str, float]:
        connect_s = await _connect_all(url, fleet, args.concurrency)
        rss_connected = recorder.rss_bytes() if recorder else 0
        cpu_before = recorder.cpu_s() if recorder else 0.0
        await asyncio.wait_for(
            _load(fleet, args.seconds, args.heartbeat_s, args.meter_s), args.seconds + 120
        )
        cpu = (recorder.cpu_s() - cpu_before) if recorder else 0.0
        rss_loaded = recorder.rss_bytes() if recorder else 0
        await asyncio.wait_for(_close_all(fleet), 120)
        return {"connect_s": connect_s, "rss_connected": rss_connected,
                "rss_loaded": rss_loaded, "cpu_s": cpu}  # fmt: skip

    figures = uvloop.run(go())
    connected = sum(1 for ws in fleet.connections if ws is not None)
    latencies = sorted(fleet.latencies)
    result: dict[str, object] = {
        "chargers": args.chargers,
        "connected": connected,
        "connect_failures": fleet.connect_failures,
        "dropped_during_load": fleet.dropped,
        "timeouts_during_load": fleet.timeouts,
        "connect_all_s": figures["connect_s"],
        "calls": fleet.calls,
        "calls_per_s": fleet.calls / args.seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        # p99 per second of the load window: shows whether slow CALLs come in bursts (pauses)
        "p99_ms_by_second": [
            round(percentile(sorted(fleet.per_second[second]), 0.99) * 1000, 2)
            if fleet.per_second.get(second)
            else None
            for second in range(int(args.seconds) + 1)
        ],
    }
    if recorder is not None:
        result.update(
            recorder_rss_before_mb=rss_before / 1e6,
            recorder_rss_connected_mb=figures["rss_connected"] / 1e6,
            recorder_rss_after_load_mb=figures["rss_loaded"] / 1e6,
            recorder_kb_per_charger_connected=(figures["rss_connected"] - rss_before)
            / max(1, connected)
            / 1024,
            recorder_kb_per_charger_after_load=(figures["rss_loaded"] - rss_before)
            / max(1, connected)
            / 1024,
            recorder_cpu_s_during_load=figures["cpu_s"],
            recorder_cpu_us_per_call=(figures["cpu_s"] / fleet.calls * 1e6) if fleet.calls else 0,
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="load window")
    parser.add_argument("--heartbeat-s", type=float, default=30.0, help="compressed Heartbeat")
    parser.add_argument("--meter-s", type=float, default=10.0, help="compressed MeterValues")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at a time")
    parser.add_argument("--uvloop", action="store_true", help="run the recorder on uvloop")
    parser.add_argument(
        "--recorder-gc",
        choices=["default", "off", "freeze", "tuned"],
        default="tuned",
        help="the recorder's garbage collector: tuned is what ocpp-audit record does (default); "
        "the others diagnose pauses (see bench/_recorder.py)",
    )
    parser.add_argument("--no-direct", action="store_true", help="skip the direct baseline")
    parser.add_argument("--quick", action="store_true", help="50 chargers, 2 s of load")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:  # tiny defaults; options given explicitly still win
        parser.set_defaults(chargers=50, seconds=2.0, heartbeat_s=1.0, meter_s=0.5)
        args = parser.parse_args(argv)
    requested = args.chargers
    limit = raise_open_files(3 * args.chargers + 1024)
    # The recorder holds two sockets per charger (charger side, backend side) and inherits this
    # limit; without CAP_SYS_RESOURCE the hard limit bounds the fleet one recorder process can hold.
    if 2 * args.chargers + 256 > limit:
        args.chargers = (limit - 256) // 2
        print(f"open-file limit {limit}: fleet capped at {args.chargers} chargers", file=sys.stderr)

    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    phases: dict[str, dict[str, object]] = {}
    try:
        with Child("_backend.py", "--uvloop") as backend:
            backend_url = f"ws://127.0.0.1:{backend.port}"
            extra = ["--uvloop"] if args.uvloop else []
            extra += ["--gc", args.recorder_gc]
            with Child("_recorder.py", "--engine", "relay", "--upstream", backend_url,
                       "--capture", str(folder / "capture"), *extra, timeout_s=60) as recorder:  # fmt: skip
                phases["relay"] = run_phase(f"ws://127.0.0.1:{recorder.port}", recorder, args)
            if not args.no_direct:
                phases["direct"] = run_phase(backend_url, None, args)
        frames = _count_frames(folder / "capture")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    relay = phases["relay"]
    result: dict[str, object] = {
        "relay": relay,
        "direct": phases.get("direct"),
        "recorded_rows": frames,
        "recorder_loop": "uvloop" if args.uvloop else "asyncio",
        "recorder_gc": args.recorder_gc,
        "requested_chargers": requested,
        "settings": {
            "seconds": args.seconds,
            "heartbeat_s": args.heartbeat_s,
            "meter_s": args.meter_s,
            "concurrency": args.concurrency,
            "open_file_limit": limit,
        },
        "targets": {"recorder_kb_per_charger": 40, "p99_added_ms": 10, "dropped": 0},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    if "direct" in phases:
        result["p99_added_ms"] = relay["p99_ms"] - phases["direct"]["p99_ms"]  # type: ignore[operator]
        result["p50_added_ms"] = relay["p50_ms"] - phases["direct"]["p50_ms"]  # type: ignore[operator]
    rows = [
        ("chargers", f"{args.chargers:,}"),
        ("connected through relay", f"{relay['connected']:,}"),
        ("connect + boot all", f"{relay['connect_all_s']:.1f} s"),
        ("recorder RSS before", f"{relay['recorder_rss_before_mb']:.0f} MB"),
        ("recorder RSS connected", f"{relay['recorder_rss_connected_mb']:.0f} MB"),
        ("KB per charger (connected)", f"{relay['recorder_kb_per_charger_connected']:.1f}"),
        ("KB per charger (after load)", f"{relay['recorder_kb_per_charger_after_load']:.1f}"),
        ("CALLs/s under load", f"{relay['calls_per_s']:,.0f}"),
        ("relay p50 / p99", f"{relay['p50_ms']:.2f} / {relay['p99_ms']:.2f} ms"),
        ("recorder CPU per CALL", f"{relay['recorder_cpu_us_per_call']:.0f} us"),
        (
            "dropped / timeouts / failed",
            f"{relay['dropped_during_load']} / "
            f"{relay['timeouts_during_load']} / {relay['connect_failures']}",
        ),
        ("rows recorded", f"{frames:,}"),
    ]
    if "direct" in phases:
        direct = phases["direct"]
        rows += [
            ("direct p50 / p99", f"{direct['p50_ms']:.2f} / {direct['p99_ms']:.2f} ms"),
            ("p99 added by the relay", f"{result['p99_added_ms']:.2f} ms"),
        ]
    print_table(rows, value_width=22)
    write_result(result, args.output)
    return 0


def _count_frames(capture: Path) -> int:
    import duckdb

    if not any(capture.glob("frames/**/*.parquet")):
        return 0
    pattern = str(capture / "frames" / "**" / "*.parquet")
    query = f"select count(*) from read_parquet('{pattern}', hive_partitioning = true)"
    return duckdb.connect().execute(query).fetchone()[0]  # type: ignore[index]


if __name__ == "__main__":
    raise SystemExit(main())
