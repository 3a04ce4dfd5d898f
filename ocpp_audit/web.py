"""aiohttp glue for the local HTTP APIs: the recorder's control API and firmware endpoint, and the
simulator's control.

Neutral ground: it imports neither the recorder nor the lab, so the simulator needs no recorder for
HTTP. aiohttp parses HTTP and enforces the limits; this module only says how they are set here:

- a request body over ``client_max_size`` is answered 413 (aiohttp raises it while reading);
- an idle connection, one that sends nothing or only part of a request, is closed after
  ``idle_timeout`` (aiohttp's ``keepalive_timeout``, armed from the moment the socket is accepted:
  aiohttp does so since aio-libs/aiohttp#13681, in 3.14.5 as installed here, not in the 3.9 the
  dependency allows; tests/test_web.py fails on an aiohttp without it);
  a request body that does not arrive within ``idle_timeout`` is answered 408, and after such an
  early answer the connection is closed once the rest of the body has been dropped (at most
  ``idle_timeout``, 10 s at most);
- every JSON API answers one JSON document, errors as ``{"error": "..."}``;
- clients never use an HTTP proxy from the environment (``trust_env=False``): these APIs are local.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_S",
    "JsonClient",
    "JsonError",
    "WebServer",
    "is_loopback",
    "json_answer",
    "json_application",
    "read_json_object",
]

logger = logging.getLogger(__name__)

# A client that sends nothing for this long (before or between requests, or in the middle of one)
# is disconnected, so idle sockets cannot pile up until the file limit refuses new chargers.
DEFAULT_IDLE_TIMEOUT_S = 30.0
MAX_LINGER_S = 10.0
# After stop() begins, requests still running (long polls, injected CALLs) get this long to finish.
SHUTDOWN_GRACE_S = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``, bracketed too)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- server -------------------------------------------------------------------------------------


class WebServer:
    """Serves ``app`` on ``host:port`` (port 0: any free one), https when ``ssl_context`` is set."""

    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
        name: str = "HTTP API",
    ) -> None:
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds")
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.name = name
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.idle_timeout,
            # after an early answer (408, 413) the rest of the body is read and dropped for this
            # long at most, so the client sees the answer rather than a reset; then it is closed
            lingering_time=min(self.idle_timeout, MAX_LINGER_S),
            shutdown_timeout=SHUTDOWN_GRACE_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        logger.info("%s on %s", self.name, self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


# --- JSON APIs ----------------------------------------------------------------------------------


class JsonError(Exception):
    """Ends a JSON API request with ``status`` and ``{"error": error}``."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def json_answer(
    status: int, document: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(document).encode() + b"\n",
        content_type="application/json",
        headers=headers,
    )


def json_application(
    *,
    max_body_bytes: int,
    authorize: Callable[[web.Request], bool] | None = None,
    www_authenticate: str | None = None,
) -> web.Application:
    """An application whose every answer, errors included, is one JSON document.

    ``authorize`` is asked before anything else (routing, reading the body): False answers 401,
    with ``WWW-Authenticate: <www_authenticate>`` when given.
    """

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if authorize is not None and not authorize(request):
            headers = {"WWW-Authenticate": www_authenticate} if www_authenticate else None
            return json_answer(401, {"error": "missing or wrong bearer token"}, headers)
        try:
            return await handler(request)
        except JsonError as exc:
            answer = json_answer(exc.status, {"error": exc.error})
        except web.HTTPException as exc:  # aiohttp's own: no route, wrong method, body too large
            if exc.status < 400:
                raise
            if isinstance(exc, web.HTTPMethodNotAllowed):
                error = f"use {' or '.join(sorted(exc.allowed_methods))} {request.path}"
            elif isinstance(exc, web.HTTPNotFound):
                error = f"no such resource: {request.path}"
            else:
                error = exc.text or exc.reason
            answer = json_answer(exc.status, {"error": error})
        if answer.status == 408:
            answer.force_close()  # the body did not come; the connection is not reused
        return answer

    return web.Application(client_max_size=max_body_bytes, middlewares=[json_errors])


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


async def read_json_object(request: web.Request, read_timeout: float) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``).

    Raises JsonError: 408 when the body does not arrive within ``read_timeout`` seconds, 400 when
    it is not a JSON object (``NaN``, ``Infinity`` and numbers out of float range are not JSON,
    RFC 8259 section 6). A body over the application's ``client_max_size`` raises aiohttp's 413.
    """
    try:
        async with asyncio.timeout(read_timeout):
            body = await request.read()
    except TimeoutError:
        raise JsonError(408, f"request body not received within {read_timeout:g} s") from None
    try:
        document = json.loads(body or b"{}", parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise JsonError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise JsonError(400, "request body must be a JSON object")
    return document


# --- client -------------------------------------------------------------------------------------


class JsonClient:
    """An asyncio client of a JSON API at ``url``: each request answers ``(http_status, document)``.

    ``async with`` keeps one session (and its connections) open for many requests; without it each
    request opens and closes its own. A server that cannot be reached (or drops the connection)
    raises ``OSError``; no answer within the request's timeout raises ``TimeoutError``.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> JsonClient:
        self._session = _session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10
    ) -> tuple[int, dict[str, Any]]:
        if self._session is not None:
            return await self._exchange(self._session, method, path, body, timeout)
        async with _session() as session:
            return await self._exchange(session, method, path, body, timeout)

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: float,
    ) -> tuple[int, dict[str, Any]]:
        try:
            async with session.request(
                method,
                self.url + path,
                json=body,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                return response.status, _json_document(await response.read())
        except aiohttp.ClientError as exc:
            if isinstance(exc, OSError):
                raise
            raise ConnectionError(f"{self.url}: {exc or type(exc).__name__}") from exc


def _session() -> aiohttp.ClientSession:
    # trust_env=False (aiohttp's default, said out loud): never an http_proxy from the environment.
    return aiohttp.ClientSession(trust_env=False)


def _json_document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data or b"{}")
    except ValueError:
        return {"error": data.decode("utf-8", "replace").strip()}
    return document if isinstance(document, dict) else {"document": document}
