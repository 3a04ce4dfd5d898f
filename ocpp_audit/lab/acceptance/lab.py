"""A lab on loopback for guided runs without a person: the recorder (standalone, with its control
API and firmware/diagnostics endpoints) and simulated chargers behind the simulator's control.

The demo and the tests of the guided run use it; a guided run drives it exactly as it drives a
real recorder and charger, over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ocpp_audit.lab.central_system import CentralSystem, CentralSystemConfig
from ocpp_audit.lab.simulator import simulated_charger
from ocpp_audit.lab.simulator.charger import SimulatedCharger
from ocpp_audit.lab.simulator.control import SimulatorControl
from ocpp_audit.lab.simulator.scenario import ScenarioTiming, charger_timing_for_scenario
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService


@dataclass
class Lab:
    service: RecorderService
    chargers: dict[str, SimulatedCharger]
    simulator_control: SimulatorControl

    @property
    def control_url(self) -> str:
        assert self.service.control is not None
        return self.service.control.url


@contextlib.asynccontextmanager
async def guided_lab(
    capture_dir: Path, profiles: Mapping[str, str], control_token: str, *, engine: str = "relay"
) -> AsyncIterator[Lab]:
    """Start the lab with one booted simulated charger per ``profiles`` entry (id -> profile; a
    ``v201-*`` profile is an OCPP 2.0.1 station), recorded by ``engine`` (relay or mitmproxy)."""
    options = RecordOptions(
        engine=engine,
        capture_dir=capture_dir,
        standalone=True,
        control_host="127.0.0.1",
        control_port=0,
        control_token=control_token,
        endpoints_host="127.0.0.1",
    )
    # The scenario swipes one card the central system knows and one it must refuse (function 6).
    config = CentralSystemConfig(
        heartbeat_interval=ScenarioTiming.heartbeat_interval,
        id_tags={ScenarioTiming.valid_id_tag: "Accepted"},
    )
    async with RecorderService(options, CentralSystem(config)) as service:
        chargers = {
            charge_point_id: simulated_charger(
                charge_point_id, service.url, profile=profile, timing=charger_timing_for_scenario()
            )
            for charge_point_id, profile in profiles.items()
        }
        try:
            await asyncio.gather(*(charger.start() for charger in chargers.values()))
            async with SimulatorControl(chargers) as simulator_control:
                yield Lab(service, chargers, simulator_control)
        finally:
            await asyncio.gather(*(c.stop() for c in chargers.values()), return_exceptions=True)
