"""The HTTP control API of active mode: :class:`ControlServer` serves the registry over a small JSON HTTP API, bearer token required::

    GET  /chargers                          -> {"chargers": [{charge_point_id, connected_since, ...}]}
    POST /chargers/<id>/calls  {"action": "Reset", "payload": {"type": "Soft"}, "timeout": 30}
                                            -> {"message_type": 3, "payload": {...}, ...}
    GET  /chargers/<id>/messages?after=N&action=A&wait=S
                                            -> {"messages": [{index, ts, ts_us, action, payload}], "next": M}
        the charger's CALLs logged at index >= N, waiting up to S seconds for one when there is none
        yet (the guided run); the bounded log outlives reconnects and starts at the first request
    GET  /capture[?charge_point_id=ID]      -> {"capture_dir": ..., "endpoints": {...} or null}
        endpoints: the firmware location, and with ?charge_point_id= that charger's own
        diagnostics upload URL (its FTP password for this run is in it)
    POST /capture/seal                      -> {"sealed": true}: rotate the journal and wait until
                                               it is sealed into Parquet, so a run's slice is readable
    GET  /mirrors                           -> {"mirrors": [{name, url, connected, queued, sent,
                                               answered, dropped, failed_connects, mirror_calls,
                                               last_error}]}: the shadow backends (recorder/mirror.py)

HTTP/1.1 is served by aiohttp (:mod:`ocpp_audit.web`): routes, a 1 MiB body limit (413 beyond), and
idle connections closed after ``idle_timeout``. The control API stays independent of either engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from ocpp_audit.recorder.injection import (
    DEFAULT_CALL_TIMEOUT_S,
    MAX_CALL_TIMEOUT_S,
    ChargerRegistry,
    InjectionError,
)
from ocpp_audit.web import (
    DEFAULT_IDLE_TIMEOUT_S,
    JsonClient,
    WebServer,
    is_loopback,
    json_answer,
    json_application,
    read_json_object,
)

__all__ = [
    "AsyncControlClient",
    "ControlClient",
    "ControlServer",
    "generate_token",
    "is_loopback",
    "write_token_file",
]

logger = logging.getLogger(__name__)

DEFAULT_CONTROL_PORT = 9001
MAX_WAIT_S = 120.0
TOKEN_FILE_NAME = "control-token"
MAX_REQUEST_BYTES = 1024 * 1024


# --- the control API over HTTP ----------------------------------------------------------------------


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only (0600), replacing any old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")


class ControlServer(WebServer):
    """The JSON HTTP control API on ``host:port``, every request with ``Authorization: Bearer``."""

    def __init__(
        self,
        registry: ChargerRegistry,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ):
        if not is_loopback(host) and ssl_context is None:
            # Without TLS the token and the commands would cross the network in clear text.
            raise ValueError(
                f"the control API listens on a non-loopback address ({host!r}) only with TLS"
            )
        if not token:
            raise ValueError("the control API needs a token")
        app = json_application(
            max_body_bytes=MAX_REQUEST_BYTES,
            authorize=self._authorized,
            www_authenticate='Bearer realm="ocpp-audit"',
        )
        app.router.add_get("/chargers", self._get_chargers)
        app.router.add_post("/chargers/{charge_point_id}/calls", self._post_call)
        app.router.add_get("/chargers/{charge_point_id}/messages", self._get_messages)
        app.router.add_get("/capture", self._get_capture)
        app.router.add_post("/capture/seal", self._post_seal)
        app.router.add_get("/mirrors", self._get_mirrors)
        super().__init__(
            app,
            host,
            port,
            ssl_context=ssl_context,
            idle_timeout=idle_timeout,
            name="control API",
        )
        self.registry = registry
        self.token = token
        # Set by the recorder service: the capture folder, a sealing callback, endpoint locations.
        self.capture_dir: Path | None = None
        self.seal: Callable[[], Awaitable[None]] | None = None
        self.endpoints: Any = None  # recorder.endpoints.FileEndpoints when running
        # Each mirror's state now (recorder.mirror.MirrorState objects); none without mirrors.
        self.mirror_states: Callable[[], list[Any]] = list

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        # constant time: the comparison does not tell how much of a guess was right
        return hmac.compare_digest(
            credentials.strip().encode("utf-8", "surrogateescape"), self.token.encode()
        )

    async def _get_chargers(self, request: web.Request) -> web.Response:
        return json_answer(200, {"chargers": self.registry.chargers()})

    async def _get_capture(self, request: web.Request) -> web.Response:
        endpoints = None
        if self.endpoints is not None:
            endpoints = {"firmware_location": self.endpoints.firmware_location}
            charge_point_id = request.query.get("charge_point_id")
            if charge_point_id:  # each charger's URL carries its own FTP password
                endpoints["diagnostics_location"] = self.endpoints.diagnostics_location(
                    charge_point_id
                )
        return json_answer(
            200,
            {
                "capture_dir": str(self.capture_dir) if self.capture_dir is not None else None,
                "endpoints": endpoints,
            },
        )

    async def _get_mirrors(self, request: web.Request) -> web.Response:
        return json_answer(200, {"mirrors": [state.to_dict() for state in self.mirror_states()]})

    async def _post_seal(self, request: web.Request) -> web.Response:
        if self.seal is None:
            return json_answer(404, {"error": "this recorder cannot seal its capture on request"})
        await self.seal()
        return json_answer(200, {"sealed": True})

    async def _get_messages(self, request: web.Request) -> web.Response:
        charge_point_id = request.match_info["charge_point_id"]
        params = request.query
        try:
            after = int(params.get("after", "0"))
            wait = float(params.get("wait", "0"))
        except ValueError:
            return json_answer(
                400, {"error": "'after' must be an integer and 'wait' a number of seconds"}
            )
        if not 0 <= wait <= MAX_WAIT_S:  # NaN fails this too
            return json_answer(400, {"error": f"'wait' must be in [0, {MAX_WAIT_S:g}] seconds"})
        log = self.registry.message_log(charge_point_id)
        messages = await log.wait(after, params.get("action") or None, wait)
        return json_answer(
            200,
            {"charge_point_id": charge_point_id, "messages": messages, "next": log.next_index},
        )

    async def _post_call(self, request: web.Request) -> web.Response:
        charge_point_id = request.match_info["charge_point_id"]
        document = await read_json_object(request, self.idle_timeout)
        action = document.get("action")
        payload = document.get("payload", {})
        timeout = document.get("timeout", DEFAULT_CALL_TIMEOUT_S)
        if not isinstance(action, str) or not action:
            return json_answer(400, {"error": "'action' must be an OCPP action name"})
        if not isinstance(payload, dict):
            return json_answer(400, {"error": "'payload' must be a JSON object"})
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_CALL_TIMEOUT_S
        ):
            return json_answer(
                400,
                {"error": f"'timeout' must be a number of seconds in (0, {MAX_CALL_TIMEOUT_S:g}]"},
            )
        try:
            answer = await self.registry.inject(charge_point_id, action, payload, float(timeout))
        except InjectionError as exc:
            return json_answer(exc.status, {"error": str(exc), "charge_point_id": charge_point_id})
        return json_answer(200, answer.to_dict())


class AsyncControlClient(JsonClient):
    """An asyncio client of the control API (the guided run, the demo).

    Answers are ``(http_status, document)``; a recorder that cannot be reached raises ``OSError``.
    ``async with`` keeps one connection pool for a run; without it each request has its own.
    """

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, {"Authorization": f"Bearer {token}"})
        self.token = token

    async def __aenter__(self) -> AsyncControlClient:
        await super().__aenter__()
        return self

    async def chargers(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        return await self.request("GET", "/chargers", None, timeout)

    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> tuple[int, dict[str, Any]]:
        """POST one CALL; the HTTP request waits ``timeout`` plus a margin for the answer."""
        body = {"action": action, "payload": payload, "timeout": timeout}
        path = f"/chargers/{quote(charge_point_id, safe='')}/calls"
        return await self.request("POST", path, body, timeout + 10)

    async def messages(
        self, charge_point_id: str, *, after: int = 0, action: str | None = None, wait: float = 0
    ) -> tuple[int, dict[str, Any]]:
        """The charger's CALLs logged at index >= after, waiting up to ``wait`` s for one."""
        query: dict[str, Any] = {"after": after, "wait": wait}
        if action:
            query["action"] = action
        path = f"/chargers/{quote(charge_point_id, safe='')}/messages?{urlencode(query)}"
        return await self.request("GET", path, None, wait + 10)

    async def capture(
        self, timeout: float = 10, *, charge_point_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The capture folder and endpoints; with ``charge_point_id``, its diagnostics URL."""
        path = "/capture"
        if charge_point_id is not None:
            path += "?" + urlencode({"charge_point_id": charge_point_id})
        return await self.request("GET", path, None, timeout)

    async def mirrors(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        """Each mirror's state: connected, queued, sent, answered, dropped, ..."""
        return await self.request("GET", "/mirrors", None, timeout)

    async def seal(self, timeout: float = 120) -> tuple[int, dict[str, Any]]:
        return await self.request("POST", "/capture/seal", {}, timeout)


class ControlClient:
    """A blocking client of the control API, for callers without an event loop (the ``inject``
    command; tests call it in a thread): each call runs :class:`AsyncControlClient` in its own
    loop (``asyncio.run``). Async callers use :class:`AsyncControlClient` instead.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def async_client(self) -> AsyncControlClient:
        """The asyncio client of the same API and token."""
        return AsyncControlClient(self.url, self.token)

    def chargers(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self.async_client().chargers(timeout))

    def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self.async_client().call(charge_point_id, action, payload, timeout))

    def messages(
        self, charge_point_id: str, *, after: int = 0, action: str | None = None, wait: float = 0
    ) -> tuple[int, dict[str, Any]]:
        client = self.async_client()
        return asyncio.run(client.messages(charge_point_id, after=after, action=action, wait=wait))

    def capture(
        self, timeout: float = 10, *, charge_point_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self.async_client().capture(timeout, charge_point_id=charge_point_id))

    def mirrors(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self.async_client().mirrors(timeout))

    def seal(self, timeout: float = 120) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self.async_client().seal(timeout))

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float
    ) -> tuple[int, dict[str, Any]]:
        return asyncio.run(self.async_client().request(method, path, body, timeout))
