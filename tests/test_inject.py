"""``ocpp-audit inject``: its answers and exit codes against a live recorder's control API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from websockets.asyncio.client import ClientConnection, connect

from ocpp_audit.cli.inject import control_url, inject
from ocpp_audit.lab.central_system import CentralSystem
from ocpp_audit.lab.simulator import SimulatedCharger
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout
from tests.test_record_cli import Recorder


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[RecorderService]:
    options = RecordOptions(
        capture_dir=tmp_path / "capture",
        standalone=True,
        control_host="127.0.0.1",
        control_port=0,
    )
    async with RecorderService(options, CentralSystem()) as running:
        yield running


async def run_inject(*args: str, env: dict[str, str] | None = None) -> Result:
    """The command in a thread, so the recorder keeps running in this loop meanwhile."""
    runner = CliRunner()
    async with asyncio.timeout(timeout(30)):
        return await asyncio.to_thread(runner.invoke, inject, list(args), env=env)


def api_args(service: RecorderService) -> list[str]:
    assert service.control is not None and service.control_token_file is not None
    return ["--control", service.control.url, "--token-file", str(service.control_token_file)]


async def connect_charger(service: RecorderService, charge_point_id: str) -> ClientConnection:
    websocket = await connect(
        f"{service.url}/{charge_point_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ping_interval=None,
        open_timeout=timeout(10),
    )
    assert service.engine is not None
    async with asyncio.timeout(timeout(5)):
        while service.engine.registry.get(charge_point_id) is None:
            await asyncio.sleep(0.02)
    return websocket


async def test_a_callresult_is_printed_and_exits_0(service: RecorderService) -> None:
    charger = SimulatedCharger("CP-CLI", service.url, connectors=1)
    await charger.start()
    try:
        result = await run_inject(
            *api_args(service),
            "CP-CLI",
            "ChangeAvailability",
            '{"connectorId": 1, "type": "Inoperative"}',
        )
    finally:
        await charger.stop()
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["message_type"] == 3
    assert answer["payload"] == {"status": "Accepted"}
    assert answer["unique_id"].startswith("ocpp-audit-")


async def test_a_callerror_is_printed_and_exits_1(service: RecorderService) -> None:
    charger = await connect_charger(service, "CP-ERR")

    async def answer_with_error() -> None:
        async with asyncio.timeout(timeout(10)):
            call = json.loads(await charger.recv())
        await charger.send(json.dumps([4, call[1], "NotImplemented", "not here", {}]))

    answering = asyncio.create_task(answer_with_error())
    result = await run_inject(*api_args(service), "CP-ERR", "ClearCache")
    await answering
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error_code"] == "NotImplemented"
    await charger.close()


async def test_no_answer_in_time_exits_1(service: RecorderService) -> None:
    charger = await connect_charger(service, "CP-MUTE")
    result = await run_inject(*api_args(service), "--timeout", "0.3", "CP-MUTE", "ClearCache")
    assert result.exit_code == 1
    assert "no answer within 0.3 s" in result.stderr
    await charger.close()


async def test_unknown_charger_exits_2(service: RecorderService) -> None:
    result = await run_inject(*api_args(service), "NOBODY", "ClearCache")
    assert result.exit_code == 2
    assert "'NOBODY' is not connected" in result.stderr


async def test_invalid_payload_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    # No recorder at all: the schema check comes first, so nothing is even attempted.
    args = ["--control", "http://127.0.0.1:9", "--token", "t", "CP1", "Reset"]
    result = await run_inject(*args, '{"type": "Sideways"}')
    assert result.exit_code == 2
    assert "nothing sent" in result.stderr and "Sideways" in result.stderr
    assert (await run_inject(*args, "{not json")).exit_code == 2
    assert (await run_inject(*args, "[1]")).exit_code == 2
    result = await run_inject(*args[:-1], "Bogus", "{}")
    assert result.exit_code == 2 and "not an OCPP 1.6 action" in result.stderr


async def test_a_missing_or_wrong_token_exits_2(service: RecorderService) -> None:
    assert service.control is not None
    url = service.control.url
    result = await run_inject(
        "--control", url, "CP1", "ClearCache", env={"OCPP_AUDIT_CONTROL_TOKEN": ""}
    )
    assert result.exit_code == 2 and "--token" in result.stderr
    result = await run_inject("--control", url, "--token", "wrong", "CP1", "ClearCache")
    assert result.exit_code == 2 and "refused the token" in result.stderr


def test_control_url_forms() -> None:
    assert control_url("9001") == "http://127.0.0.1:9001"
    assert control_url("localhost:9001") == "http://localhost:9001"
    assert control_url("http://127.0.0.1:9001/") == "http://127.0.0.1:9001"


def test_record_refuses_a_non_loopback_control_address(tmp_path: Path) -> None:
    from ocpp_audit.cli.record import record

    args = ["--standalone", "--capture", str(tmp_path / "c"), "--control", "0.0.0.0:9001"]
    result = CliRunner().invoke(record, args)
    assert result.exit_code == 2
    assert "loopback" in result.output


async def test_record_and_inject_as_commands(tmp_path: Path) -> None:
    """The README's session: `record --control` in one process, `inject` in another."""
    capture = tmp_path / "lab"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    recorder = await Recorder.start(capture, "--standalone", "--control", "0", env=env)
    process = recorder.process  # its first line (the listening URL) read by Recorder.start
    try:
        assert process.stdout is not None
        async with asyncio.timeout(timeout(30)):
            line = (await process.stdout.readline()).decode()
        control = re.search(r"Control API on (http://\S+) \(token: (\S+)\)", line)
        assert control, line
        token_file = Path(control.group(2))
        assert token_file == capture / "control-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        charger = SimulatedCharger("CP-PROC", recorder.url, connectors=1)
        await charger.start()
        try:
            inject_args: list[Any] = [
                sys.executable, "-m", "ocpp_audit", "inject", "--control", control.group(1),
                "--token-file", str(token_file), "CP-PROC", "Reset", '{"type": "Soft"}',
            ]  # fmt: skip
            injector = await asyncio.create_subprocess_exec(
                *inject_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
            async with asyncio.timeout(timeout(30)):
                stdout, stderr = await injector.communicate()
            assert injector.returncode == 0, stderr.decode()
            assert json.loads(stdout)["payload"] == {"status": "Accepted"}
        finally:
            await charger.stop()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(timeout(30)):
            await process.wait()
    assert process.returncode == 0
    assert not (capture / "control-token").exists()
