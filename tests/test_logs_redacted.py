"""`replay -vv` and `simulate -vv` log no Basic-auth credential and no frame content (issue 19):
websockets' DEBUG lines go through ocpp_audit.display.wire_logger in every client we run."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

from tests.conftest import timeout
from tests.engines import PlainBackend

SAMPLE = Path(__file__).parent.parent / "captures" / "lab-good"
PASSWORD = "S3cret-Pass-42"


async def run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocpp_audit",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout(60)):
        _, stderr = await process.communicate()
    return process.returncode or 0, stderr.decode("utf-8", "replace")


def assert_redacted(log: str) -> None:
    token = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert "Authorization: <redacted>" in log  # the header was logged, by name only
    assert PASSWORD not in log and token not in log
    # frames by type and size only ("TEXT [288 bytes]", "<frame, 288 characters>"): no payload
    assert "chargePointVendor" not in log and "SimCharger" not in log


async def test_replay_vv_logs_no_credential_and_no_frame(tmp_path: Path) -> None:
    backend = PlainBackend(echo=True)
    await backend.start()
    try:
        _, log = await run(
            "-vv",
            "replay",
            str(SAMPLE),
            "--target",
            backend.url,
            "--auth",
            f"user:{PASSWORD}",
            "--speed",
            "max",
            "--capture",
            str(tmp_path / "replayed"),
        )
    finally:
        await backend.stop()
    assert_redacted(log)


async def test_simulate_vv_logs_no_credential_and_no_frame() -> None:
    backend = PlainBackend(echo=True)
    await backend.start()
    try:
        _, log = await run(
            "-vv",
            "simulate",
            "--target",
            backend.url,
            "--count",
            "1",
            "--duration",
            "2",
            "--auth",
            f"user:{PASSWORD}",
        )
    finally:
        await backend.stop()
    assert_redacted(log)
