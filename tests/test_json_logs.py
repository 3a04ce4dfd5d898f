"""``record --log-format json`` (issue 18): every log line one JSON object, with the charger named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from websockets.sync.client import connect

from tests.conftest import timeout


def test_log_lines_are_json_objects_naming_the_charger(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ocpp_audit", "-v", "record", "--standalone", "--listen",
         "127.0.0.1:0", "--capture", str(tmp_path / "c"), "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[2]
        # An id with an escape sequence: made safe in the log, as in the text format.
        with connect(f"{url}/CP-J%1B[2J", subprotocols=["ocpp1.6"], open_timeout=timeout(10)) as ws:
            ws.send(json.dumps([2, "1", "Heartbeat", {}]))
            ws.recv(timeout(10))
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=timeout(30))
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    others = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert lines, stderr
    # The recorder's own start and stop messages go to stdout/stderr as text; log lines are JSON.
    assert all(not line.startswith(("INFO", "WARNING", "ERROR")) for line in others)
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "event"}
        assert line["time"].endswith("Z")
    (connected,) = [line for line in lines if "connected (subprotocol" in line["event"]]
    assert connected["level"] == "info"
    assert connected["logger"] == "ocpp_audit.recorder.relay"
    assert connected["charge_point_id"] == "CP-J\\x1b[2J"
    assert "\x1b" not in stderr
