"""The acceptance scenario against the real built-in central system, one charger per profile.

All profiles run at once (the scenario mostly waits), so the file stays fast: every profile must
complete the scenario (the analyser judges the faults, the scenario only drives), and each fault
shows in what the central system received.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from ocpp_audit.lab.central_system import CentralSystem, CentralSystemConfig
from ocpp_audit.lab.simulator import PROFILES, SimulatedCharger
from ocpp_audit.lab.simulator.scenario import (
    ACCEPTANCE_STEPS,
    ScenarioError,
    ScenarioTiming,
    Step,
    charger_timing_for_scenario,
    run_acceptance_scenario,
)
from tests.conftest import timeout

TIMING = ScenarioTiming()


@pytest.fixture
async def central_system() -> AsyncIterator[CentralSystem]:
    cs = CentralSystem(
        CentralSystemConfig(heartbeat_interval=2, id_tags={TIMING.valid_id_tag: "Accepted"})
    )
    await cs.start()
    yield cs
    await cs.stop()


def test_steps_cover_the_16_functions_in_the_scripts_order():
    covered = {f for step in ACCEPTANCE_STEPS for f in step.functions}
    assert covered == set(range(1, 17))
    names = [step.name for step in ACCEPTANCE_STEPS]
    assert len(names) == len(set(names))
    # function 16 (TriggerMessage after boot) right after the boot, as the script asks
    assert ACCEPTANCE_STEPS[0].functions == (1,) and ACCEPTANCE_STEPS[1].functions == (16,)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def test_every_profile_completes_the_scenario_and_shows_its_fault(central_system):
    cs = central_system
    chargers = {
        name: SimulatedCharger(
            f"CP-{name}", cs.url, profile=name, timing=charger_timing_for_scenario()
        )
        for name in PROFILES
    }
    progress: dict[str, list[str]] = {name: [] for name in PROFILES}

    async def run(name: str) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        facts = await run_acceptance_scenario(
            cs,
            chargers[name],
            on_step=lambda step: progress[name].append(step.name),
            charge_seconds=3.0,  # the default 8 s is for the sparse sampler, not judged here
        )
        return facts, time.monotonic() - started

    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(run(name) for name in PROFILES)), timeout(40)
        )
    finally:
        await asyncio.gather(*(c.stop() for c in chargers.values()))
    facts = dict(zip(PROFILES, (r[0] for r in results), strict=True))
    durations = {name: r[1] for name, r in zip(PROFILES, results, strict=True)}
    assert all(len(p) == len(ACCEPTANCE_STEPS) for p in progress.values()), progress
    assert max(durations.values()) < timeout(30), durations

    def calls(name: str, action: str) -> list[dict[str, Any]]:
        return [e.payload for e in cs.received(f"CP-{name}", action)]

    # good: every step's evidence is there
    good = facts["good"]
    assert good["change HeartbeatInterval"] == good["change MeterValueSampleInterval"] == "Accepted"
    assert int(good["configuration"]["NumberOfConnectors"]) == 2
    boots = calls("good", "BootNotification")
    assert len(boots) == 4  # power-on, soft reset, hard reset, firmware install
    assert boots[-1]["firmwareVersion"] == "1.5.0" != boots[0]["firmwareVersion"]
    reasons = [s.get("reason") for s in calls("good", "StopTransaction")]
    assert reasons == ["Remote", "Local", "EVDisconnected", "Local"]
    assert [a["idTag"] for a in calls("good", "Authorize")].count(TIMING.rejected_id_tag) == 1
    assert all(s["idTag"] == TIMING.valid_id_tag for s in calls("good", "StartTransaction"))
    firmware = [s["status"] for s in calls("good", "FirmwareStatusNotification")]
    assert firmware == ["Downloading", "Downloaded", "Installing", "Installed"]
    diagnostics = [s["status"] for s in calls("good", "DiagnosticsStatusNotification")]
    assert diagnostics == ["Uploading", "Uploaded"]
    faults = {
        (s["connectorId"], s["errorCode"])
        for s in calls("good", "StatusNotification")
        if s["status"] == "Faulted"
    }
    assert faults == {(1, "GroundFailure"), (0, "HighTemperature")}

    # the offline transaction: periodic samples from inside the gap, delivered late
    def offline_samples(name: str) -> list[dict[str, Any]]:
        last = calls(name, "StartTransaction")[-1]
        stop = calls(name, "StopTransaction")[-1]
        return [
            m
            for m in calls(name, "MeterValues")
            if m.get("transactionId") == stop["transactionId"]
            and m["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"
            and _ts(m["meterValue"][0]["timestamp"]) >= _ts(last["timestamp"])
        ]

    assert len(offline_samples("good")) >= 3
    assert offline_samples("drops-queued-meter-values") == []

    # each fault, as the central system saw it
    assert "iccid" not in calls("no-serial", "BootNotification")[0]
    assert facts["rejects-change-configuration"]["change HeartbeatInterval"] == "Rejected"
    hb_gaps = {
        name: [b - a for a, b in itertools.pairwise(beats)]
        for name in ("good", "slow-heartbeat")
        for beats in [[e.received_at for e in cs.received(f"CP-{name}", "Heartbeat")]]
    }
    assert max(hb_gaps["slow-heartbeat"]) >= 5.0 > max(hb_gaps["good"][1:] or [0])


async def test_a_missing_answer_names_the_step(central_system):
    charger = SimulatedCharger("CP-STUCK", central_system.url, timing=charger_timing_for_scenario())

    async def never(ctx: Any) -> None:
        await ctx.expect("DataTransfer", after=ctx.commander.mark(), timeout=0.2)

    steps = (ACCEPTANCE_STEPS[0], Step("wait for nothing", (99,), never))
    try:
        with pytest.raises(ScenarioError, match="wait for nothing"):
            await run_acceptance_scenario(central_system, charger, steps=steps)
        with pytest.raises(TypeError, match="unknown scenario timing"):
            await run_acceptance_scenario(central_system, charger, steps=steps, bogus=1)
    finally:
        await charger.stop()
