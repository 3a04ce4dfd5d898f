"""The simulator's own control: physical steps of simulated chargers over a small HTTP API.

``ocpp-audit simulate --control HOST:PORT`` serves it, so that a guided acceptance run in ``--auto``
mode performs each physical step (plug in, swipe, pull the network, ...) without a person::

    GET  /chargers                               -> {"chargers": [{"charge_point_id", "online", ...}]}
    POST /chargers/<id>/plug-in       {"connector_id": 1}
    POST /chargers/<id>/unplug        {"connector_id": 1}
    POST /chargers/<id>/swipe         {"id_tag": "ABC", "connector_id": 1}
    POST /chargers/<id>/lose-network
    POST /chargers/<id>/restore-network
    POST /chargers/<id>/raise-fault   {"connector_id": 1, "error_code": "GroundFailure"}
    POST /chargers/<id>/clear-fault   {"connector_id": 1}
                                                 -> {"done": "<step>"} once the step's messages are sent

Loopback only and without a token: it drives simulated chargers, nothing else. Served by
:class:`ocpp_audit.jsonhttp.JsonHttpServer`, as the recorder's control API is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import h11

from ocpp_audit.jsonhttp import (
    BadRequest,
    JsonHttpServer,
    is_loopback,
    json_request,
    request_object,
)
from ocpp_audit.lab.simulator.charger import SimulatedCharger

__all__ = ["STEPS", "SimulatorControl", "SimulatorControlClient"]

logger = logging.getLogger(__name__)

# step name on the wire -> (SimulatedCharger method, the JSON fields it takes)
STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "plug-in": ("plug_in", ("connector_id",)),
    "unplug": ("unplug", ("connector_id",)),
    "swipe": ("swipe", ("id_tag", "connector_id")),
    "lose-network": ("lose_network", ()),
    "restore-network": ("restore_network", ()),
    "raise-fault": ("raise_fault", ("connector_id", "error_code")),
    "clear-fault": ("clear_fault", ("connector_id",)),
}
STEP_TIMEOUT_S = 60.0
MAX_BODY_BYTES = 64 * 1024


class SimulatorControl(JsonHttpServer):
    """Serves the physical steps of ``chargers`` (charge point id -> charger) on loopback."""

    def __init__(
        self, chargers: Mapping[str, SimulatedCharger], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the simulator control listens on loopback only, not {host!r}")
        super().__init__(
            self._route, host, port, max_body_bytes=MAX_BODY_BYTES, name="simulator control"
        )
        self.chargers = chargers

    async def __aenter__(self) -> SimulatorControl:
        await self.start()
        return self

    async def _route(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        method = request.method.decode()
        path = request.target.decode("latin-1").split("?", 1)[0]
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        if segments == ["chargers"]:
            return 200, {
                "chargers": [
                    {
                        "charge_point_id": cp,
                        "profile": charger.profile.name,
                        "online": charger.online,
                    }
                    for cp, charger in sorted(self.chargers.items())
                ]
            }
        if len(segments) != 3 or segments[0] != "chargers":
            return 404, {"error": f"no such resource: {path}"}
        charge_point_id, step = segments[1], segments[2].replace("_", "-")
        if step not in STEPS:
            return 404, {"error": f"no such step {step!r}; steps: {', '.join(STEPS)}"}
        if method != "POST":
            return 405, {"error": f"use POST /chargers/<id>/{step}"}
        charger = self.chargers.get(charge_point_id)
        if charger is None:
            return 404, {"error": f"no simulated charger {charge_point_id!r}"}
        try:
            arguments = request_object(body)
        except BadRequest as exc:
            return 400, {"error": str(exc)}
        method_name, allowed = STEPS[step]
        unknown = set(arguments) - set(allowed)
        if unknown:
            return 400, {"error": f"{step} takes {', '.join(allowed) or 'no fields'}"}
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await getattr(charger, method_name)(**arguments)
        except (TypeError, ValueError, LookupError) as exc:
            return 400, {"error": f"{step}: {exc}"}
        except (ConnectionError, TimeoutError) as exc:
            return 502, {"error": f"{step} on {charge_point_id}: {exc or type(exc).__name__}"}
        logger.info("%s: %s %s", charge_point_id, step, arguments)
        return 200, {"done": step, "charge_point_id": charge_point_id}


class SimulatorControlClient:
    """A blocking client of :class:`SimulatorControl`; answers ``(http_status, document)``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def step(
        self, charge_point_id: str, step: str, timeout: float = STEP_TIMEOUT_S + 10, **fields: Any
    ) -> tuple[int, dict[str, Any]]:
        url = f"{self.url}/chargers/{quote(charge_point_id, safe='')}/{step}"
        return json_request(url, "POST", fields, timeout)
