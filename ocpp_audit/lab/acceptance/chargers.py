"""The physical side of a guided run: a person at a real charger, or the simulator's control.

Both implement :class:`~ocpp_audit.lab.simulator.scenario.PhysicalCharger`. Each step returns once it
is asked for (or done); the scenario then waits for the charger's messages that show it happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ocpp_audit.lab.simulator.control import AsyncSimulatorControlClient
from ocpp_audit.recorder.control import AsyncControlClient, ControlClient

__all__ = ["AutoCharger", "PromptedCharger"]

logger = logging.getLogger(__name__)


class AutoCharger:
    """Physical steps through ``ocpp-audit simulate --control`` (no person needed)."""

    def __init__(self, charge_point_id: str, simulator_url: str) -> None:
        self.charge_point_id = charge_point_id
        self.client = AsyncSimulatorControlClient(simulator_url)

    async def _step(self, step: str, **fields: object) -> None:
        try:
            status, answer = await self.client.step(self.charge_point_id, step, **fields)
        except OSError as exc:
            raise ConnectionError(f"simulator control at {self.client.url}: {exc}") from exc
        if status != 200:
            raise ConnectionError(f"simulator control: {step}: {answer.get('error')}")

    async def plug_in(self, connector_id: int = 1) -> None:
        await self._step("plug-in", connector_id=connector_id)

    async def unplug(self, connector_id: int = 1) -> None:
        await self._step("unplug", connector_id=connector_id)

    async def swipe(self, id_tag: str, connector_id: int = 1) -> None:
        await self._step("swipe", id_tag=id_tag, connector_id=connector_id)

    async def lose_network(self) -> None:
        await self._step("lose-network")

    async def restore_network(self) -> None:
        await self._step("restore-network")

    async def raise_fault(self, connector_id: int = 1, error_code: str = "GroundFailure") -> None:
        await self._step("raise-fault", connector_id=connector_id, error_code=error_code)

    async def clear_fault(self, connector_id: int = 1) -> None:
        await self._step("clear-fault", connector_id=connector_id)


class PromptedCharger:
    """Tells a person what to do at the charger; the run then waits for the charger's messages.

    ``say`` prints one instruction. Pulling and restoring the network also wait until the
    recorder sees the charger go and come back (``GET /chargers``), up to ``network_timeout``.
    """

    def __init__(
        self,
        charge_point_id: str,
        say: Callable[[str], None],
        control: ControlClient | AsyncControlClient | None = None,
        *,
        network_timeout: float = 900.0,
    ) -> None:
        self.charge_point_id = charge_point_id
        self.say = say
        # its own client (a request each, no session to close): the run may close its own first
        self.control = None if control is None else AsyncControlClient(control.url, control.token)
        self.network_timeout = network_timeout
        self._offline_from: str | None = None

    async def plug_in(self, connector_id: int = 1) -> None:
        self.say(f"Plug the cable into connector {connector_id} (an EV or a test box on it).")

    async def unplug(self, connector_id: int = 1) -> None:
        self.say(f"Unplug the cable from connector {connector_id}.")

    async def swipe(self, id_tag: str, connector_id: int = 1) -> None:
        self.say(f"Swipe the card {id_tag!r} at the reader (connector {connector_id}).")

    async def lose_network(self) -> None:
        # The connection to watch, asked before the person acts on it.
        self._offline_from = await self._connection_id()
        self.say(
            "Pull the charger's network (unplug its Ethernet cable or switch off its modem) now "
            "and keep it out until told to restore it."
        )
        if self._offline_from is None:
            return  # not connected to begin with
        # A pulled cable can leave a half-open TCP connection the recorder notices only later:
        # wait a while for the close, then go on (the offline period is timed from here).
        await self._wait_connection(lambda current: current != self._offline_from, 120.0, False)

    async def restore_network(self) -> None:
        self.say("Restore the charger's network now.")
        before = self._offline_from
        await self._wait_connection(
            lambda current: current is not None and current != before, self.network_timeout, True
        )

    async def raise_fault(self, connector_id: int = 1, error_code: str = "GroundFailure") -> None:
        where = "the charger itself" if connector_id == 0 else f"connector {connector_id}"
        self.say(
            f"Create a fault on {where} (e.g. {error_code}: trip the RCD, or use the test box's "
            "fault switch)."
        )

    async def clear_fault(self, connector_id: int = 1) -> None:
        where = "the charger" if connector_id == 0 else f"connector {connector_id}"
        self.say(f"Clear the fault on {where}.")

    async def _connection_id(self) -> str | None:
        """The charger's connection the recorder holds now (None: not connected)."""
        if self.control is None:
            return None
        try:
            status, document = await self.control.chargers()
        except OSError as exc:
            raise ConnectionError(f"control API: {exc}") from exc
        if status != 200:
            raise ConnectionError(f"control API: {document.get('error')}")
        for charger in document.get("chargers", []):
            if charger.get("charge_point_id") == self.charge_point_id:
                return charger.get("connection_id")
        return None

    async def _wait_connection(
        self, done: Callable[[str | None], bool], limit: float, required: bool
    ) -> None:
        if self.control is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            if done(await self._connection_id()):
                return
            if loop.time() >= deadline:
                break
            await asyncio.sleep(1.0)
        if required:
            raise TimeoutError(f"{self.charge_point_id} did not reconnect within {limit:g} s")
        logger.warning("%s: the recorder still holds its connection", self.charge_point_id)
