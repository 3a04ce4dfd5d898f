"""The guided acceptance run through the real control API, endpoints and simulator control.

A recorder (standalone, control API, firmware/diagnostics endpoints) and simulated chargers of
every profile run in a background thread with their own event loop, as they would in their own
processes. Guided runs in auto mode drive each charger concurrently from the test's loop; one more
runs through the real `ocpp-audit acceptance` command in a subprocess, with --skip 15.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocpp_audit.lab.acceptance import (
    GUIDED_STEPS,
    AutoCharger,
    PromptedCharger,
    Prompts,
    run_guided,
)
from ocpp_audit.lab.acceptance.lab import guided_lab
from ocpp_audit.lab.simulator.profiles import PROFILES
from ocpp_audit.recorder.control import ControlClient
from tests.conftest import timeout

TOKEN = "acceptance-test-token"
SKIP_CHARGER = "GUIDED-SKIP15"
PROMPTED_CHARGER = "GUIDED-PROMPTED"
ABORT_CHARGER = "GUIDED-ABORT"
RESTORE_CHARGER = "GUIDED-RESTORE"


@dataclass
class Lab:
    capture_dir: Path
    control_url: str
    simulator_url: str


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Recorder + simulated chargers on a loop in a background thread, until the module ends."""
    capture_dir = tmp_path_factory.mktemp("guided") / "capture"
    ready: dict[str, str] = {}
    started = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        ids = {f"GUIDED-{name}": name for name in PROFILES}
        ids[SKIP_CHARGER] = "good"
        ids[PROMPTED_CHARGER] = "good"
        ids[ABORT_CHARGER] = "good"
        ids[RESTORE_CHARGER] = "good"
        async with guided_lab(capture_dir, ids, TOKEN) as lab:
            ready.update(control=lab.control_url, simulator=lab.simulator_control.url)
            started.set()
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the fixture
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="guided-lab", daemon=True)
    thread.start()
    assert started.wait(timeout(30)), "the lab did not start"
    if failure:
        raise failure[0]
    try:
        yield Lab(capture_dir, ready["control"], ready["simulator"])
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout(30))


@pytest.fixture(scope="module")
def guided_runs(lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    """A guided --auto run per profile (concurrently), and the CLI run with --skip 15."""
    report_file = tmp_path_factory.mktemp("reports") / "skip15.json"
    client = ControlClient(lab.control_url, TOKEN)
    command = [
        sys.executable,
        "-c",
        "from ocpp_audit.cli.acceptance import acceptance; acceptance()",
        SKIP_CHARGER,
        "--control",
        lab.control_url,
        "--token",
        TOKEN,
        "--auto",
        "--simulator-control",
        lab.simulator_url,
        "--skip",
        "15",
        "--report",
        str(report_file),
        "--format",
        "json",
    ]

    # A person at the prompt who aborts at once (typed "a").
    abort_command = [
        *command[:3],
        ABORT_CHARGER,
        "--control",
        lab.control_url,
        "--token",
        TOKEN,
    ]

    async def cli(command: list[str], typed: bytes = b"") -> subprocess.CompletedProcess[str]:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out, err = await process.communicate(typed)
        assert process.returncode is not None
        return subprocess.CompletedProcess(command, process.returncode, out.decode(), err.decode())

    async def main():  # type: ignore[no-untyped-def]
        runs = [
            run_guided(client, f"GUIDED-{name}", AutoCharger(f"GUIDED-{name}", lab.simulator_url))
            for name in PROFILES
        ]
        async with asyncio.timeout(timeout(150)):
            return await asyncio.gather(cli(command), cli(abort_command, b"a\n"), *runs)

    completed, aborted, *runs = asyncio.run(main())
    return {run.charge_point_id: run for run in runs}, completed, report_file, aborted


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_guided_run_fails_exactly_what_the_fault_touches(guided_runs, profile_name: str) -> None:
    runs, _, _, _ = guided_runs
    run = runs[f"GUIDED-{profile_name}"]
    assert run.report is not None and not run.aborted
    [charger] = run.report.chargers
    verdicts = {r.rule.function: r.verdict for r in charger.functions}
    assert sorted(verdicts) == list(range(1, 17))
    failed = sorted(f for f, verdict in verdicts.items() if verdict == "FAIL")
    assert failed == sorted(PROFILES[profile_name].fails), verdicts
    assert all(v == "PASS" for f, v in verdicts.items() if f not in failed), verdicts
    if profile_name == "good":
        assert [s.status for s in run.steps] == ["done"] * len(GUIDED_STEPS)
        assert run.report.exit_status == 0
        diagnostics = next(r for r in charger.functions if r.rule.function == 13)
        assert any("arrived" in (f.detail or "") for f in diagnostics.findings)


def test_cli_run_with_skip_reports_the_function_not_observed(guided_runs) -> None:
    _, completed, report_file, _ = guided_runs
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"[20/{len(GUIDED_STEPS)}] function 15 Clear cache: clear cache ... skipped" in (
        completed.stderr
    )
    document = json.loads(report_file.read_text())
    [charger] = document["chargers"]
    functions = {f["function"]: f["verdict"] for f in charger["functions"]}
    checks = {
        c["rule"]: (c["verdict"], [f["detail"] for f in c["findings"]]) for c in charger["checks"]
    }
    assert functions[15] == "NOT_OBSERVED"
    assert {v for f, v in functions.items() if f != 15} == {"PASS"}, functions
    assert {verdict for verdict, _ in checks.values()} == {"PASS"}, checks
    # The report goes to its file only, and the run says what it wrote.
    assert completed.stdout == ""
    assert f"Wrote {report_file} (json): 1 charger: 23 PASS, 0 FAIL, 1 NOT OBSERVED" in (
        completed.stderr
    ), completed.stderr[-1500:]


def test_cli_prompted_run_aborted_at_the_prompt_still_judges(guided_runs) -> None:
    *_, aborted = guided_runs
    assert "type s and Enter to skip this step, a to abort the run" in aborted.stderr
    assert "aborted: the run stops here" in aborted.stderr
    assert re.search(r"\d+ steps: \d+ done, 0 failed, 0 skipped, aborted", aborted.stderr)
    # the slice was judged all the same (it may hold nothing of the charger yet)
    assert "sealing the capture and judging the run" in aborted.stderr
    assert f"Charger {ABORT_CHARGER}" in aborted.stdout or "nothing judged" in aborted.stdout
    assert aborted.returncode == 0, aborted.stderr[-2000:]


class ScriptedPerson:
    """Reads the instructions a guided run prints and does them on the simulated charger."""

    PATTERNS = (
        (r"Plug the cable into connector (\d+)", "plug-in"),
        (r"Unplug the cable from connector (\d+)", "unplug"),
        (r"Swipe the card '([^']+)' at the reader \(connector (\d+)\)", "swipe"),
        (r"Pull the charger's network", "lose-network"),
        (r"Restore the charger's network", "restore-network"),
    )

    def __init__(self, charge_point_id: str, simulator_url: str) -> None:
        from ocpp_audit.lab.simulator.control import SimulatorControlClient

        self.charge_point_id = charge_point_id
        self.client = SimulatorControlClient(simulator_url)
        self.heard: list[str] = []
        self.errors: list[str] = []

    def __call__(self, instruction: str) -> None:
        self.heard.append(instruction)
        for pattern, step in self.PATTERNS:
            found = re.search(pattern, instruction)
            if found is None:
                continue
            fields: dict[str, object] = {}
            if step == "swipe":
                fields = {"id_tag": found.group(1), "connector_id": int(found.group(2))}
            elif step in ("plug-in", "unplug"):
                fields = {"connector_id": int(found.group(1))}
            threading.Thread(target=self._do, args=(step, fields), daemon=True).start()

    def _do(self, step: str, fields: dict[str, object]) -> None:
        status, answer = self.client.step(self.charge_point_id, step, **fields)
        if status != 200:
            self.errors.append(f"{step}: {answer}")


def test_prompted_run_with_a_person_skipping_a_step(lab: Lab) -> None:
    """A person is told what to do and does it; typing "s" skips a step, the next ones run."""
    client = ControlClient(lab.control_url, TOKEN)
    person = ScriptedPerson(PROMPTED_CHARGER, lab.simulator_url)
    progress: list[str] = []
    names = ("unknown card is rejected", "transaction through a network loss", "clear cache")
    steps = tuple(step for step in GUIDED_STEPS if step.name in names)

    async def main():  # type: ignore[no-untyped-def]
        charger = PromptedCharger(PROMPTED_CHARGER, person, client)
        prompts = Prompts.from_stream(io.StringIO("s\n"))
        async with asyncio.timeout(timeout(60)):
            return await run_guided(
                client,
                PROMPTED_CHARGER,
                charger,
                steps=steps,
                prompts=prompts,
                progress=progress.append,
                judge=False,
                step_timeout=timeout(20),
                offline_seconds=1.0,
            )

    run = asyncio.run(main())
    assert [(s.name, s.status) for s in run.steps] == [
        ("unknown card is rejected", "skipped"),
        ("transaction through a network loss", "done"),
        ("clear cache", "done"),
    ], run.steps
    assert run.skipped_functions == {6}
    assert not person.errors
    assert "Swipe the card 'ACCEPTANCE-UNKNOWN' at the reader (connector 1)." in person.heard
    assert any("Pull the charger's network" in line for line in person.heard)
    assert any("type s and Enter to skip" in line for line in progress)


def test_a_failed_step_restores_the_charger_and_fails_its_function(lab: Lab) -> None:
    """Issue 13: a step that made connector 1 Inoperative and then failed puts it back (and says
    so), and the failure is part of function 3's verdict."""
    client = ControlClient(lab.control_url, TOKEN)
    progress: list[str] = []
    steps = tuple(s for s in GUIDED_STEPS if s.name == "change availability Inoperative, Operative")

    async def main():  # type: ignore[no-untyped-def]
        charger = AutoCharger(RESTORE_CHARGER, lab.simulator_url)
        async with asyncio.timeout(timeout(60)):
            # the charger answers, but not within 1 ms: the step fails after Inoperative went out
            return await run_guided(
                client,
                RESTORE_CHARGER,
                charger,
                steps=steps,
                progress=progress.append,
                step_timeout=0.001,
            )

    run = asyncio.run(main())
    assert [(s.name, s.status) for s in run.steps] == [(steps[0].name, "failed")]
    assert run.restored == ["ChangeAvailability Operative on connector 1"]
    assert "restored: ChangeAvailability Operative on connector 1" in progress
    # the charger is Available again: its StatusNotification after the restore
    status, document = client.messages(RESTORE_CHARGER, action="StatusNotification", wait=10)
    assert status == 200
    last = document["messages"][-1]["payload"]
    assert (last["connectorId"], last["status"]) == (1, "Available")
    assert run.report is not None
    (charger_report,) = run.report.chargers
    function_3 = next(r for r in charger_report.results if r.rule.function == 3)
    failure = f"guided-run step '{steps[0].name}' failed: {run.steps[0].detail}"
    # the judged slice ends before the restore: Inoperative with no Operative after it, so the
    # frames do not show function 3 working, and the step's failure is its first finding
    assert function_3.verdict == "FAIL"
    assert (function_3.findings[0].check, function_3.findings[0].detail) == ("guided run", failure)
    assert run.report.exit_status == 1


def test_guided_run_refuses_a_charger_that_is_not_connected(lab: Lab) -> None:
    client = ControlClient(lab.control_url, TOKEN)
    with pytest.raises(LookupError, match="NOT-THERE"):
        asyncio.run(run_guided(client, "NOT-THERE", AutoCharger("NOT-THERE", lab.simulator_url)))


async def test_simulate_control_performs_physical_steps(tmp_path: Path) -> None:
    """`ocpp-audit simulate --control`: POST /chargers/<id>/plug-in makes the charger plug in."""
    from ocpp_audit.lab.central_system import CentralSystem
    from ocpp_audit.lab.simulator.control import SimulatorControlClient

    central_system = CentralSystem()
    await central_system.start()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from ocpp_audit.cli.simulate import simulate; simulate()",
        "--target",
        central_system.url,
        "--id-prefix",
        "SIMCTL",
        "--control",
        "127.0.0.1:0",
        "--duration",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(timeout(20)):
            line = (await process.stdout.readline()).decode()
        found = re.search(r"control on (http://\S+):", line)
        assert found, line
        client = SimulatorControlClient(found.group(1))
        await central_system.wait_connected("SIMCTL001", timeout=timeout(10))
        mark = central_system.mark()
        status, answer = await asyncio.to_thread(
            client.step, "SIMCTL001", "plug-in", connector_id=2
        )
        assert (status, answer["done"]) == (200, "plug-in")
        await central_system.wait_for_message(
            "SIMCTL001",
            "StatusNotification",
            after=mark,
            predicate=lambda p: p["connectorId"] == 2 and p["status"] == "Preparing",
            timeout=timeout(10),
        )
        status, answer = await asyncio.to_thread(client.step, "SIMCTL001", "fly", connector_id=1)
        assert status == 404 and "plug-in" in answer["error"]
        status, answer = await asyncio.to_thread(client.step, "NOBODY", "unplug")
        assert status == 404
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(timeout(20)):
            await process.communicate()
        await central_system.stop()


def test_record_id_tags_for_the_built_in_central_system() -> None:
    """`record --standalone --id-tag`: the unknown card of function 6 must be refused."""
    import click

    from ocpp_audit.cli.record import parse_id_tags

    assert parse_id_tags(()) is None  # every idTag Accepted
    assert parse_id_tags(("ACCEPTANCE-OK", "OLD-CARD=Expired")) == {
        "ACCEPTANCE-OK": "Accepted",
        "OLD-CARD": "Expired",
    }
    with pytest.raises(click.BadParameter, match="STATUS one of"):
        parse_id_tags(("CARD=Maybe",))


def test_messages_feed_long_polls_and_checks_its_parameters(lab: Lab) -> None:
    client = ControlClient(lab.control_url, TOKEN)
    status, answer = client._request("GET", f"/chargers/{SKIP_CHARGER}/messages?wait=999", None, 10)
    assert status == 400 and "'wait'" in answer["error"]
    status, answer = client._request("GET", f"/chargers/{SKIP_CHARGER}/messages?after=x", None, 10)
    assert status == 400
    # Nothing new for an unknown action: the long poll returns empty after its wait.
    status, answer = client.messages(SKIP_CHARGER, after=10**6, action="Nothing", wait=0.2)
    assert status == 200 and answer["messages"] == []
    assert ControlClient(lab.control_url, "wrong").messages(SKIP_CHARGER)[0] == 401
