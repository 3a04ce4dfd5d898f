"""One address may not make the recorder hold more than its budget (issue 19: deflate bombs).

A bounded attack on loopback: connections from 127.0.0.1 offer permessage-deflate and send 2 MiB
frames of one repeated letter (a few KB on the wire each) as fast as TCP lets them, while a charger on
127.0.0.2 keeps sending Heartbeats. The recorder runs as its own process (`ocpp-audit record`), so
its peak RSS (VmHWM) is its own. Without the budget websockets keeps a few inflated frames per
connection, so the peak grows with the number of connections; with it the peak stays near the
budget, every attack frame still reaches the backend (backpressure, nothing dropped), and the other
address is answered throughout.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.conftest import timeout
from tests.test_record_cli import Recorder

pytestmark = pytest.mark.timeout(240)

FRAMES_EACH = 3
FRAME_BYTES = 2 * 1024 * 1024
BUDGET_MB = 8


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


class CountingBackend:
    """Answers Heartbeats; counts every other CALL it receives."""

    def __init__(self) -> None:
        self.other_calls = 0
        self.port = 0

    async def handle(self, connection: ServerConnection) -> None:
        async for message in connection:
            frame = json.loads(message)
            if frame[2] == "Heartbeat":
                await connection.send(json.dumps([3, frame[1], {"currentTime": "now"}]))
            else:
                self.other_calls += 1


async def attack(url: str, number: int) -> None:
    filler = "A" * FRAME_BYTES
    async with connect(
        f"{url}/ocpp/BOMB{number:02d}",
        subprotocols=["ocpp1.6"],
        compression="deflate",
        ping_interval=None,
        max_size=None,
        open_timeout=timeout(60),
    ) as websocket:
        for index in range(FRAMES_EACH):
            await websocket.send(
                f'[2,"{number}-{index}","DataTransfer",{{"vendorId":"x","data":"{filler}"}}]'
            )


async def heartbeats(url: str, stop: asyncio.Event) -> list[float]:
    """When each Heartbeat of a charger on another address (127.0.0.2) was answered, until
    ``stop`` (perf_counter times)."""
    answered = []
    async with connect(
        f"{url}/ocpp/NEIGHBOUR",
        subprotocols=["ocpp1.6"],
        ping_interval=None,
        local_addr=("127.0.0.2", 0),
    ) as websocket:
        for index in range(10_000):  # bounded; ends with the attack
            if stop.is_set():
                break
            await websocket.send(f'[2,"hb{index}","Heartbeat",{{}}]')
            async with asyncio.timeout(timeout(30)):
                await websocket.recv()
            answered.append(time.perf_counter())
            await asyncio.sleep(0.05)
    return answered


async def run_attack(tmp_path: Path, budget_mb: float, connections: int) -> tuple[int, int, int]:
    """(peak RSS growth in KiB, attack frames the backend got, how many of the neighbour's
    Heartbeats were answered while the attack went on)."""
    backend = CountingBackend()
    async with serve(backend.handle, "127.0.0.1", 0, max_size=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        recorder = await Recorder.start(
            tmp_path / f"capture-{connections}",
            "--upstream",
            f"ws://127.0.0.1:{port}",
            "--rotate-mb",
            "4",
            "--address-budget-mb",
            str(budget_mb),
        )
        try:
            stop = asyncio.Event()
            neighbour = asyncio.create_task(heartbeats(recorder.url, stop))
            await asyncio.sleep(0.5)
            baseline = status_kib(recorder.process.pid, "VmRSS")
            started = time.perf_counter()
            async with asyncio.timeout(timeout(120)):
                await asyncio.gather(*(attack(recorder.url, n) for n in range(connections)))
                while backend.other_calls < connections * FRAMES_EACH:
                    await asyncio.sleep(0.05)
            peak = status_kib(recorder.process.pid, "VmHWM")
            ended = time.perf_counter()
            stop.set()
            during = [t for t in await neighbour if started < t < ended]
        finally:
            await recorder.kill()
    return peak - baseline, backend.other_calls, len(during)


async def test_one_address_stays_within_its_budget_and_loses_nothing(tmp_path: Path) -> None:
    few, many = 8, 64
    growth = {}
    for connections in (few, many):
        growth[connections], delivered, answered = await run_attack(
            tmp_path, BUDGET_MB, connections
        )
        # Every attack frame went through: the budget slows an address, it drops nothing.
        assert delivered == connections * FRAMES_EACH
        # The other address was answered while the attack went on, not only after it (its
        # latency then is the recorder's CPU, shared with the attack's large frames, not the
        # budget's: a budget pauses only the address that is over it).
        assert answered >= 2, answered
    print(
        f"budget {BUDGET_MB} MiB: recorder grew by {growth[few] / 1024:.0f} MiB at {few} "
        f"connections, {growth[many] / 1024:.0f} MiB at {many}"
    )
    # Flat in the number of connections but for each connection's own state (its zlib contexts
    # and buffers): measured +9 to +15 MiB from 8 to 64 connections with the budget, +127 MiB
    # without it (about one inflated frame more per connection; README's security section). What
    # stays (about 100 MiB at 2 MiB frames) is the frame in hand, its journal line and the seal of
    # a 4 MiB journal.
    assert growth[many] - growth[few] < 48 * 1024
    assert growth[many] < 256 * 1024


def deflated_text_frame(size: int) -> bytes:
    """A masked client text frame with RSV1 set (permessage-deflate) inflating to ``size`` bytes."""
    compressor = zlib.compressobj(wbits=-15)
    body = compressor.compress(b"A" * size) + compressor.flush(zlib.Z_SYNC_FLUSH)
    body = body[:-4]  # RFC 7692 7.2.1: the trailing 00 00 ff ff is removed
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(body))
    header = bytes([0xC1])  # FIN, RSV1, text
    if len(body) < 126:
        header += bytes([0x80 | len(body)])
    elif len(body) < 1 << 16:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(body))
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", len(body))
    return header + mask + masked


async def test_the_mitmproxy_engine_agrees_no_compression_so_a_bomb_costs_nothing(
    tmp_path: Path,
) -> None:
    """mitmproxy inflates a whole message before any addon sees it (1.5 MB on the wire took it to
    3.3 GB): the engine passes no deflate offer on, and a compressed frame sent anyway is a
    protocol error (RFC 6455 5.2: RSV1 set with no extension agreed) that costs no inflation."""
    pytest.importorskip("mitmproxy", reason="the mitmproxy engine is an extra")
    backend = CountingBackend()
    async with serve(backend.handle, "127.0.0.1", 0, max_size=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        recorder = await Recorder.start(
            tmp_path / "capture", "--upstream", f"ws://127.0.0.1:{port}", "--engine", "mitmproxy"
        )
        try:
            baseline = status_kib(recorder.process.pid, "VmRSS")
            bombs = [deflated_text_frame(64 * 1024 * 1024) for _ in range(4)]
            closes = []
            for number in range(8):
                async with connect(
                    f"{recorder.url}/ocpp/BOMB{number}",
                    subprotocols=["ocpp1.6"],
                    compression="deflate",  # offered; nobody agrees to it
                    ping_interval=None,
                ) as websocket:
                    assert websocket.response.headers.get("Sec-WebSocket-Extensions") is None
                    for bomb in bombs:
                        websocket.transport.write(bomb)
                    with pytest.raises(ConnectionClosed) as closed:
                        async with asyncio.timeout(timeout(20)):
                            await websocket.recv()
                    closes.append(closed.value.rcvd.code if closed.value.rcvd else None)
            peak = status_kib(recorder.process.pid, "VmHWM")
        finally:
            await recorder.kill()
    # 8 connections x 4 frames of 64 MiB inflated: nothing was inflated, nothing forwarded.
    assert backend.other_calls == 0
    assert set(closes) <= {1002, None}, closes
    assert peak - baseline < 64 * 1024, f"recorder grew by {(peak - baseline) / 1024:.0f} MiB"
