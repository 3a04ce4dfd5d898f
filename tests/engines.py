"""Shared fixtures for the recording engines' tests: a recorder in front of a backend, on loopback.

Import the fixtures into a test module (``from tests.engines import engine_name, ...``). Every
fixture is parametrised over the engines, so each test runs once per engine. Two backends:

- ``PlainBackend``: a plain ``websockets`` server written here, which keeps every message it
  received per connection and can send, refuse (401 ...) and close on demand;
- the built-in ``CentralSystem``, through ``RecorderService`` in standalone mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ocpp_audit.lab.central_system import CentralSystem
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout

ENGINES = ["relay", "mitmproxy"]


@dataclasses.dataclass
class BackendConnection:
    """One charger connection as the plain backend saw it."""

    websocket: ServerConnection
    path: str
    headers: Headers
    subprotocol: str | None
    received: list[str | bytes] = dataclasses.field(default_factory=list)
    closed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    new_message: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def wait_received(self, count: int, seconds: float = 5) -> list[str | bytes]:
        """Wait until at least ``count`` messages arrived; returns them all."""
        async with asyncio.timeout(timeout(seconds)):
            while len(self.received) < count:
                self.new_message.clear()
                await self.new_message.wait()
        return self.received

    async def wait_closed(self, seconds: float = 5) -> None:
        async with asyncio.timeout(timeout(seconds)):
            await self.closed.wait()

    @property
    def close_code(self) -> int | None:
        return self.websocket.close_code

    @property
    def close_reason(self) -> str | None:
        return self.websocket.close_reason


class PlainBackend:
    """A plain websockets backend: keeps what it receives, answers only when told to (or echoes)."""

    def __init__(
        self,
        *,
        subprotocols: list[str] | None = None,
        refuse: tuple[int, str, dict[str, str], str] | None = None,
        echo: bool = False,
        max_size: int = 32 * 1024 * 1024,
        backlog: int = 100,
    ) -> None:
        # subprotocols the backend supports; refuse = (status, phrase, headers, body) for every
        # handshake; echo sends every message back unchanged.
        self.subprotocols = ["ocpp1.6"] if subprotocols is None else subprotocols
        self.refuse = refuse
        self.echo = echo
        self.max_size = max_size
        self.backlog = backlog
        self._port = 0  # 0 until the first start; a restart comes back on the same port
        self.connections: list[BackendConnection] = []
        self.requests: list[Request] = []
        self._server: Server | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self._port,
            subprotocols=self.subprotocols or None,  # type: ignore[arg-type]
            process_request=self._process_request,
            ping_interval=None,
            max_size=self.max_size,
            backlog=self.backlog,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    @property
    def port(self) -> int:
        """The port it listens on; known while the backend is down too (after a first start)."""
        assert self._port, "start the backend first"
        return self._port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout(5)):
                    await self._server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if self.refuse is None:
            return None
        status, phrase, headers, body = self.refuse
        response = connection.respond(status, body)
        response.reason_phrase = phrase
        for name, value in headers.items():
            response.headers[name] = value
        return response

    async def _handle(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        connection = BackendConnection(
            websocket, websocket.request.path, websocket.request.headers, websocket.subprotocol
        )
        self.connections.append(connection)
        self._connected.set()
        try:
            while True:
                message = await websocket.recv()
                connection.received.append(message)
                connection.new_message.set()
                if self.echo:
                    await websocket.send(message)
        except Exception:
            pass
        finally:
            connection.closed.set()
            connection.new_message.set()

    async def wait_connection(self, index: int = 0, seconds: float = 5) -> BackendConnection:
        """The ``index``-th connection (0 = first), once it is there."""
        async with asyncio.timeout(timeout(seconds)):
            while len(self.connections) <= index:
                self._connected.clear()
                await self._connected.wait()
        return self.connections[index]


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def plain_backend() -> AsyncIterator[PlainBackend]:
    backend = PlainBackend()
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


RecorderFactory = Callable[..., contextlib.AbstractAsyncContextManager[RecorderService]]


@pytest.fixture
def recording(engine_name: str, tmp_path: Path) -> RecorderFactory:
    """``async with recording(upstream=URL, **options) as service``: a recorder on 127.0.0.1:0.

    Options are RecordOptions fields; ``central_system_config`` goes to the service. The capture
    folder is ``tmp_path / "capture"`` unless ``capture_dir`` is given.
    """

    @contextlib.asynccontextmanager
    async def start(**fields: Any) -> AsyncIterator[RecorderService]:
        config = fields.pop("central_system_config", None)
        fields.setdefault("capture_dir", tmp_path / "capture")
        options = RecordOptions(engine=engine_name, **fields)
        backend = CentralSystem(config) if options.standalone else None
        async with RecorderService(options, backend) as service:
            yield service

    return start


@pytest.fixture
async def recorder_plain(
    recording: RecorderFactory, plain_backend: PlainBackend
) -> AsyncIterator[tuple[RecorderService, PlainBackend]]:
    """A recorder in front of the plain websockets backend."""
    async with recording(upstream=plain_backend.url) as service:
        yield service, plain_backend


@pytest.fixture
async def recorder_cs(recording: RecorderFactory) -> AsyncIterator[RecorderService]:
    """A recorder in front of the built-in central system (standalone)."""
    async with recording(standalone=True) as service:
        yield service


async def recv(websocket: Any, seconds: float = 5) -> str | bytes:
    """The next message on a client or server connection, waiting at most ``timeout(seconds)``."""
    async with asyncio.timeout(timeout(seconds)):
        return await websocket.recv()


async def stop_and_read(service: RecorderService) -> list[dict[str, Any]]:
    """Stop the service (sealing its parts) and read every row of its capture, in recorded order."""
    await service.__aexit__(None, None, None)
    return read_capture(service.options.capture_dir)


def read_capture(capture_dir: Path) -> list[dict[str, Any]]:
    """Every row of a capture's sealed parts, with plain DuckDB, ordered by connection and seq."""
    parts = list(capture_dir.glob("frames/**/*.parquet"))
    if not parts:
        return []
    con = duckdb.connect()
    try:
        cursor = con.execute(
            "SELECT * REPLACE (epoch_us(ts) AS ts) FROM read_parquet($glob, hive_partitioning = true) "
            "ORDER BY ts, connection_id, seq",
            {"glob": str(capture_dir / "frames" / "**" / "*.parquet")},
        )
        columns = [description[0] for description in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def wire(row: dict[str, Any]) -> str | bytes:
    """The frame a message row recorded, as it crossed the wire."""
    return row["raw"] if row["raw"] is not None else bytes(row["raw_binary"])


def messages(rows: list[dict[str, Any]], direction: str) -> list[str | bytes]:
    """The frames recorded in one direction, in order (rows sorted per connection by seq)."""
    ordered = sorted(rows, key=lambda row: (row["connection_id"], row["seq"]))
    return [
        wire(row) for row in ordered if row["event"] == "message" and row["direction"] == direction
    ]
