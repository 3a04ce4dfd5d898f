"""OCPP 2.0.1 end to end, through each engine: simulated 2.0.1 stations -> recorder -> built-in
central system (ocpp2.0.1), each walked through the guided acceptance run in 2.0.1 terms, then
judged by the 2.0.1 rules.

The well-behaved station must pass all 16 functions and every protocol check; each faulty profile
must fail exactly the function its fault touches, nothing else, whichever engine recorded it.
"""

from __future__ import annotations

import asyncio

import pytest

from ocpp_audit.analyser.engine import analyse
from ocpp_audit.cli.demo import run_demo
from ocpp_audit.lab.simulator.profiles import PROFILES_V201
from tests.conftest import timeout
from tests.engines import ENGINES


@pytest.fixture(scope="module", params=ENGINES)
def capture_of_every_v201_profile(request: pytest.FixtureRequest, tmp_path_factory):
    capture_dir = tmp_path_factory.mktemp(f"v201-{request.param}") / "capture"
    chargers = {f"V201-{name}": name for name in PROFILES_V201}

    async def run():
        return await asyncio.wait_for(
            run_demo(capture_dir, chargers=chargers, engine=request.param), timeout(120)
        )

    result = asyncio.run(run())
    assert all(step.status == "done" for run in result.runs for step in run.steps), [
        (run.charge_point_id, step) for run in result.runs for step in run.steps
    ]
    return capture_dir


@pytest.mark.parametrize("profile_name", sorted(PROFILES_V201))
def test_each_v201_profile_fails_exactly_what_its_fault_touches(
    capture_of_every_v201_profile, profile_name
):
    profile = PROFILES_V201[profile_name]
    report = analyse([capture_of_every_v201_profile], chargers=[f"V201-{profile_name}"])
    [charger] = report.to_dict()["chargers"]
    assert charger["ocpp_version"] == "2.0.1"
    functions = {entry["function"]: entry["verdict"] for entry in charger["functions"]}
    assert sorted(functions) == list(range(1, 17))
    # every function judged by its 2.0.1 rule, none by a 1.6 one
    assert all(entry["rule"].endswith("-v201") for entry in charger["functions"])
    failed = sorted(number for number, verdict in functions.items() if verdict == "FAIL")
    assert failed == sorted(profile.fails), charger["functions"]
    assert [n for n, verdict in functions.items() if verdict == "NOT_OBSERVED"] == []
    tripped = sorted(check["rule"] for check in charger["checks"] if check["verdict"] == "FAIL")
    assert tripped == sorted(profile.trips)
