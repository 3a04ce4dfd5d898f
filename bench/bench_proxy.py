"""Benchmark of the recording engines: CALL/answer round trips direct vs through relay vs mitmproxy.

The same client (N chargers, each doing sequential Heartbeat CALL -> CALLRESULT round trips over
its own WebSocket) and the same backend (``bench/_backend.py``, its own process, uvloop) are measured
side by side in one run: straight to the backend, through the relay engine, and through the
mitmproxy engine, both recording into a capture. Each recorder runs in its own process
(``bench/_recorder.py``) so its CPU time per round trip is read from /proc. The relay is measured on
asyncio's default loop and on uvloop.

    .venv/bin/python bench/bench_proxy.py            # N = 1, 10, 100; 3 s per measurement
    .venv/bin/python bench/bench_proxy.py --quick    # N = 1, 4; 0.5 s per measurement
    .venv/bin/python bench/bench_proxy.py --compression both   # permessage-deflate negotiated

By default the chargers offer no compression (as most real chargers): no hop is deflated on any
path. ``--compression charger``: the chargers offer permessage-deflate, the backend declines it (the
relay mirrors the backend's choice on the charger's hop: nothing deflated). ``--compression both``:
the backend accepts it (websockets' default): direct and mitmproxy (which passes the handshake
through) deflate one hop, the relay each of its two hops (RFC 7692: per hop), so it inflates and
deflates every message once more. The charger's hop's Sec-WebSocket-Extensions is in the JSON.

Prints a table and writes ``bench/results/proxy.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _procs import Child, percentile, raise_open_files, write_result
from websockets.asyncio.client import connect

RESULTS = Path(__file__).resolve().parent / "results" / "proxy.json"
# (name, engine or None for direct, recorder on uvloop)
TARGETS = (
    ("direct", None, False),
    ("relay", "relay", False),
    ("relay+uvloop", "relay", True),
    ("mitmproxy", "mitmproxy", False),
)


async def _charger(
    url: str,
    index: int,
    window: tuple[float, float],
    max_round_trips: int,
    out: list[float],
    compression: str | None = None,
    extensions: list[str] | None = None,
) -> int:
    """Sequential round trips until the window ends; latencies (s) of those sent inside the
    window go to ``out``. Returns how many round trips were made in all (warm-up included)."""
    window_start, window_end = window
    async with connect(
        f"{url}/BENCH{index:04d}",
        subprotocols=["ocpp1.6"],
        compression=compression,
        ping_interval=None,
    ) as websocket:
        if extensions is not None and index == 0:  # what the charger's hop negotiated
            assert websocket.response is not None
            extensions.append(websocket.response.headers.get("Sec-WebSocket-Extensions", ""))
        n = 0
        while n < max_round_trips:
            sent = time.perf_counter()  # uvloop's loop.time() ticks in whole milliseconds
            if sent >= window_end:
                break
            await websocket.send(f'[2,"{index}-{n}","Heartbeat",{{}}]')
            await asyncio.wait_for(websocket.recv(), 10)
            if sent >= window_start:
                out.append(time.perf_counter() - sent)
            n += 1
        return n


async def _clients(
    url: str,
    chargers: int,
    warmup_s: float,
    measure_s: float,
    out: list[float],
    compression: str | None,
    extensions: list[str],
) -> int:
    window = (time.perf_counter() + warmup_s, time.perf_counter() + warmup_s + measure_s)
    counts = await asyncio.wait_for(
        asyncio.gather(
            *(
                _charger(url, i, window, 10_000_000, out, compression, extensions)
                for i in range(chargers)
            )
        ),
        timeout=warmup_s + measure_s + 60,
    )
    return sum(counts)


def measure(
    url: str,
    recorder: Child | None,
    chargers: int,
    warmup_s: float,
    measure_s: float,
    compression: str | None = None,
) -> dict[str, object]:
    """One run of ``chargers`` clients (on uvloop) against ``url``."""
    import uvloop

    cpu_before = recorder.cpu_s() if recorder else 0.0
    latencies: list[float] = []
    extensions: list[str] = []
    total = uvloop.run(
        _clients(url, chargers, warmup_s, measure_s, latencies, compression, extensions)
    )
    # CPU is read around the whole run, warm-up and handshakes included: divide by every trip.
    cpu = (recorder.cpu_s() - cpu_before) if recorder else 0.0
    latencies.sort()
    return {
        "chargers": chargers,
        "round_trips": len(latencies),
        "round_trips_per_s": len(latencies) / measure_s,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "recorder_cpu_us_per_round_trip": (cpu / total * 1e6) if recorder and total else 0.0,
        "recorder_rss_mb": (recorder.rss_bytes() / 1e6) if recorder else 0.0,
        "charger_hop_extensions": extensions[0] if extensions else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="N = 1, 4; 0.5 s windows")
    parser.add_argument(
        "--compression",
        choices=["none", "charger", "both"],
        default="none",
        help="permessage-deflate offered by nobody; by the chargers only (the backend declines); "
        "by the chargers and accepted by the backend",
    )
    parser.add_argument(
        "--targets", nargs="+", default=[name for name, _, _ in TARGETS],
        choices=[name for name, _, _ in TARGETS],
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:  # tiny defaults; options given explicitly still win
        parser.set_defaults(chargers=[1, 4], seconds=0.5, warmup=0.2)
        args = parser.parse_args(argv)
    raise_open_files(4096)

    folder = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    runs: list[dict[str, object]] = []
    try:
        compression = "deflate" if args.compression != "none" else None
        backend_extra = ["--compression"] if args.compression == "both" else []
        with Child("_backend.py", "--uvloop", *backend_extra) as backend:
            backend_url = f"ws://127.0.0.1:{backend.port}"
            for name, engine, uvloop in TARGETS:
                if name not in args.targets:
                    continue
                recorder: Child | None = None
                if engine is not None:
                    extra = ["--uvloop"] if uvloop else []
                    recorder = Child(
                        "_recorder.py", "--engine", engine, "--upstream", backend_url,
                        "--capture", str(folder / name), *extra, timeout_s=60,
                    )  # fmt: skip
                try:
                    url = f"ws://127.0.0.1:{recorder.port}" if recorder else backend_url
                    for chargers in args.chargers:
                        run = measure(
                            url, recorder, chargers, args.warmup, args.seconds, compression
                        )
                        run["target"] = name
                        runs.append(run)
                        print(
                            f"{name:<13} N={chargers:<4} {run['round_trips_per_s']:>9,.0f} rt/s  "
                            f"p50 {run['p50_ms']:.3f} ms  p99 {run['p99_ms']:.3f} ms  "
                            f"cpu {run['recorder_cpu_us_per_round_trip']:.0f} us/rt",
                            flush=True,
                        )
                finally:
                    if recorder is not None:
                        recorder.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def find(target: str, chargers: int) -> dict[str, object] | None:
        return next((r for r in runs if r["target"] == target and r["chargers"] == chargers), None)

    ratios: dict[str, dict[str, float]] = {}
    for chargers in args.chargers:
        direct, mitm = find("direct", chargers), find("mitmproxy", chargers)
        entry: dict[str, float] = {}
        for relay_name in ("relay", "relay+uvloop"):
            relay = find(relay_name, chargers)
            if relay is None:
                continue
            if mitm:
                entry[f"{relay_name}_over_mitmproxy_throughput"] = (
                    relay["round_trips_per_s"] / mitm["round_trips_per_s"]  # type: ignore[operator]
                )
            if direct:
                entry[f"direct_over_{relay_name}_throughput"] = (
                    direct["round_trips_per_s"] / relay["round_trips_per_s"]  # type: ignore[operator]
                )
                entry[f"{relay_name}_added_p50_ms"] = relay["p50_ms"] - direct["p50_ms"]  # type: ignore[operator]
        ratios[f"N={chargers}"] = entry

    result = {
        "runs": runs,
        "ratios": ratios,
        "seconds_per_run": args.seconds,
        "compression": args.compression,
        "targets": {
            "relay_over_mitmproxy_throughput_at_N100": ">= 5",
            "direct_over_relay_throughput_at_N100": "<= 2.5",
            "relay_added_p50_ms_at_N1": "<= 0.25",
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    print()
    header = f"{'target':<13} {'N':>4} {'rt/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/rt':>10}  extensions"
    print(header)
    for run in runs:
        print(
            f"{run['target']:<13} {run['chargers']:>4} {run['round_trips_per_s']:>10,.0f} "
            f"{run['p50_ms']:>8.3f} {run['p99_ms']:>8.3f} "
            f"{run['recorder_cpu_us_per_round_trip']:>10.0f}  {run['charger_hop_extensions'] or '-'}"
        )
    for key, entry in ratios.items():
        print(key, ", ".join(f"{name} {value:.2f}" for name, value in entry.items()))
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
