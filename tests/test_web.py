"""The local HTTP APIs on aiohttp (ocpp_audit.web): body limits, idle timeouts, JSON that is not
JSON, and clients that never take an http_proxy from the environment. Real sockets on 127.0.0.1,
port 0: the recorder's control API, its firmware endpoint and the simulator's control."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ocpp_audit.lab.simulator.control import SimulatorControl
from ocpp_audit.lab.simulator.transfers import download_firmware
from ocpp_audit.recorder.control import (
    MAX_REQUEST_BYTES,
    AsyncControlClient,
    ControlClient,
    ControlServer,
)
from ocpp_audit.recorder.endpoints import FileEndpoints
from ocpp_audit.recorder.injection import ChargerRegistry
from ocpp_audit.web import DEFAULT_IDLE_TIMEOUT_S
from tests.conftest import timeout

TOKEN = "web-test-token"
IDLE_S = 0.5


@pytest.fixture
async def control() -> AsyncIterator[ControlServer]:
    server = ControlServer(ChargerRegistry(), TOKEN, idle_timeout=IDLE_S)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def post_raw(url: str, body: bytes, token: str = TOKEN) -> tuple[int, dict]:
    """POST exactly ``body`` (not necessarily valid JSON) with the bearer token."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, json.loads(await response.read())


async def closed_within(host: str, port: int, request: bytes, limit: float) -> tuple[bytes, float]:
    """Open a socket, send ``request`` (maybe nothing), and read until the server closes it:
    (everything the server sent, seconds it took). Fails when the socket is still open at
    ``limit``."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    began = loop.time()
    try:
        if request:
            writer.write(request)
            await writer.drain()
        async with asyncio.timeout(limit):
            received = await reader.read()  # to EOF: the server closed the connection
        return received, loop.time() - began
    finally:
        writer.close()


# -- 413: an oversized body is answered, not dropped --------------------------------------------


async def test_an_oversized_body_is_answered_413(control: ControlServer) -> None:
    client = AsyncControlClient(control.url, TOKEN)
    payload = {"vendorId": "acme", "data": "x" * (MAX_REQUEST_BYTES + 1)}
    async with asyncio.timeout(timeout(20)):
        status, answer = await client.call("CP-BIG", "DataTransfer", payload, 5)
        assert status == 413, answer
        assert str(MAX_REQUEST_BYTES) in answer["error"]
        # the server goes on answering
        assert (await client.chargers())[0] == 200


async def test_the_simulator_control_answers_413_too() -> None:
    # the body is refused before the charger is ever asked: any object stands in for it
    chargers: dict = {"SIM1": object()}
    async with SimulatorControl(chargers, idle_timeout=IDLE_S) as simulator:
        async with asyncio.timeout(timeout(20)):
            status, answer = await post_raw(
                f"{simulator.url}/chargers/SIM1/swipe", b'{"id_tag": "' + b"A" * 70_000 + b'"}'
            )
    assert status == 413 and "error" in answer


# -- idle and half-sent requests are cut ---------------------------------------------------------


async def test_silent_and_half_sent_requests_are_disconnected(control: ControlServer) -> None:
    limit = timeout(10)  # far above IDLE_S, far below "never"
    received, seconds = await closed_within("127.0.0.1", control.port, b"", limit)
    assert received == b"" and seconds >= IDLE_S * 0.8
    half = b"GET /chargers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bea"
    received, _ = await closed_within("127.0.0.1", control.port, half, limit)
    assert b"chargers" not in received
    # headers complete, the body never comes: 408, and the connection is closed
    headers = (
        b"POST /chargers/CP1/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 100\r\n\r\n{"
    )
    received, _ = await closed_within("127.0.0.1", control.port, headers, limit)
    assert received.startswith(b"HTTP/1.1 408 ")
    # a kept-alive connection that goes quiet after an answer is cut as well
    request = (
        b"GET /chargers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )
    received, _ = await closed_within("127.0.0.1", control.port, request, limit)
    assert received.startswith(b"HTTP/1.1 200 ") and b'{"chargers": []}' in received


async def test_many_idle_sockets_do_not_lock_out_a_new_client(control: ControlServer) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", control.port) for _ in range(50)]
    try:
        async with asyncio.timeout(timeout(10)):
            for reader, _writer in idle:
                assert await reader.read() == b""  # every one of them is let go
            assert (await AsyncControlClient(control.url, TOKEN).chargers())[0] == 200
    finally:
        for _reader, writer in idle:
            writer.close()


async def test_the_firmware_endpoint_and_simulator_control_cut_idle_sockets(
    tmp_path: Path,
) -> None:
    async with (
        FileEndpoints(tmp_path, idle_timeout=IDLE_S) as endpoints,
        SimulatorControl({}, idle_timeout=IDLE_S) as simulator,
    ):
        for port in (endpoints.http_port, simulator.port):
            received, _ = await closed_within("127.0.0.1", port, b"", timeout(10))
            assert received == b""
            received, _ = await closed_within("127.0.0.1", port, b"GET /firm", timeout(10))
            assert received == b""


def test_the_idle_timeout_has_a_sane_default() -> None:
    assert 5 <= DEFAULT_IDLE_TIMEOUT_S <= 120
    assert ControlServer(ChargerRegistry(), TOKEN).idle_timeout == DEFAULT_IDLE_TIMEOUT_S
    with pytest.raises(ValueError, match="idle_timeout"):
        ControlServer(ChargerRegistry(), TOKEN, idle_timeout=0)


# -- JSON that is not JSON ---------------------------------------------------------------------

PROFILE = (
    b'{"action": "SetChargingProfile", "timeout": 5, "payload": {"connectorId": 1,'
    b' "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0,'
    b' "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",'
    b' "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod":'
    b' [{"startPeriod": 0, "limit": LIMIT}]}}}}'
)


@pytest.mark.parametrize(
    ("limit", "named"),
    [(b"Infinity", "Infinity"), (b"-Infinity", "-Infinity"), (b"NaN", "NaN"), (b"1e999", "1e999")],
)
async def test_nan_and_infinity_are_refused_with_a_reason(
    control: ControlServer, limit: bytes, named: str
) -> None:
    """Python's json reads these; the schema check then died on them and the connection dropped.
    RFC 8259 section 6: "Numeric values that cannot be represented ... (such as Infinity and NaN)
    are not permitted"."""
    async with asyncio.timeout(timeout(10)):
        status, answer = await post_raw(
            f"{control.url}/chargers/CP1/calls", PROFILE.replace(b"LIMIT", limit)
        )
        assert status == 400, answer
        assert "not JSON" in answer["error"] and named in answer["error"]
        status, answer = await post_raw(f"{control.url}/chargers/CP1/calls", b"[" * 100_000)
        assert status == 400 and "not JSON" in answer["error"]
        # the same document with a number is well-formed: the charger is just not there
        status, answer = await post_raw(
            f"{control.url}/chargers/CP1/calls", PROFILE.replace(b"LIMIT", b"16")
        )
        assert status == 404 and "CP1" in answer["error"]


async def test_the_token_is_checked_before_the_body_is_read(control: ControlServer) -> None:
    async with asyncio.timeout(timeout(10)):
        status, answer = await post_raw(f"{control.url}/chargers/CP1/calls", b"NaN", "wrong")
    assert status == 401 and answer == {"error": "missing or wrong bearer token"}


async def test_routes_answer_json_for_unknown_paths_and_methods(control: ControlServer) -> None:
    client = AsyncControlClient(control.url, TOKEN)
    async with asyncio.timeout(timeout(10)):
        status, answer = await client.request("GET", "/nothing/here")
        assert status == 404 and "/nothing/here" in answer["error"]
        status, answer = await client.request("GET", "/capture/seal")
        assert status == 405 and "POST" in answer["error"]
        status, answer = await client.request("POST", "/capture/seal", {})
        assert status == 404 and "cannot seal" in answer["error"]
        # a charge point id with a slash and a space, percent-encoded in one path segment
        status, answer = await client.messages("CP 1/a", wait=0)
        assert status == 200 and answer["charge_point_id"] == "CP 1/a"


# -- no proxy for loopback ---------------------------------------------------------------------


@pytest.fixture
def proxy_to_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead)
        monkeypatch.setenv(name.upper(), dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


@pytest.mark.usefixtures("proxy_to_nowhere")
async def test_loopback_clients_never_go_through_an_environment_proxy(
    tmp_path: Path, control: ControlServer
) -> None:
    async with FileEndpoints(tmp_path) as endpoints, asyncio.timeout(timeout(20)):
        size = await download_firmware(endpoints.firmware_location, timeout=timeout(10))
        assert size == len(endpoints._firmware_bytes) and len(endpoints.downloads) == 1
        assert (await AsyncControlClient(control.url, TOKEN).chargers())[0] == 200
        blocking = ControlClient(control.url, TOKEN)
        assert (await asyncio.to_thread(blocking.chargers))[0] == 200


# -- the firmware endpoint: one file, HEAD, Range ----------------------------------------------


async def test_firmware_head_and_ranges(tmp_path: Path) -> None:
    firmware = tmp_path / "fw-1.2.3.bin"
    firmware.write_bytes(bytes(range(256)) * 4)  # 1024 bytes
    (tmp_path / "secret.txt").write_text("not for chargers")
    async with (
        FileEndpoints(tmp_path / "ep", firmware=firmware) as endpoints,
        aiohttp.ClientSession() as session,
        asyncio.timeout(timeout(20)),
    ):
        url = endpoints.firmware_location
        async with session.head(url) as response:
            assert response.status == 200 and response.content_length == 1024
            assert await response.read() == b""
        assert endpoints.downloads == []  # a HEAD is no download
        async with session.get(url, headers={"Range": "bytes=1000-"}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == "bytes 1000-1023/1024"
            assert await response.read() == firmware.read_bytes()[1000:]
        async with session.get(url, headers={"Range": "bytes=-16"}) as response:
            assert response.status == 206 and await response.read() == bytes(range(240, 256))
        async with session.get(url, headers={"Range": "bytes=2000-"}) as response:
            assert response.status == 416
            assert response.headers["Content-Range"] == "bytes */1024"
        async with session.get(url, headers={"Range": "bytes=0-1,5-6"}) as response:
            assert response.status == 200 and len(await response.read()) == 1024  # ignored
        assert [d.size for d in endpoints.downloads] == [24, 16, 1024]
        base = url.rsplit("/", 2)[0]
        for path in ("/firmware/secret.txt", "/firmware/../secret.txt", "/secret.txt", "/"):
            async with session.get(base + path) as response:
                assert response.status == 404
                assert b"not for chargers" not in await response.read()
        async with session.post(url, data=b"x") as response:
            assert response.status == 405


async def test_the_recorders_idle_timeout_reaches_both_servers(tmp_path: Path) -> None:
    from ocpp_audit.lab.central_system import CentralSystem
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService

    assert RecordOptions(capture_dir=tmp_path).http_idle_timeout == DEFAULT_IDLE_TIMEOUT_S
    options = RecordOptions(
        capture_dir=tmp_path,
        standalone=True,
        control_host="127.0.0.1",
        control_port=0,
        control_token=TOKEN,
        endpoints_host="127.0.0.1",
        http_idle_timeout=IDLE_S,
    )
    async with RecorderService(options, CentralSystem()) as service:
        assert service.control is not None and service.endpoints is not None
        for port in (service.control.port, service.endpoints.http_port):
            received, seconds = await closed_within("127.0.0.1", port, b"", timeout(10))
            assert received == b"" and seconds < timeout(5)
