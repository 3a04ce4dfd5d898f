"""A smoke run of bench/bench_import.py at a tiny size, so the script cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent


def test_bench_import_reports_speed_and_memory_per_format(tmp_path: Path) -> None:
    output = tmp_path / "import.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_import.py"),
            "--mb",
            "0.05",
            "--formats",
            "steve,libocpp,pcap",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout(120),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(output.read_text())["results"]
    assert set(results) == {"steve", "libocpp", "pcap"}
    for fmt, figures in results.items():
        assert figures["frames"] == figures["generated_frames"] > 0
        if fmt != "libocpp":  # libocpp's blank separator lines are counted as skipped
            assert figures["skipped"] == 0
        assert figures["lines_per_s"] > 0 and figures["peak_rss_mb"] > 0
