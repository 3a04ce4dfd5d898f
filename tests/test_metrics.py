"""Operations (issue 18): Prometheus metrics that move with the traffic, and health checks.

Real parts: the recorder on 127.0.0.1 port 0 in front of a plain websockets backend, scraped over
HTTP with aiohttp, and the text parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout
from tests.engines import PlainBackend, recv

ENGINES = ["relay", "mitmproxy"]


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def backend() -> Any:
    server = PlainBackend()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("engine", ENGINES)
async def test_counters_move_with_frames_and_malformed_frames(
    tmp_path: Path, backend: PlainBackend, engine: str
) -> None:
    if engine == "mitmproxy":
        pytest.importorskip("mitmproxy")
    options = RecordOptions(
        capture_dir=tmp_path / "capture", upstream=backend.url, engine=engine,
        metrics_host="127.0.0.1", metrics_port=0,
    )  # fmt: skip
    async with RecorderService(options) as service:
        assert service.metrics_server is not None
        url = service.metrics_server.url
        before = await scrape(url)
        assert value(before, "ocpp_audit_frames_total", direction="cp_to_cs") == 0
        assert value(before, "ocpp_audit_chargers_connected") == 0
        call = json.dumps([2, "1", "Heartbeat", {}])
        broken = '[2, "2", "Heartbeat", {},]'  # a trailing comma: not JSON
        answer = json.dumps([3, "1", {"currentTime": "2024-05-01T10:00:00Z"}])
        error = json.dumps([4, "9", "NotImplemented", "no", {}])
        async with connect(f"{service.url}/CP-M", subprotocols=["ocpp1.6"]) as charger:
            upstream = await backend.wait_connection(0)
            await charger.send(call)
            await charger.send(broken)
            await upstream.wait_received(2)
            await upstream.websocket.send(answer)
            await upstream.websocket.send(error)
            assert await recv(charger) == answer
            assert await recv(charger) == error
            during = await scrape(url)
        # The charger closed (1000); the close row follows the close handshake.
        async with asyncio.timeout(timeout(5)):
            while True:
                after = await scrape(url)
                if value(after, "ocpp_audit_chargers_connected") == 0:
                    break
                await asyncio.sleep(0.05)
    assert value(during, "ocpp_audit_chargers_connected") == 1
    assert value(during, "ocpp_audit_connections_opened_total") == 1
    assert value(during, "ocpp_audit_frames_total", direction="cp_to_cs") == 2
    assert value(during, "ocpp_audit_frames_total", direction="cs_to_cp") == 2
    assert value(during, "ocpp_audit_frame_bytes_total", direction="cp_to_cs") == len(call) + len(
        broken
    )
    assert value(during, "ocpp_audit_frame_bytes_total", direction="cs_to_cp") == len(answer) + len(
        error
    )
    assert value(during, "ocpp_audit_frames_malformed_total", direction="cp_to_cs") == 1
    assert value(during, "ocpp_audit_calls_total", action="Heartbeat", direction="cp_to_cs") == 1
    # A CALLERROR to a unique id nothing sent: counted, with no action to name.
    assert value(during, "ocpp_audit_callerrors_total", action="", direction="cs_to_cp") == 1
    assert value(during, "ocpp_audit_forward_latency_seconds_count") == 4
    assert value(during, "ocpp_audit_journal_unsealed_bytes") > 0
    assert value(during, "ocpp_audit_capture_writable") == 1
    assert value(during, "ocpp_audit_capture_write_errors_total") == 0
    assert value(after, "ocpp_audit_connections_closed_total", close_class="normal") == 1
    assert value(after, "ocpp_audit_chargers_connected") == 0


async def test_readyz_turns_503_while_the_capture_folder_is_not_writable(
    tmp_path: Path, backend: PlainBackend
) -> None:
    options = RecordOptions(
        capture_dir=tmp_path / "capture", upstream=backend.url,
        metrics_host="127.0.0.1", metrics_port=0,
    )  # fmt: skip
    async with RecorderService(options) as service:
        assert service.metrics_server is not None
        url = service.metrics_server.url
        assert await get(f"{url}/healthz") == (200, "ok\n")
        assert await get(f"{url}/readyz") == (200, "ready\n")
        # The journal folder goes away and something else takes its name (a disk unmounted, a
        # cleanup gone wrong): no new journal can be made, for root too.
        journal_dir = options.capture_dir / "journal"
        moved = journal_dir.with_name("journal.moved")
        journal_dir.rename(moved)
        journal_dir.write_text("not a folder")
        status, text = await get(f"{url}/readyz")
        assert status == 503
        assert text.startswith("not ready\ncapture folder not writable: ")
        assert str(journal_dir) in text
        assert (await get(f"{url}/healthz"))[0] == 200  # the process is up all the same
        samples = await scrape(url)
        assert value(samples, "ocpp_audit_chargers_connected") == 0
        journal_dir.unlink()
        moved.rename(journal_dir)
        assert await get(f"{url}/readyz") == (200, "ready\n")


async def test_write_errors_show_in_metrics_and_readiness(
    tmp_path: Path, backend: PlainBackend
) -> None:
    """A recorder process whose journal hits the file size limit (RLIMIT_FSIZE: writes fail with
    EFBIG, as on a full disk): frames are still forwarded, and the metrics and /readyz say so."""
    capture = tmp_path / "capture"
    limit = 4096

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ocpp_audit", "record", "--upstream", backend.url,
        "--listen", "127.0.0.1:0", "--capture", str(capture), "--metrics", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=limit_file_size,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        listen = metrics = ""
        async with asyncio.timeout(timeout(30)):
            while not metrics:
                line = (await process.stdout.readline()).decode()
                assert line, "the recorder exited"
                if line.startswith("Recording on "):
                    listen = line.split()[2]
                if line.startswith("Metrics on "):
                    metrics = line.split()[2].removesuffix("/metrics")
        frame = json.dumps([2, "x", "DataTransfer", {"vendorId": "V", "data": "y" * 500}])
        async with connect(f"{listen}/CP-FULL", subprotocols=["ocpp1.6"]) as charger:
            upstream = await backend.wait_connection(0)
            count = 2 * limit // len(frame) + 2
            for n in range(count):
                await charger.send(frame.replace('"x"', f'"{n}"'))
            received = await upstream.wait_received(count)
            assert len(received) == count  # forwarded, every one, although not all recorded
            samples = await scrape(metrics)
            status, text = await get(f"{metrics}/readyz")
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout(30))
    errors = value(samples, "ocpp_audit_capture_write_errors_total")
    assert errors > 0
    assert value(samples, "ocpp_audit_frames_unrecorded_total") == errors
    assert value(samples, "ocpp_audit_capture_writable") == 0
    # Every frame crossed; those the journal could not take are the unrecorded ones.
    assert value(samples, "ocpp_audit_frames_total", direction="cp_to_cs") == count
    assert errors < count
    assert status == 503 and "journal writes are failing" in text


def test_metrics_port_in_use_is_named(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ocpp_audit", "record", "--standalone", "--listen",
             "127.0.0.1:0", "--capture", str(tmp_path / "c"), "--metrics", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=timeout(60),
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port} (--metrics): address already in use" in done.stderr
