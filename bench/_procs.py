"""Shared helpers of the benchmarks: child processes that print ``PORT <n>``, /proc figures."""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def raise_open_files(wanted: int) -> int:
    """Raise RLIMIT_NOFILE toward ``wanted`` (up to the hard limit, or beyond it as root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            wanted = hard
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Child:
    """A benchmark helper process (``_backend.py``, ``_recorder.py``) that prints ``PORT <n>``."""

    def __init__(self, script: str, *arguments: str, timeout_s: float = 30) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / script), *arguments],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = 0
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("PORT "):
                    self.port = int(line.split()[1])
                    return
                if not line and self.process.poll() is not None:
                    break
        self.stop()
        raise RuntimeError(f"{script} did not start listening within {timeout_s} s")

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        """User + system CPU time the process used so far (/proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        """Resident set size now (/proc/<pid>/statm)."""
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE_SIZE

    def stop(self, timeout_s: float = 30) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def print_table(rows: list[tuple[str, str]], value_width: int = 14) -> None:
    """Name/value rows, aligned, as every benchmark prints its summary."""
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>{value_width}}")


def write_result(result: dict, output: Path) -> None:
    """The benchmark's JSON document, where --output says."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {output}")
