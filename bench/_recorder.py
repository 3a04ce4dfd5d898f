"""A recording engine in its own process, for the benchmarks (so its CPU and RSS can be measured).

Runs ``create_engine(options, writer)`` (relay or mitmproxy) in front of ``--upstream``, recording into
``--capture``; prints ``PORT <n>`` on stdout once listening; on SIGTERM or SIGINT stops the engine
and closes the writer. ``--uvloop`` runs it on uvloop instead of asyncio's default loop; ``--gc``
chooses the garbage collector policy (default ``tuned``: what ``ocpp-audit record`` does).
``--mirror URL`` (repeatable) feeds read-only mirrors as ``record --mirror`` does.

    .venv/bin/python bench/_recorder.py --engine relay --upstream ws://127.0.0.1:9000 \
        --capture /tmp/capture [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import resource
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocpp_audit.capture.writer import CaptureWriter
from ocpp_audit.recorder.engines import create_engine
from ocpp_audit.recorder.options import MirrorSpec, RecordOptions
from ocpp_audit.recorder.service import gc_maintenance, tune_gc


async def _main(args: argparse.Namespace) -> None:
    options = RecordOptions(
        capture_dir=args.capture,
        upstream=args.upstream,
        engine=args.engine,
        listen_host="127.0.0.1",
        listen_port=0,
        mirrors=tuple(MirrorSpec.parse(url, n) for n, url in enumerate(args.mirror, 1)),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    with CaptureWriter(args.capture) as writer:
        mirrors = None
        if options.mirrors:
            from ocpp_audit.recorder.mirror import MirrorHub

            mirrors = MirrorHub(options, writer)
        engine = create_engine(options, writer, mirrors)
        await engine.start()
        print(f"PORT {engine.port}", flush=True)
        freezer = None
        if args.gc == "freeze":
            freezer = asyncio.create_task(_freeze_every(5.0))
        elif args.gc == "tuned":  # what `ocpp-audit record` does (RecorderService(tune_gc=True))
            tune_gc()
            freezer = asyncio.create_task(gc_maintenance())
        await stopping.wait()
        if freezer is not None:
            freezer.cancel()
        await engine.stop()


async def _freeze_every(seconds: float) -> None:
    """Move every object alive now to the permanent generation, so full collections skip them."""
    while True:
        await asyncio.sleep(seconds)
        gc.freeze()


def _log_gc_pauses(path: str) -> None:
    """Log each collection over 5 ms: wall time, and CPU time (not stretched by a busy machine)."""
    log = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    started = [0.0, 0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = time.perf_counter(), time.process_time()
            return
        wall_ms = (time.perf_counter() - started[0]) * 1000
        cpu_ms = (time.process_time() - started[1]) * 1000
        if wall_ms >= 5:
            log.write(f"{time.time():.3f} gen{info['generation']} {wall_ms:.1f} {cpu_ms:.1f}\n")

    gc.callbacks.append(callback)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["relay", "mitmproxy"], default="relay")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--capture", type=Path, required=True)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--mirror", action="append", default=[], metavar="URL")
    parser.add_argument(
        "--gc",
        choices=["default", "off", "freeze", "tuned"],
        default="tuned",
        help="garbage collector: as is; disabled (diagnosis only); gc.freeze() every 5 s; "
        "the recorder's own policy (service.tune_gc)",
    )
    args = parser.parse_args()
    # BENCH_RECORDER_GC_LOG=<file>: one line per garbage collection over 5 ms (time, generation, wall ms, CPU ms)
    gc_log_path = os.environ.get("BENCH_RECORDER_GC_LOG")
    if gc_log_path:
        _log_gc_pauses(gc_log_path)
    if args.gc == "off":
        gc.disable()
    # BENCH_RECORDER_PROFILE=<file>: cProfile the recorder into <file> (pstats format)
    profile_path = os.environ.get("BENCH_RECORDER_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.uvloop:
        import uvloop

        uvloop.run(_main(args))
    else:
        asyncio.run(_main(args))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)


if __name__ == "__main__":
    main()
