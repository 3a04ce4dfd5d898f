"""The HTTP control API of active mode: :class:`ControlServer` serves the registry over a small JSON HTTP API, bearer token required::

    GET  /chargers                          -> {"chargers": [{charge_point_id, connected_since, ...}]}
    POST /chargers/<id>/calls  {"action": "Reset", "payload": {"type": "Soft"}, "timeout": 30}
                                            -> {"message_type": 3, "payload": {...}, ...}
    GET  /chargers/<id>/messages?after=N&action=A&wait=S
                                            -> {"messages": [{index, ts, ts_us, action, payload}], "next": M}
        the charger's CALLs logged at index >= N, waiting up to S seconds for one when there is none
        yet (the guided run); the bounded log outlives reconnects and starts at the first request
    GET  /capture                           -> {"capture_dir": ..., "endpoints": {...} or null}
    POST /capture/seal                      -> {"sealed": true}: rotate the journal and wait until
                                               it is sealed into Parquet, so a run's slice is readable

HTTP/1.1 is served by :class:`ocpp_audit.jsonhttp.JsonHttpServer` (``h11`` over asyncio streams):
a few routes need no web framework, and the control API stays independent of either engine.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import h11

from ocpp_audit.jsonhttp import (
    BadRequest,
    JsonHttpServer,
    is_loopback,
    json_request,
    request_object,
)
from ocpp_audit.recorder.injection import (
    DEFAULT_CALL_TIMEOUT_S,
    MAX_CALL_TIMEOUT_S,
    ChargerRegistry,
    InjectionError,
)

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


class ControlServer(JsonHttpServer):
    """The JSON HTTP control API on ``host:port``, every request with ``Authorization: Bearer``."""

    def __init__(
        self,
        registry: ChargerRegistry,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if not is_loopback(host) and ssl_context is None:
            # Without TLS the token and the commands would cross the network in clear text.
            raise ValueError(
                f"the control API listens on a non-loopback address ({host!r}) only with TLS"
            )
        if not token:
            raise ValueError("the control API needs a token")
        super().__init__(
            self._route,
            host,
            port,
            ssl_context=ssl_context,  # serve https when set
            max_body_bytes=MAX_REQUEST_BYTES,
            www_authenticate='Bearer realm="ocpp-audit"',
            name="control API",
        )
        self.registry = registry
        self.token = token
        # Set by the recorder service: the capture folder, a sealing callback, endpoint locations.
        self.capture_dir: Path | None = None
        self.seal: Callable[[], Awaitable[None]] | None = None
        self.endpoints: Any = None  # recorder.endpoints.FileEndpoints when running

    def _authorized(self, request: h11.Request) -> bool:
        for name, value in request.headers:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    return hmac.compare_digest(credentials.strip().encode(), self.token.encode())
        return False

    async def _route(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        if not self._authorized(request):
            return 401, {"error": "missing or wrong bearer token"}
        method = request.method.decode()
        path, _, query = request.target.decode("latin-1").partition("?")
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        if segments == ["capture"]:
            return 200, self._describe_capture()
        if segments == ["capture", "seal"]:
            if method != "POST":
                return 405, {"error": "use POST /capture/seal"}
            if self.seal is None:
                return 404, {"error": "this recorder cannot seal its capture on request"}
            await self.seal()
            return 200, {"sealed": True}
        if len(segments) == 3 and segments[0] == "chargers" and segments[2] == "messages":
            if method != "GET":
                return 405, {"error": "use GET /chargers/<id>/messages"}
            return await self._get_messages(segments[1], query)
        if segments == ["chargers"]:
            if method != "GET":
                return 405, {"error": "use GET /chargers"}
            return 200, {"chargers": self.registry.chargers()}
        if len(segments) == 3 and segments[0] == "chargers" and segments[2] == "calls":
            if method != "POST":
                return 405, {"error": "use POST /chargers/<id>/calls"}
            return await self._post_call(segments[1], body)
        return 404, {"error": f"no such resource: {path}"}

    def _describe_capture(self) -> dict[str, Any]:
        endpoints = None
        if self.endpoints is not None:
            endpoints = {
                "firmware_location": self.endpoints.firmware_location,
                # the charger's id goes where {charge_point_id} stands, percent-encoded
                "diagnostics_location": self.endpoints.diagnostics_location("\0").replace(
                    "%00", "{charge_point_id}"
                ),
            }
        return {
            "capture_dir": str(self.capture_dir) if self.capture_dir is not None else None,
            "endpoints": endpoints,
        }

    async def _get_messages(self, charge_point_id: str, query: str) -> tuple[int, dict[str, Any]]:
        from urllib.parse import parse_qs

        params = {key: values[-1] for key, values in parse_qs(query).items()}
        try:
            after = int(params.get("after", "0"))
            wait = float(params.get("wait", "0"))
        except ValueError:
            return 400, {"error": "'after' must be an integer and 'wait' a number of seconds"}
        if not 0 <= wait <= MAX_WAIT_S:
            return 400, {"error": f"'wait' must be in [0, {MAX_WAIT_S:g}] seconds"}
        log = self.registry.message_log(charge_point_id)
        messages = await log.wait(after, params.get("action") or None, wait)
        return 200, {
            "charge_point_id": charge_point_id,
            "messages": messages,
            "next": log.next_index,
        }

    async def _post_call(self, charge_point_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            document = request_object(body)
        except BadRequest as exc:
            return 400, {"error": str(exc)}
        action = document.get("action")
        payload = document.get("payload", {})
        timeout = document.get("timeout", DEFAULT_CALL_TIMEOUT_S)
        if not isinstance(action, str) or not action:
            return 400, {"error": "'action' must be an OCPP action name"}
        if not isinstance(payload, dict):
            return 400, {"error": "'payload' must be a JSON object"}
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_CALL_TIMEOUT_S
        ):
            return 400, {
                "error": f"'timeout' must be a number of seconds in (0, {MAX_CALL_TIMEOUT_S:g}]"
            }
        try:
            answer = await self.registry.inject(charge_point_id, action, payload, float(timeout))
        except InjectionError as exc:
            return exc.status, {"error": str(exc), "charge_point_id": charge_point_id}
        return 200, answer.to_dict()


class ControlClient:
    """A blocking client of the control API (the ``inject`` command; tests call it in a thread).

    Answers are ``(http_status, document)``; a recorder that cannot be reached raises ``OSError``.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def chargers(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        return self._request("GET", "/chargers", None, timeout)

    def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> tuple[int, dict[str, Any]]:
        """POST one CALL; the HTTP request waits ``timeout`` plus a margin for the answer."""
        from urllib.parse import quote

        body = {"action": action, "payload": payload, "timeout": timeout}
        path = f"/chargers/{quote(charge_point_id, safe='')}/calls"
        return self._request("POST", path, body, timeout + 10)

    def messages(
        self, charge_point_id: str, *, after: int = 0, action: str | None = None, wait: float = 0
    ) -> tuple[int, dict[str, Any]]:
        """The charger's CALLs logged at index >= after, waiting up to ``wait`` s for one."""
        from urllib.parse import quote, urlencode

        query = {"after": after, "wait": wait}
        if action:
            query["action"] = action
        path = f"/chargers/{quote(charge_point_id, safe='')}/messages?{urlencode(query)}"
        return self._request("GET", path, None, wait + 10)

    def capture(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        return self._request("GET", "/capture", None, timeout)

    def seal(self, timeout: float = 120) -> tuple[int, dict[str, Any]]:
        return self._request("POST", "/capture/seal", {}, timeout)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"}
        return json_request(self.url + path, method, body, timeout, headers)
