"""The whole chain, as an auditor runs it: simulated chargers -> recorder -> central system -> analyse.

Every simulator profile is driven through the acceptance scenario in one recorded run; the
well-behaved charger must pass all 16 functions and every protocol check, and each faulty profile
must fail exactly the functions (and protocol checks) its fault touches, nothing else.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from ocpp_audit.analyser.engine import analyse
from ocpp_audit.cli import main
from ocpp_audit.cli.demo import run_demo
from ocpp_audit.lab.simulator.profiles import PROFILES
from tests.conftest import timeout


@pytest.fixture(scope="module")
def capture_of_every_profile(tmp_path_factory: pytest.TempPathFactory):
    capture_dir = tmp_path_factory.mktemp("acceptance") / "capture"
    chargers = {f"E2E-{name}": name for name in PROFILES}

    async def run():
        return await asyncio.wait_for(run_demo(capture_dir, chargers=chargers), timeout(120))

    result = asyncio.run(run())
    assert result.parts >= 1
    return capture_dir


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_each_profile_fails_exactly_what_its_fault_touches(capture_of_every_profile, profile_name):
    profile = PROFILES[profile_name]
    report = analyse([capture_of_every_profile], chargers=[f"E2E-{profile_name}"])
    document = report.to_dict()
    [charger] = document["chargers"]
    functions = {entry["function"]: entry["verdict"] for entry in charger["functions"]}
    assert sorted(functions) == list(range(1, 17))
    failed = sorted(number for number, verdict in functions.items() if verdict == "FAIL")
    assert failed == sorted(profile.fails), charger["functions"]
    # The scenario covers every function: nothing may be left unjudged.
    assert [n for n, verdict in functions.items() if verdict == "NOT_OBSERVED"] == []
    tripped = sorted(check["rule"] for check in charger["checks"] if check["verdict"] == "FAIL")
    assert tripped == sorted(profile.trips)


def test_command_line_exit_codes_on_the_same_capture(capture_of_every_profile):
    runner = CliRunner()
    good = runner.invoke(
        main, ["analyse", str(capture_of_every_profile), "--charger", "E2E-good", "-f", "json"]
    )
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["format_version"] == 1
    faulty = runner.invoke(
        main, ["analyse", str(capture_of_every_profile), "--charger", "E2E-no-serial"]
    )
    assert faulty.exit_code == 1
    assert "ICCID not included" in faulty.output


def test_the_demos_closing_summary_says_which_fails_are_intended(capture_of_every_profile):
    from ocpp_audit.cli.demo import closing_summary

    report = analyse([capture_of_every_profile])
    chargers = {f"E2E-{name}": name for name in PROFILES}
    text = closing_summary(report, chargers)
    assert text.endswith(
        "Every FAIL above is intended: the faulty chargers were built to fail them."
    )
    assert "E2E-good (good): passes, as intended" in text
    assert "E2E-no-serial (no-serial: BootNotification without" in text
    assert "FAIL of function 1 (Boot notification), intended" in text
    # A charger whose verdicts its profile does not explain is said plainly.
    chargers["E2E-good"] = "no-serial"
    text = closing_summary(report, chargers)
    assert "E2E-good (no-serial): FAILs [], but its profile should fail ['1']" in text
    assert text.endswith("Some verdicts are not what the demo intends: please report this.")
