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

Loopback only and without a token: it drives simulated chargers, nothing else. Served by aiohttp
through :mod:`ocpp_audit.web`, as the recorder's control API is (the simulator needs no recorder).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ocpp_audit.lab.simulator.charger import SimulatedCharger
from ocpp_audit.web import (
    DEFAULT_IDLE_TIMEOUT_S,
    JsonClient,
    WebServer,
    is_loopback,
    json_answer,
    json_application,
    read_json_object,
)

__all__ = ["STEPS", "AsyncSimulatorControlClient", "SimulatorControl", "SimulatorControlClient"]

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


class SimulatorControl(WebServer):
    """Serves the physical steps of ``chargers`` (charge point id -> charger) on loopback."""

    def __init__(
        self,
        chargers: Mapping[str, SimulatedCharger],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the simulator control listens on loopback only, not {host!r}")
        app = json_application(max_body_bytes=MAX_BODY_BYTES)
        app.router.add_get("/chargers", self._get_chargers)
        app.router.add_post("/chargers/{charge_point_id}/{step}", self._post_step)
        super().__init__(app, host, port, idle_timeout=idle_timeout, name="simulator control")
        self.chargers = chargers

    async def __aenter__(self) -> SimulatorControl:
        await self.start()
        return self

    async def _get_chargers(self, request: web.Request) -> web.Response:
        return json_answer(
            200,
            {
                "chargers": [
                    {
                        "charge_point_id": cp,
                        "profile": charger.profile.name,
                        "online": charger.online,
                    }
                    for cp, charger in sorted(self.chargers.items())
                ]
            },
        )

    async def _post_step(self, request: web.Request) -> web.Response:
        charge_point_id = request.match_info["charge_point_id"]
        step = request.match_info["step"].replace("_", "-")
        if step not in STEPS:
            return json_answer(404, {"error": f"no such step {step!r}; steps: {', '.join(STEPS)}"})
        charger = self.chargers.get(charge_point_id)
        if charger is None:
            return json_answer(404, {"error": f"no simulated charger {charge_point_id!r}"})
        arguments = await read_json_object(request, self.idle_timeout)
        method_name, allowed = STEPS[step]
        unknown = set(arguments) - set(allowed)
        if unknown:
            return json_answer(400, {"error": f"{step} takes {', '.join(allowed) or 'no fields'}"})
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await getattr(charger, method_name)(**arguments)
        except (TypeError, ValueError, LookupError) as exc:
            return json_answer(400, {"error": f"{step}: {exc}"})
        except (ConnectionError, TimeoutError) as exc:
            return json_answer(
                502, {"error": f"{step} on {charge_point_id}: {exc or type(exc).__name__}"}
            )
        logger.info("%s: %s %s", charge_point_id, step, arguments)
        return json_answer(200, {"done": step, "charge_point_id": charge_point_id})


class AsyncSimulatorControlClient(JsonClient):
    """An asyncio client of :class:`SimulatorControl`; answers ``(http_status, document)``."""

    async def step(
        self, charge_point_id: str, step: str, timeout: float = STEP_TIMEOUT_S + 10, **fields: Any
    ) -> tuple[int, dict[str, Any]]:
        path = f"/chargers/{quote(charge_point_id, safe='')}/{step}"
        return await self.request("POST", path, fields, timeout)


class SimulatorControlClient:
    """A blocking client of :class:`SimulatorControl` (tests, scripts): each step runs
    :class:`AsyncSimulatorControlClient` in its own event loop."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def step(
        self, charge_point_id: str, step: str, timeout: float = STEP_TIMEOUT_S + 10, **fields: Any
    ) -> tuple[int, dict[str, Any]]:
        client = AsyncSimulatorControlClient(self.url)
        return asyncio.run(client.step(charge_point_id, step, timeout, **fields))
