"""A small JSON-over-HTTP/1.1 server and blocking client, for the two local control APIs.

The recorder's control API (``recorder.control``) and the simulator's control
(``simulator.control``) both answer every request with one JSON document. This module is neutral
ground for both: it imports neither engine nor websockets/mitmproxy, so the simulator need not
import from the recorder.

HTTP/1.1 is parsed by ``h11`` (python-hyper's sans-I/O HTTP/1.1 implementation, installed with
mitmproxy and wsproto) over asyncio streams: a few routes need no web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import h11

__all__ = ["JsonHttpServer", "Route", "is_loopback", "json_request"]

logger = logging.getLogger(__name__)

# An async function answering one request (and its body) with (HTTP status, JSON document).
Route = Callable[[h11.Request, bytes], Awaitable[tuple[int, dict[str, Any]]]]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``, bracketed too)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class JsonHttpServer:
    """Serves ``route`` on ``host:port`` (port 0: any free one), https when ``ssl_context`` is set.

    A request body over ``max_body_bytes`` ends the connection without an answer. Answers to 401
    carry ``WWW-Authenticate: <www_authenticate>`` when it is given.
    """

    def __init__(
        self,
        route: Route,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = 1024 * 1024,
        www_authenticate: str | None = None,
        name: str = "JSON HTTP API",
    ) -> None:
        self.route = route
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_body_bytes = max_body_bytes
        self.www_authenticate = www_authenticate
        self.name = name
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("%s on %s", self.name, self.url)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> JsonHttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(connection, reader)
                if request is None:
                    return
                status, document = await self.route(request, body)
                data = json.dumps(document).encode() + b"\n"
                headers = [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(data))),
                ]
                if status == 401 and self.www_authenticate is not None:
                    headers.append(("WWW-Authenticate", self.www_authenticate))
                writer.write(connection.send(h11.Response(status_code=status, headers=headers)))
                writer.write(connection.send(h11.Data(data=data)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
                if connection.our_state is h11.MUST_CLOSE:
                    return
                connection.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, asyncio.IncompleteReadError) as exc:
            logger.debug("%s connection ended: %s", self.name, exc)
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        """The next request and its body; (None, b"") when the client is done."""
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body_bytes:
                    raise h11.LocalProtocolError("request body too large", 413)
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None, b""


class BadRequest(ValueError):
    """A request body that is not a JSON object; the message is the 400 answer's error text."""


def request_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object (an empty body is ``{}``); raises BadRequest otherwise."""
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"request body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest("request body must be a JSON object")
    return document


def json_request(
    url: str,
    method: str,
    body: dict[str, Any] | None,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One blocking JSON request: ``(http_status, document)``; an unreachable server raises OSError.

    Never goes through an HTTP proxy from the environment: both control APIs are local.
    """
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, _json_document(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _json_document(error.read())


def _json_document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data or b"{}")
    except ValueError:
        return {"error": data.decode("utf-8", "replace").strip()}
    return document if isinstance(document, dict) else {"document": document}
