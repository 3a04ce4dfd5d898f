"""Benchmark of mirrors: what the charger's round trip costs with 0, 1 and 3 mirrors, in one run.

Four backends (``bench/_backend.py``, each its own process): the primary and three mirrors. Three
relay recorders (``bench/_recorder.py``, each its own process) in front of the primary, feeding 0, 1
and 3 of the mirrors. The same chargers (sequential Heartbeat CALL -> CALLRESULT round trips, each
over its own WebSocket, on 127.0.0.1) measure each recorder in turn, in interleaved rounds so that a
busy machine weighs on every configuration alike; the figures are the round trips of all rounds
together. Every loop is bounded (round trips per charger and seconds per measurement).

    .venv/bin/python bench/bench_mirror.py                # 1 and 10 chargers, 5 rounds of 2 s
    .venv/bin/python bench/bench_mirror.py --quick        # 1 charger, 2 rounds of 0.5 s
    .venv/bin/python bench/bench_mirror.py --pause-ms 10  # each charger pauses 10 ms between CALLs

Prints a table (added latency = the configuration's median and p99 minus those of 0 mirrors) and
writes ``bench/results/mirror.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _procs import Child, percentile, print_table, write_result
from websockets.asyncio.client import connect

RESULTS = Path(__file__).resolve().parent / "results" / "mirror.json"
MIRROR_COUNTS = (0, 1, 3)
MAX_ROUND_TRIPS = 200_000  # per charger and measurement: the loop's bound besides the time


async def _charger(url: str, index: int, seconds: float, pause: float, out: list[float]) -> None:
    async with connect(
        f"{url}/MIRROR{index:04d}", subprotocols=["ocpp1.6"], ping_interval=None
    ) as ws:
        for n in range(20):  # warm-up: the mirrors' connections open, the caches fill
            await ws.send(f'[2,"w{index}-{n}","Heartbeat",{{}}]')
            await asyncio.wait_for(ws.recv(), 10)
        end = time.perf_counter() + seconds
        for n in range(MAX_ROUND_TRIPS):
            sent = time.perf_counter()
            if sent >= end:
                break
            await ws.send(f'[2,"{index}-{n}","Heartbeat",{{}}]')
            await asyncio.wait_for(ws.recv(), 10)
            out.append(time.perf_counter() - sent)
            if pause:
                await asyncio.sleep(pause)


async def _measure(url: str, chargers: int, seconds: float, pause: float) -> list[float]:
    out: list[float] = []
    await asyncio.wait_for(
        asyncio.gather(*(_charger(url, i, seconds, pause, out) for i in range(chargers))),
        timeout=seconds + 60,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 charger, 2 rounds of 0.5 s")
    parser.add_argument("--chargers", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=0.0,
        help="each charger waits this long after an answer before its next CALL (0: at once, "
        "which keeps the recorder's loop saturated; real chargers send a CALL every few seconds)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.chargers, args.rounds, args.seconds = [1], 2, 0.5

    folder = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    children: list[Child] = []
    try:
        primary = Child("_backend.py")
        children.append(primary)
        mirrors = [Child("_backend.py") for _ in range(max(MIRROR_COUNTS))]
        children += mirrors
        recorders: dict[int, Child] = {}
        for count in MIRROR_COUNTS:
            mirror_args = [
                arg for m in mirrors[:count] for arg in ("--mirror", f"ws://127.0.0.1:{m.port}")
            ]
            recorders[count] = Child(
                "_recorder.py",
                "--engine",
                "relay",
                "--upstream",
                f"ws://127.0.0.1:{primary.port}",
                "--capture",
                str(folder / f"mirrors-{count}"),
                *mirror_args,
            )
            children.append(recorders[count])
        results = []
        for chargers in args.chargers:
            latencies: dict[int, list[float]] = {count: [] for count in MIRROR_COUNTS}
            cpu = dict.fromkeys(MIRROR_COUNTS, 0.0)
            for _ in range(args.rounds):
                for count, recorder in recorders.items():
                    before = recorder.cpu_s()
                    latencies[count] += asyncio.run(
                        _measure(
                            f"ws://127.0.0.1:{recorder.port}",
                            chargers,
                            args.seconds,
                            args.pause_ms / 1000,
                        )
                    )
                    cpu[count] += recorder.cpu_s() - before
            base = sorted(latencies[0])
            for count in MIRROR_COUNTS:
                values = sorted(latencies[count])
                p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
                results.append(
                    {
                        "chargers": chargers,
                        "mirrors": count,
                        "round_trips": len(values),
                        "p50_ms": round(p50, 4),
                        "p99_ms": round(p99, 4),
                        "added_p50_ms": round(p50 - percentile(base, 0.5) * 1000, 4),
                        "added_p99_ms": round(p99 - percentile(base, 0.99) * 1000, 4),
                        "recorder_cpu_us_per_round_trip": round(
                            cpu[count] / max(1, len(values)) * 1e6, 1
                        ),
                    }
                )
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(folder, ignore_errors=True)

    rows = []
    for r in results:
        name = f"{r['chargers']} charger(s), {r['mirrors']} mirror(s)"
        rows.append(
            (
                name,
                f"p50 {r['p50_ms']:.3f} ms (+{r['added_p50_ms']:.3f}), "
                f"p99 {r['p99_ms']:.3f} ms (+{r['added_p99_ms']:.3f}), "
                f"{r['recorder_cpu_us_per_round_trip']:.0f} us CPU, n={r['round_trips']}",
            )
        )
    print_table(rows, value_width=70)
    write_result(
        {
            "benchmark": "mirror",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "rounds": args.rounds,
            "pause_ms": args.pause_ms,
            "seconds_per_measurement": args.seconds,
            "results": results,
        },
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
