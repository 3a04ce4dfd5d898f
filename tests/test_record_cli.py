"""``ocpp-audit record`` as a real process: signals seal the capture, and a SIGKILL loses nothing.

Issue 2's crash test: the recorder killed with SIGKILL mid-traffic; after a restart (which seals
the journal the crash left), every frame either side received is in the capture.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ocpp_audit.cli import main
from tests.conftest import timeout
from tests.engines import PlainBackend, messages, read_capture

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """One ``ocpp-audit record`` subprocess on 127.0.0.1 port 0."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    @classmethod
    async def start(
        cls,
        capture_dir: Path,
        *arguments: str,
        verbose: bool = False,
        env: dict[str, str] | None = None,
    ) -> Recorder:
        """``ocpp-audit record`` (``-vv``: debug logging, when ``verbose``), ``env`` added."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ocpp_audit",
            *(["-vv"] if verbose else []),
            "record",
            "--listen",
            "127.0.0.1:0",
            "--capture",
            str(capture_dir),
            *arguments,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        assert process.stdout is not None
        try:
            async with asyncio.timeout(timeout(20)):
                line = (await process.stdout.readline()).decode()
        except BaseException:
            process.kill()
            await process.wait()
            raise
        match = re.search(r"Recording on (ws://\S+)", line)
        if match is None:
            process.kill()
            _, stderr = await process.communicate()
            pytest.fail(f"no listening line: {line!r} {stderr.decode()[-2000:]}")
        return cls(process, match.group(1))

    async def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send a signal, wait for the exit; (exit status, stderr)."""
        self.process.send_signal(signum)
        async with asyncio.timeout(timeout(20)):
            _, stderr = await self.process.communicate()
        return self.process.returncode or 0, stderr.decode()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def backend():
    backend = PlainBackend(echo=True)
    await backend.start()
    yield backend
    await backend.stop()


def journals(capture_dir: Path) -> list[Path]:
    return list((capture_dir / "journal").glob("*.journal"))


async def test_sigterm_closes_chargers_with_1001_and_seals_the_capture(backend, tmp_path):
    capture_dir = tmp_path / "capture"
    recorder = await Recorder.start(capture_dir, "--upstream", backend.url)
    try:
        async with connect(recorder.url + "/ocpp/CP1", subprotocols=["ocpp1.6"]) as charger:
            sent = [f'[2,"{index}","Heartbeat",{{}}]' for index in range(5)]
            for frame in sent:
                await charger.send(frame)
                async with asyncio.timeout(timeout(5)):
                    assert await charger.recv() == frame
            status, stderr = await recorder.stop(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(timeout(5)):
                    await charger.recv()
            assert charger.close_code == 1001  # going away: the charger will reconnect
    finally:
        await recorder.kill()
    assert status == 0, stderr
    assert not journals(capture_dir)  # sealed
    rows = read_capture(capture_dir)
    assert messages(rows, "cp_to_cs") == sent
    assert messages(rows, "cs_to_cp") == sent
    (closed,) = [row for row in rows if row["event"] == "close"]
    assert (closed["close_code"], closed["closed_by"]) == (1001, "recorder")


async def test_standalone_answers_with_the_configured_boot_and_stops_on_sigint(tmp_path):
    capture_dir = tmp_path / "capture"
    recorder = await Recorder.start(
        capture_dir, "--standalone", "--boot-status", "Pending", "--heartbeat-interval", "42"
    )
    try:
        async with connect(recorder.url + "/CPS", subprotocols=["ocpp1.6"]) as charger:
            await charger.send(
                '[2,"1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"X"}]'
            )
            async with asyncio.timeout(timeout(5)):
                answer = json.loads(await charger.recv())
        status, stderr = await recorder.stop(signal.SIGINT)
    finally:
        await recorder.kill()
    assert answer[2]["status"] == "Pending" and answer[2]["interval"] == 42
    assert status == 0, stderr
    rows = read_capture(capture_dir)
    assert [row["action"] for row in rows if row["event"] == "message"] == ["BootNotification"] * 2


async def test_sigkill_mid_traffic_loses_no_frame_either_side_received(backend, tmp_path):
    capture_dir = tmp_path / "capture"
    recorder = await Recorder.start(capture_dir, "--upstream", backend.url)
    received_by_charger: list[str | bytes] = []
    try:
        charger = await connect(recorder.url + "/ocpp/CRASH", subprotocols=["ocpp1.6"])
        upstream = await backend.wait_connection()

        async def send_forever() -> None:
            for index in range(100_000):
                await charger.send(f'[2,"{index}","Heartbeat",{{}}]')
                await asyncio.sleep(0)

        async def receive_forever() -> None:
            while True:
                received_by_charger.append(await charger.recv())

        sending = asyncio.create_task(send_forever())
        receiving = asyncio.create_task(receive_forever())
        # Let traffic flow in both directions, then kill the recorder in the middle of it.
        async with asyncio.timeout(timeout(10)):
            while len(received_by_charger) < 200:
                await asyncio.sleep(0.01)
        os.kill(recorder.process.pid, signal.SIGKILL)
        await recorder.process.wait()
        results = await asyncio.gather(sending, receiving, return_exceptions=True)
        assert all(isinstance(result, ConnectionClosed) for result in results), results
        await upstream.wait_closed()
    finally:
        await recorder.kill()
    received_by_backend = list(upstream.received)
    assert journals(capture_dir)  # the crash left a journal behind

    # Restart: the new recorder seals the crash's journal before it listens.
    restarted = await Recorder.start(capture_dir, "--upstream", backend.url)
    status, stderr = await restarted.stop(signal.SIGTERM)
    assert status == 0, stderr
    rows = read_capture(capture_dir)
    recorded_to_backend = messages(rows, "cp_to_cs")
    recorded_to_charger = messages(rows, "cs_to_cp")
    # Every frame a side received crossed the recorder, so it was journalled first; in order.
    assert recorded_to_backend[: len(received_by_backend)] == received_by_backend
    assert recorded_to_charger[: len(received_by_charger)] == received_by_charger
    assert len(received_by_charger) >= 200
    assert len(recorded_to_backend) == len(set(recorded_to_backend))  # each once


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--capture", "c"], "--upstream"),
        (["--capture", "c", "--upstream", "http://csms"], "ws://"),
        (["--capture", "c", "--standalone", "--listen", "nope"], "HOST:PORT"),
        (["--capture", "c", "--standalone", "--upstream", "ws://csms"], "exclude"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, arguments, message):
    result = CliRunner().invoke(main, ["record", *arguments])
    assert result.exit_code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and message in error_lines[0]
