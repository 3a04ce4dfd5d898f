"""Long jobs show progress on stderr when it is a terminal, and nothing extra when not (issue 13).

The commands run as processes with stderr on a real pseudo-terminal (or a pipe); standard output
stays a pipe, and what it carries must be the same either way.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent.parent / "captures" / "lab-faults"


def run(args: list[str], *, terminal: bool) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of ``python -m ocpp_audit ARGS``."""
    env = {k: v for k, v in os.environ.items() if k != "OCPP_AUDIT_PROGRESS"}
    command = [sys.executable, "-m", "ocpp_audit", *args]
    if not terminal:
        done = subprocess.run(command, capture_output=True, env=env, timeout=120)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # read the terminal while the command runs: a full pty would block it
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout = process.stdout.read()  # type: ignore[union-attr]
    process.wait(timeout=120)
    reader.join(10)
    os.close(master)
    return process.returncode, stdout, b"".join(chunks)


def test_analyse_shows_its_rules_on_a_terminal_only() -> None:
    status, stdout, stderr = run(["analyse", str(SAMPLE), "-f", "json"], terminal=True)
    assert status == 1
    document = json.loads(stdout)  # standard output untouched by the progress display
    from ocpp_audit.analyser.rules import load_rules

    rules = len(load_rules(None))  # the bar counts every rule run (each charger is judged by
    # those of its OCPP version)
    assert b"analysing" in stderr
    assert f"/{rules}".encode() in stderr  # the bar counts the rules
    assert b"\x1b[" in stderr  # drawn for a terminal
    status, piped_stdout, piped_stderr = run(["analyse", str(SAMPLE), "-f", "json"], terminal=False)
    assert status == 1
    assert json.loads(piped_stdout) == document
    assert piped_stderr == b""


@pytest.mark.parametrize("terminal", [True, False])
def test_export_and_import_show_frames_on_a_terminal_only(tmp_path: Path, terminal: bool) -> None:
    exported = tmp_path / "frames.jsonl"
    status, _, stderr = run(["export", str(SAMPLE), "-o", str(exported)], terminal=terminal)
    assert status == 0
    assert (b"exporting" in stderr) == terminal
    lines = exported.read_text().count("\n")
    status, _, stderr = run(
        ["import", str(exported), "--capture", str(tmp_path / "back")], terminal=terminal
    )
    assert status == 0, stderr
    assert (b"importing" in stderr) == terminal
    assert (b"\x1b[" in stderr) == terminal
    assert lines > 0
