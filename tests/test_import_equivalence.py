"""An imported log gives the verdicts of the live capture of the same session (issue 14).

A simulated charger goes through the recorder to a backend built on the `ocpp` library (the
library's own ChargePoint and handlers, as Home Assistant's integration uses it; a process of its
own, tests/library_backend.py, so that its log holds only its own lines), over three
connections (boot, charge, network loss, reconnect, stop, network loss again). The backend's log
(the `ocpp` library's "receive message"/"send" lines and websockets' "connection open"/"connection
closed" lines) is imported with `--format ocpp-log`; `analyse` of the import and of the recorder's
capture give the same verdict for every charger and function.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ocpp_audit.cli import main
from ocpp_audit.lab.simulator import SimulatedCharger
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout


def verdicts(capture: Path, tmp_path: Path, name: str) -> dict[tuple[str, str], str]:
    report = tmp_path / f"{name}.json"
    result = CliRunner().invoke(main, ["analyse", str(capture), "-f", "json", "-o", str(report)])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(report.read_text())
    return {
        (charger["charge_point_id"], item["rule"]): item["verdict"]
        for charger in document["chargers"]
        for item in (*charger["functions"], *charger["checks"])
    }


@pytest.fixture
def backend(tmp_path: Path):  # type: ignore[no-untyped-def]
    """tests/library_backend.py in a process of its own: (its port, its log file)."""
    log = tmp_path / "backend.log"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("library_backend.py")), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "listening PORT"
        assert line.startswith("listening "), line
        yield int(line.split()[1]), log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_an_imported_session_gives_the_live_captures_verdicts(
    tmp_path: Path, backend: tuple[int, Path]
) -> None:
    port, backend_log = backend
    options = RecordOptions(capture_dir=tmp_path / "live", upstream=f"ws://127.0.0.1:{port}")
    async with RecorderService(options) as service:
        charger = SimulatedCharger("LIB-1", service.url)
        await charger.start()
        try:
            async with asyncio.timeout(timeout(60)):
                await charger.wait_ready()
                await charger.plug_in(1)
                await charger.swipe("TAG-1", 1)
                await asyncio.sleep(3)
                await charger.lose_network()  # connection 1 ends
                await asyncio.sleep(3)
                await charger.restore_network()  # connection 2
                await charger.wait_ready()
                await charger.swipe("TAG-1", 1)  # stop
                await charger.unplug(1)
                await asyncio.sleep(3)
                await charger.lose_network()
                await asyncio.sleep(2)
                await charger.restore_network()  # connection 3
                await charger.wait_ready()
                await asyncio.sleep(3)
        finally:
            await charger.stop()
    imported = tmp_path / "imported"
    result = CliRunner().invoke(
        main,
        [
            "import",
            str(backend_log),
            "--format",
            "ocpp-log",
            "--timezone",
            "UTC",
            "--capture",
            str(imported),
        ],
    )
    assert result.exit_code == 0, result.output
    live = verdicts(tmp_path / "live", tmp_path, "live")
    from_log = verdicts(imported, tmp_path, "imported")
    assert set(live) == set(from_log)
    differences = {key: (live[key], from_log[key]) for key in live if live[key] != from_log[key]}
    assert differences == {}
    # the session really had three connections, and the verdicts judged something
    assert backend_log.read_text().count("connection open") == 3
    assert live[("LIB-1", "offline-replay")] == "PASS"  # two offline periods, seen in both
    assert list(live.values()).count("PASS") >= 10
    # the stop came on connection 2, 3 ms after the reconnect by the charger's millisecond clock:
    # not from the offline queue (the recorder's clock said otherwise by microseconds, once)
    assert live[("LIB-1", "stop-transaction")] == "PASS"
    # the log holds the backend's lines only: the same messages, each in its direction, once
    assert messages(imported) == messages(tmp_path / "live")


def messages(capture: Path) -> list[tuple[str, str]]:
    rows = duckdb.sql(
        f"SELECT direction, raw FROM read_parquet('{capture}/frames/**/*.parquet') "
        "WHERE event = 'message' ORDER BY direction, raw"
    ).fetchall()
    return [(direction, raw) for direction, raw in rows]
