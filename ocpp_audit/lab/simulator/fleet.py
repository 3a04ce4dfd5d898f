"""A fleet of simulated chargers: start them, optionally run charging sessions, stop them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ocpp_audit.lab.simulator import simulated_charger
from ocpp_audit.lab.simulator.charger import ChargerTiming, SimulatedCharger

__all__ = ["FleetMember", "charge_point_ids", "run_fleet"]

logger = logging.getLogger(__name__)


@dataclass
class FleetMember:
    charger: SimulatedCharger
    error: str | None = None  # why it could not start
    sessions: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        summary = self.charger.summary()
        summary["sessions"] = self.sessions
        summary["error"] = self.error
        return summary


def charge_point_ids(id_prefix: str, count: int) -> list[str]:
    """CP001, CP002, ... (at least three digits, more when the fleet needs them)."""
    width = max(3, len(str(count)))
    return [f"{id_prefix}{n:0{width}d}" for n in range(1, count + 1)]


async def _charging_sessions(
    member: FleetMember,
    id_tag: str,
    session_seconds: tuple[float, float],
    idle_seconds: tuple[float, float],
) -> None:
    """Plug in, swipe, charge a while, swipe, unplug; again and again on random connectors."""
    charger = member.charger
    rng = random.Random(charger.charge_point_id)
    connectors = len(charger.connectors) - 1
    while True:
        await asyncio.sleep(rng.uniform(*idle_seconds))
        connector_id = rng.randint(1, connectors)
        try:
            await charger.plug_in(connector_id)
            await charger.swipe(id_tag, connector_id)
            await asyncio.sleep(rng.uniform(*session_seconds))
            await charger.swipe(id_tag, connector_id)
            await charger.unplug(connector_id)
            member.sessions += 1
        except (ConnectionError, TimeoutError) as exc:
            logger.warning("%s: session interrupted: %s", charger.charge_point_id, exc)


async def run_fleet(
    target: str,
    *,
    count: int,
    profile: str = "good",
    id_prefix: str = "CP",
    duration: float | None = None,
    auth: tuple[str, str] | None = None,
    charge: bool = False,
    connectors: int = 2,
    id_tag: str = "SIM-CARD-0001",
    timing: ChargerTiming | None = None,
    session_seconds: tuple[float, float] = (10.0, 30.0),
    idle_seconds: tuple[float, float] = (1.0, 5.0),
    stop: asyncio.Event | None = None,
    start_concurrency: int = 50,
    on_tick: Callable[[list[FleetMember]], None] | None = None,
) -> list[FleetMember]:
    """Run ``count`` chargers against ``target`` until ``duration`` seconds pass or ``stop`` is set.

    Chargers start ``start_concurrency`` at a time; one that cannot connect keeps its error in
    its :class:`FleetMember` and the others carry on. Every charger is stopped before returning.
    ``on_tick(members)`` is called every second while they run (for a progress display).
    """
    members = [
        FleetMember(
            simulated_charger(
                charge_point_id,
                target,
                profile=profile,
                connectors=connectors,
                auth=auth,
                timing=timing,
            )
        )
        for charge_point_id in charge_point_ids(id_prefix, count)
    ]
    stop = stop or asyncio.Event()
    gate = asyncio.Semaphore(start_concurrency)

    async def start(member: FleetMember) -> None:
        async with gate:
            try:
                await member.charger.start()
            except Exception as exc:  # each charger's failure is reported, not fatal
                member.error = f"{type(exc).__name__}: {exc}"
                logger.warning("%s: cannot start: %s", member.charger.charge_point_id, exc)
                return
        if charge:
            member.tasks.append(
                asyncio.create_task(
                    _charging_sessions(member, id_tag, session_seconds, idle_seconds)
                )
            )

    async def tick() -> None:
        while on_tick is not None:
            await asyncio.sleep(1.0)
            on_tick(members)

    starting = asyncio.gather(*(start(m) for m in members))
    ticker = asyncio.create_task(tick())
    try:
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter}, timeout=duration)
        waiter.cancel()
    finally:
        ticker.cancel()
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        for member in members:
            for task in member.tasks:
                task.cancel()
        await asyncio.gather(*(t for m in members for t in m.tasks), return_exceptions=True)
        await asyncio.gather(*(m.charger.stop() for m in members), return_exceptions=True)
    return members
