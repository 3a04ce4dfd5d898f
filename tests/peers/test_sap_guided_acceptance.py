"""The guided acceptance run (``ocpp-audit acceptance``, no ``--auto``) against the SAP e-mobility
charging stations simulator, answered by a script instead of a person.

The run is the real CLI in a subprocess, talking to a recorder (relay engine, control API, firmware
and diagnostics endpoints) in front of the strict ocpp-rpc backend. For every physical step it
prints what to do at the charger (``  >>> Plug the cable into connector 1 ...``); the script here
reads those lines, does it on the simulator through its UI server, and presses Enter, the way a
person at the charger would. Where the simulator cannot do what is asked (it has no ConnectionTimeOut
timer), the script answers ``s``. Every function's verdict in the run's JSON report is then held
against the frames the capture shows, and against the run's own step outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocpp_audit.lab.acceptance.run import GUIDED_STEPS
from ocpp_audit.recorder.control import AsyncControlClient
from tests.conftest import timeout
from tests.engines import read_capture
from tests.peers.peers import (
    ACCEPTED_TAGS,
    HEARTBEAT_INTERVAL_S,
    STATION,
    UNKNOWN_TAG,
    BackendTap,
    Message,
    OcppRpcBackend,
    ReservedPort,
    SapSimulator,
    UIError,
    evidence,
    findings,
    launch_simulator,
    missing_peers,
    read_messages,
    readable_gzip,
    station_template,
    wait_until,
    whole_tar_gz,
)

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(missing_peers() is not None, reason=missing_peers() or ""),
    pytest.mark.timeout(600),
]

VALID_TAG = ACCEPTED_TAGS[0]
# Function 14: 15 s without the network, over one of the simulator's samples (every 10 s by then:
# it does not keep ChangeConfiguration across its resets) that it queues while offline.
OFFLINE_MINUTES = 0.25
# Each expected message is awaited this long: the simulator's firmware update sleeps 15-30 s four
# times before Installed, and the wait for Installed and the reboot is max(300, this).
STEP_TIMEOUT_S = 150
# The simulator ends a stopped transaction's session by itself: Finishing, then Available this many
# seconds later (its postTransactionDelay: the cable taken out). Without it there is no Finishing,
# which the remote stop step waits for.
POST_TRANSACTION_DELAY_S = 1
RUN_LIMIT_S = 420  # the whole guided run, firmware included (about 2 to 3 minutes)

STEP_NAMES = [step.name for step in GUIDED_STEPS]
PLUG_IN_TIMEOUT_STEP = "plug-in without start times out"
NO_CONNECTION_TIMEOUT = (
    "the simulator has no ConnectionTimeOut timer (it reports ConnectionTimeOut but never "
    "ends a plug-in by itself)"
)


def guided_template() -> dict[str, Any]:
    return {**station_template(), "postTransactionDelay": POST_TRANSACTION_DELAY_S}


# -- the person at the charger: the simulator driven through its UI server ---------------------------


@dataclass
class Answer:
    """What the script did for one instruction of the run."""

    step: str
    instruction: str
    action: str  # what was done on the simulator, or 'skip'
    ui_failure: str = ""  # the UI server's answer when it said 'failure'
    reason: str = ""  # why the step was skipped


@dataclass
class Person:
    """Reads the run's instructions, does them on the simulator, answers at the prompt."""

    simulator: SapSimulator
    tap: BackendTap
    control: AsyncControlClient
    write: Callable[[str], None]
    step: str = ""
    answers: list[Answer] = field(default_factory=list)

    def _start_answer(self, payload: dict[str, Any]) -> list[Any] | None:
        """The backend's answer to the StartTransaction the charger sent with ``payload``."""
        frames = [json.loads(raw) for _, _, raw in self.tap.frames]
        for call in frames:
            if call[0] == 2 and call[2] == "StartTransaction" and call[3] == payload:
                return next((f for f in frames if f[0] == 3 and f[1] == call[1]), None)
        return None

    async def _transaction(self, connector_id: int) -> tuple[int, bool] | None:
        """The newest transaction on ``connector_id`` since it was last plugged in (Preparing):
        (its id, whether it was stopped), or None.

        From the charger's CALLs as the recorder logged them (the control API's feed, the one the
        run itself follows: it holds whatever the run saw before it gave the instruction), and
        the transaction id from the backend's answer.
        """
        status, document = await self.control.messages(STATION)
        assert status == 200, document
        feed = [(m["action"], m["payload"]) for m in document["messages"]]
        plugged = max(
            (
                index
                for index, (action, payload) in enumerate(feed)
                if action == "StatusNotification"
                and payload["connectorId"] == connector_id
                and payload["status"] == "Preparing"
            ),
            default=-1,
        )
        starts = [
            (index, payload)
            for index, (action, payload) in enumerate(feed)
            if index > plugged and action == "StartTransaction"
            and payload["connectorId"] == connector_id
        ]  # fmt: skip
        if not starts:
            return None
        index, payload = starts[-1]
        answer = await wait_until(lambda: self._start_answer(payload), 10, "the start's answer")
        transaction = answer[2]["transactionId"]
        stopped = any(
            action == "StopTransaction" and stop["transactionId"] == transaction
            for action, stop in feed[index:]
        )
        return transaction, stopped

    async def _ui(self, procedure: str, payload: dict[str, Any] | None = None) -> str:
        try:
            await self.simulator.ui(procedure, payload)
        except UIError as error:
            return str(error)
        return ""

    async def follow(self, line: str) -> None:
        """One line of the run's output."""
        if not line.startswith("["):
            if line.startswith("  >>> "):
                await self._act(line.removeprefix("  >>> "))
            return
        for name in STEP_NAMES:
            if f": {name} ..." in line:
                self.step = name

    async def _act(self, instruction: str) -> None:
        action, failure = await self._do(instruction)
        if action == "skip":
            self.answers.append(Answer(self.step, instruction, action, "", NO_CONNECTION_TIMEOUT))
            self.write("s\n")
        else:
            self.answers.append(Answer(self.step, instruction, action, failure))
            self.write("\n")  # Enter: done

    async def _do(self, instruction: str) -> tuple[str, str]:
        if match := re.match(r"Plug the cable into connector (\d+)", instruction):
            if self.step == PLUG_IN_TIMEOUT_STEP:
                return "skip", ""
            connector = int(match[1])
            return "Preparing", await self._status(connector, "Preparing")
        if match := re.match(r"Unplug the cable from connector (\d+)", instruction):
            connector = int(match[1])
            transaction = await self._transaction(connector)
            if transaction is not None and not transaction[1]:  # pulled out while charging
                payload = {"transactionId": transaction[0], "reason": "EVDisconnected"}
                return "stop EVDisconnected", await self._ui("stopTransaction", payload)
            if transaction is not None:
                # Stopped: the simulator goes Finishing, then Available after its delay.
                return "nothing (the simulator's post-transaction delay)", ""
            return "Available", await self._status(connector, "Available")
        if match := re.match(
            r"Swipe the card '([^']+)' at the reader \(connector (\d+)\)", instruction
        ):
            id_tag, connector = match[1], int(match[2])
            transaction = await self._transaction(connector)
            if transaction is not None and not transaction[1]:  # the same card again: stop
                return "stop", await self._ui("stopTransaction", {"transactionId": transaction[0]})
            failure = await self._ui("authorize", {"idTag": id_tag})
            if failure:  # refused: no transaction (the UI server calls a rejected card a failure)
                return "authorize", failure
            payload = {"connectorId": connector, "idTag": id_tag}
            return "authorize, start", await self._ui("startTransaction", payload)
        if instruction.startswith("Pull the charger's network"):
            return "close connection", await self._ui("closeConnection")
        if instruction.startswith("Restore the charger's network"):
            return "open connection", await self._ui("openConnection")
        if match := re.match(
            r"Create a fault on (?:connector (\d+)|the charger itself) \(e\.g\. (\w+):", instruction
        ):
            connector = int(match[1] or 0)
            return f"Faulted {match[2]}", await self._status(connector, "Faulted", match[2])
        if match := re.match(r"Clear the fault on (?:connector (\d+)|the charger)\.", instruction):
            connector = int(match[1] or 0)
            return "Available", await self._status(connector, "Available")
        raise AssertionError(f"an instruction the script does not know: {instruction!r}")

    async def _status(self, connector_id: int, status: str, error_code: str = "NoError") -> str:
        payload = {"connectorId": connector_id, "status": status, "errorCode": error_code}
        return await self._ui("statusNotification", payload)


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class GuidedRun:
    capture_dir: Path
    output: list[str]  # the CLI's stderr: progress, instructions, the summary
    returncode: int
    report: dict[str, Any]
    answers: list[Answer]
    tap: BackendTap
    started_us: int  # wall clock around the CLI, as capture timestamps
    finished_us: int
    seconds: float
    firmware_location: str
    diagnostics_location: str
    messages: list[Message] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the capture's rows, events too

    def steps(self) -> dict[str, tuple[str, str]]:
        """The run's outcome per step, from its progress lines: name -> (status, detail)."""
        outcomes = {}
        for line in self.output:
            for name in STEP_NAMES:
                match = re.search(
                    rf": {re.escape(name)} \.\.\. (done|failed|skipped|aborted)(?:: (.*?))?(?: \([\d.]+ s\))?$",
                    line,
                )
                if match and line.startswith("["):
                    outcomes[name] = (match[1], match[2] or "")
        return outcomes

    def in_run(self) -> list[Message]:
        return [m for m in self.messages if self.started_us <= m.ts <= self.finished_us]

    def calls(self, action: str, direction: str = "cp_to_cs", **fields: Any) -> list[Message]:
        return [
            m
            for m in self.in_run()
            if m.direction == direction
            and m.frame[0] == 2
            and m.frame[2] == action
            and all(m.frame[3].get(key) == value for key, value in fields.items())
        ]

    def injected(self, action: str) -> list[Message]:
        return [m for m in self.calls(action, "cs_to_cp") if m.injected]

    def answer(self, call: Message) -> Message:
        other = "cs_to_cp" if call.direction == "cp_to_cs" else "cp_to_cs"
        return next(
            m for m in self.messages if m.direction == other and m.frame[0] in (3, 4)
            and m.unique_id == call.unique_id
        )  # fmt: skip

    def first_after(self, after: Message, action: str, **fields: Any) -> Message:
        return next(m for m in self.calls(action, **fields) if m.ts > after.ts)

    def function(self, number: int) -> dict[str, Any]:
        (charger,) = self.report["chargers"]
        return next(f for f in charger["functions"] if f["function"] == number)


async def _guided(folder: Path) -> GuidedRun:
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService

    port = ReservedPort()
    launching = asyncio.create_task(launch_simulator(folder / "sim", port.port, guided_template()))
    backend = OcppRpcBackend(HEARTBEAT_INTERVAL_S, ACCEPTED_TAGS)
    capture_dir = folder / "capture"
    report_path = folder / "report.json"
    try:
        await backend.start()
        options = RecordOptions(capture_dir, engine="relay", upstream=backend.url)
        options.control_host, options.control_port = "127.0.0.1", 0
        options.endpoints_host = "127.0.0.1"  # the firmware (HTTP) and diagnostics (FTP) endpoints
        options.listen_port = port.release()
        async with RecorderService(options) as service:
            assert service.control is not None and service.control_token_file is not None
            assert service.endpoints is not None
            locations = (
                service.endpoints.firmware_location,
                service.endpoints.diagnostics_location(STATION),
            )
            simulator = await launching
            await simulator.connect()
            statuses = lambda: [  # noqa: E731
                raw for _, d, raw in backend.tap.frames if d == "in" and "StatusNotification" in raw
            ]
            await wait_until(lambda: len(statuses()) >= 2, 20, "the boot's statuses")
            await wait_until(lambda: service.engine.registry.get(STATION), 10, "the charger")
            command = [
                sys.executable, "-m", "ocpp_audit", "acceptance", STATION,
                "--control", service.control.url, "--token-file", str(service.control_token_file),
                "--valid-id-tag", VALID_TAG, "--unknown-id-tag", UNKNOWN_TAG,
                "--offline-minutes", str(OFFLINE_MINUTES), "--step-timeout", str(STEP_TIMEOUT_S),
                "-f", "json", "--report", str(report_path),
            ]  # fmt: skip
            started_us = time.time_ns() // 1000
            began = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "COLUMNS": "200"},
            )
            assert process.stdin and process.stdout and process.stderr
            stdin = process.stdin

            def write(text: str) -> None:
                stdin.write(text.encode())

            control = AsyncControlClient(service.control.url, service.control.token)
            person = Person(simulator, backend.tap, control, write)
            output: list[str] = []
            try:
                async with asyncio.timeout(timeout(RUN_LIMIT_S)):
                    while line := await process.stderr.readline():
                        text = line.decode(errors="replace").rstrip("\n")
                        output.append(text)
                        await person.follow(text)
                        await stdin.drain()
                    stdout = await process.stdout.read()
                    returncode = await process.wait()
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                print("\n".join(output), file=sys.stderr)
                raise
            finished_us = time.time_ns() // 1000
            seconds = time.monotonic() - began
            assert not stdout.strip(), stdout  # the report went to its file
            await simulator.stop()  # its last frames recorded before the recorder stops
    finally:
        if not launching.done():
            launching.cancel()
        with contextlib.suppress(BaseException):
            await (await launching).stop()
        port.release()
        await backend.stop()
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    run = GuidedRun(
        capture_dir, output, returncode, report, person.answers, backend.tap,
        started_us, finished_us, seconds, *locations,
    )  # fmt: skip
    run.messages = read_messages(capture_dir)
    run.rows = read_capture(capture_dir)
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> GuidedRun:
    guided = asyncio.run(_guided(tmp_path_factory.mktemp("guided")))
    # The run's progress, shown with the first failing test that uses it.
    print("\n".join(guided.output), f"\n(guided run: {guided.seconds:.0f} s)")
    return guided


# -- what the run did --------------------------------------------------------------------------------


def test_the_run_walked_every_step_and_skipped_only_the_plug_in_timeout(run: GuidedRun) -> None:
    assert run.report, "\n".join(run.output[-30:])
    steps = run.steps()
    assert list(steps) == STEP_NAMES  # in order, every one, none failed or aborted
    assert {name: outcome for name, outcome in steps.items() if outcome[0] != "done"} == {
        PLUG_IN_TIMEOUT_STEP: ("skipped", "skipped at the prompt")
    }
    # The script skipped it at its first instruction, without plugging in.
    (skip,) = [a for a in run.answers if a.action == "skip"]
    assert (skip.step, skip.reason) == (PLUG_IN_TIMEOUT_STEP, NO_CONNECTION_TIMEOUT)
    assert skip.instruction.startswith("Plug the cable into connector 1")
    # Every instruction was done on the simulator; only the unknown card is a 'failure' for its UI
    # server (the backend answered Invalid).
    failures = [(a.step, a.action) for a in run.answers if a.ui_failure]
    assert failures == [("unknown card is rejected", "authorize")]
    summary = (
        f"{len(STEP_NAMES)} steps: {len(STEP_NAMES) - 1} done, 0 failed, 1 skipped; "
        f"capture {run.capture_dir}"
    )
    assert summary in run.output
    assert "restored: ChangeConfiguration MeterValueSampleInterval = 10" in run.output


def test_the_exit_status_and_summary_agree_with_the_report(run: GuidedRun) -> None:
    (charger,) = run.report["chargers"]
    assert charger["charge_point_id"] == STATION
    verdicts = [f["verdict"] for f in charger["functions"] + charger["checks"]]
    counts = {v: verdicts.count(v) for v in ("PASS", "FAIL", "NOT_OBSERVED")}
    assert sum(counts.values()) == len(verdicts)
    wrote = next(line for line in run.output if line.startswith("Wrote "))
    assert wrote.endswith(
        f"(json): 1 charger: {counts['PASS']} PASS, {counts['FAIL']} FAIL, "
        f"{counts['NOT_OBSERVED']} NOT OBSERVED"
    )
    assert run.returncode == 1  # error rules failed (functions 1, 12, 14 below)


def test_the_backend_got_exactly_the_frames_the_charger_sent(run: GuidedRun) -> None:
    """The recorder is transparent through the whole run, the injected commands aside, and the
    strict backend found nothing off-schema either way."""
    injected = {m.unique_id for m in run.messages if m.injected}
    to_backend = [
        (m.connection, m.raw)
        for m in run.messages
        if m.direction == "cp_to_cs" and m.unique_id not in injected
    ]
    from_backend = [
        (m.connection, m.raw) for m in run.messages if m.direction == "cs_to_cp" and not m.injected
    ]
    assert [(c, f) for c, d, f in run.tap.frames if d == "in"] == to_backend
    assert [(c, f) for c, d, f in run.tap.frames if d == "out"] == from_backend
    assert run.tap.strict_failures == []


# -- every function's verdict against the frames ----------------------------------------------------


def test_1_boot_notification_fails_for_the_missing_serial_number(run: GuidedRun) -> None:
    (trigger,) = [
        m
        for m in run.injected("TriggerMessage")
        if m.payload["requestedMessage"] == "BootNotification"
    ]
    triggered = run.first_after(trigger, "BootNotification")
    boots = run.calls("BootNotification")
    # The triggered boot, the soft and the hard reset, the reboot after the firmware update.
    assert len(boots) == 4 and boots[0] is triggered
    assert all("chargePointSerialNumber" not in boot.payload for boot in boots)
    assert all(run.answer(boot).payload["status"] == "Accepted" for boot in boots)
    verdict = run.function(1)
    assert verdict["verdict"] == "FAIL"
    failed = [f for f in verdict["findings"] if f["verdict"] == "fail"]
    assert failed == findings(
        verdict, "contents", "BootNotification without chargePointSerialNumber"
    )
    assert sorted(evidence(f)[0] for f in failed) == sorted(boot.unique_id for boot in boots)


def test_2_heartbeats_at_the_interval_and_on_trigger(run: GuidedRun) -> None:
    verdict = run.function(2)
    assert verdict["verdict"] == "PASS"
    (trigger,) = [
        m for m in run.injected("TriggerMessage") if m.payload["requestedMessage"] == "Heartbeat"
    ]
    assert run.answer(trigger).payload == {"status": "Accepted"}
    (triggered,) = findings(verdict, "TriggerMessage(Heartbeat)")
    assert evidence(triggered) == [
        trigger.unique_id,
        run.first_after(trigger, "Heartbeat").unique_id,
    ]
    (cadence,) = findings(verdict, "cadence")
    detail = re.fullmatch(
        r"(\d+) heartbeats, largest gap (\d+) s \(interval (\d+) s\)", cadence["detail"]
    )
    assert detail, cadence["detail"]
    assert int(detail[3]) == HEARTBEAT_INTERVAL_S
    # The run began between the CLI's start and its first command: the count is between the
    # heartbeats after that command and those after the start.
    beats = run.calls("Heartbeat")
    first_command = run.injected("TriggerMessage")[0]
    assert len([b for b in beats if b.ts > first_command.ts]) <= int(detail[1]) <= len(beats)
    gaps = [
        (later.ts - earlier.ts) / 1e6
        for earlier, later in itertools.pairwise(beats)
        if earlier.connection == later.connection
    ]
    assert abs(int(detail[2]) - max(gaps)) <= 1


def test_3_availability_followed_and_every_connector_reported(run: GuidedRun) -> None:
    verdict = run.function(3)
    assert verdict["verdict"] == "PASS"
    for kind, status in (("Inoperative", "Unavailable"), ("Operative", "Available")):
        (command,) = [m for m in run.injected("ChangeAvailability") if m.payload["type"] == kind]
        assert command.payload["connectorId"] == 1
        assert run.answer(command).payload == {"status": "Accepted"}
        followed = run.first_after(command, "StatusNotification", connectorId=1)
        assert followed.payload["status"] == status
        (finding,) = findings(verdict, f"{kind} connector 1")
        assert finding["verdict"] == "pass"
        assert finding["detail"].startswith(f"{kind} -> StatusNotification {status} after")
        assert evidence(finding) == [command.unique_id, followed.unique_id]
    # Connector 0 too, this time: the script reported the charger's own fault (function 10) on it.
    reported = sorted({m.payload["connectorId"] for m in run.calls("StatusNotification")})
    assert reported == [0, 1, 2]
    (connectors,) = findings(verdict, "connectors reported")
    assert connectors["verdict"] == "pass"
    assert connectors["detail"] == "StatusNotification for connectors 0, 1, 2"


def test_4_get_configuration_lists_the_keys(run: GuidedRun) -> None:
    (command,) = run.injected("GetConfiguration")
    assert command.payload == {}
    keys = run.answer(command).payload["configurationKey"]
    verdict = run.function(4)
    assert verdict["verdict"] == "PASS"
    (listed,) = findings(verdict, "GetConfiguration")
    assert listed["verdict"] == "pass" and listed["detail"] == f"{len(keys)} keys"
    assert set(evidence(listed)) == {command.unique_id}


def test_5_change_configuration_accepted_and_put_back_after_the_run(run: GuidedRun) -> None:
    verdict = run.function(5)
    assert verdict["verdict"] == "PASS"
    changes = run.injected("ChangeConfiguration")
    # The two intervals the run sets, then (after the judged slice) the sample interval put back.
    assert [c.payload for c in changes] == [
        {"key": "HeartbeatInterval", "value": "2"},
        {"key": "MeterValueSampleInterval", "value": "1"},
        {"key": "MeterValueSampleInterval", "value": "10"},
    ]
    assert all(run.answer(c).payload == {"status": "Accepted"} for c in changes)
    for change in changes[:2]:
        key, value = change.payload["key"], change.payload["value"]
        (finding,) = findings(verdict, f"ChangeConfiguration {key}")
        assert finding["verdict"] == "pass"
        assert finding["detail"] == f"{key} = {value}: Accepted"
        assert evidence(finding) == [change.unique_id]
    assert changes[2].unique_id not in {e for f in verdict["findings"] for e in evidence(f)}


def transactions(run: GuidedRun) -> list[tuple[Message, int]]:
    """Each StartTransaction of the run and the transaction id the backend gave it."""
    return [(s, run.answer(s).payload["transactionId"]) for s in run.calls("StartTransaction")]


def test_6_remote_local_and_refused_starts(run: GuidedRun) -> None:
    verdict = run.function(6)
    assert verdict["verdict"] == "PASS"
    started = transactions(run)
    assert len(started) == 4  # remote, local, cable disconnect, offline
    (remote,) = run.injected("RemoteStartTransaction")
    assert remote.payload == {"connectorId": 1, "idTag": VALID_TAG}
    assert run.answer(remote).payload == {"status": "Accepted"}
    (start, transaction) = started[0]
    assert start == run.first_after(remote, "StartTransaction")
    charging = run.first_after(start, "StatusNotification", connectorId=1, status="Charging")
    (finding,) = findings(verdict, "remote start", f"(transaction {transaction})")
    assert finding["verdict"] == "pass"
    assert evidence(finding) == [remote.unique_id, start.unique_id, charging.unique_id]
    # Three local starts with the valid card, each Authorize -> StartTransaction -> Charging.
    authorizations = run.calls("Authorize", idTag=VALID_TAG)
    assert len(authorizations) == 3
    for authorize, (start, transaction) in zip(authorizations, started[1:], strict=True):
        assert run.answer(authorize).payload == {"idTagInfo": {"status": "Accepted"}}
        assert start == run.first_after(authorize, "StartTransaction")
        charging = run.first_after(start, "StatusNotification", connectorId=1, status="Charging")
        (finding,) = findings(verdict, "local start", f"(transaction {transaction})")
        assert finding["verdict"] == "pass"
        assert evidence(finding) == [authorize.unique_id, start.unique_id, charging.unique_id]
    # The unknown card: Authorize Invalid, and the sequence stopped there.
    (refused,) = run.calls("Authorize", idTag=UNKNOWN_TAG)
    assert run.answer(refused).payload == {"idTagInfo": {"status": "Invalid"}}
    assert not run.calls("StartTransaction", idTag=UNKNOWN_TAG)
    (finding,) = findings(verdict, "local start", f"Authorize {UNKNOWN_TAG} Invalid")
    assert finding["verdict"] == "pass"
    assert evidence(finding) == [refused.unique_id]
    assert len(verdict["findings"]) == 5


def test_7_remote_local_and_cable_stops(run: GuidedRun) -> None:
    verdict = run.function(7)
    assert verdict["verdict"] == "PASS"
    (remote, local, unplugged, offline) = [t for _, t in transactions(run)]
    (command,) = run.injected("RemoteStopTransaction")
    assert command.payload == {"transactionId": remote}
    stop = run.first_after(command, "StopTransaction", transactionId=remote)
    (finding,) = findings(
        verdict, "remote stop", f"RemoteStopTransaction {remote} -> StopTransaction"
    )
    assert evidence(finding) == [command.unique_id, stop.unique_id]
    for transaction, reason, check in [
        (remote, "Remote", "remote stop"),
        (local, "Local", "local stop"),
        (unplugged, "EVDisconnected", "cable disconnected"),
        (offline, "Local", "local stop"),
    ]:
        (stop,) = run.calls("StopTransaction", transactionId=transaction)
        assert stop.payload.get("reason", "Local") == reason
        # This simulator's way: Finishing (sent before the StopTransaction when the stop was
        # remote), then Available after its post-transaction delay.
        followed = run.first_after(stop, "StatusNotification", connectorId=1)
        assert followed.payload["status"] in ("Finishing", "Available")
        assert [
            m
            for m in run.calls("StatusNotification", connectorId=1, status="Finishing")
            if abs(m.ts - stop.ts) < 1e6
        ]
        (finding,) = findings(verdict, check, f"transaction {transaction} stopped ({reason})")
        assert finding["verdict"] == "pass"
        assert evidence(finding) == [stop.unique_id, followed.unique_id]


def samples(run: GuidedRun, transaction: int) -> list[tuple[Message, dict[str, Any]]]:
    """Every meter value of a transaction: in its MeterValues and its StopTransaction."""
    found = []
    for m in run.calls("MeterValues", transactionId=transaction):
        found += [(m, value) for value in m.payload["meterValue"]]
    for m in run.calls("StopTransaction", transactionId=transaction):
        found += [(m, value) for value in m.payload.get("transactionData", [])]
    return found


def test_8_meter_values_at_start_stop_and_while_charging(run: GuidedRun) -> None:
    verdict = run.function(8)
    assert verdict["verdict"] == "PASS"
    assert not [f for f in verdict["findings"] if f["verdict"] != "pass"]
    for start, transaction in transactions(run):
        contexts = {v["sampledValue"][0].get("context") for _, v in samples(run, transaction)}
        assert {"Transaction.Begin", "Transaction.End"} <= contexts
        (stop,) = run.calls("StopTransaction", transactionId=transaction)
        (finding,) = findings(verdict, "start and stop", f"transaction {transaction}:")
        assert evidence(finding) == [start.unique_id, stop.unique_id]
    # Periodic samples reached the backend for the remote and the local transaction (the cable
    # disconnect one lasted half a second, the offline one sampled while offline): theirs are judged.
    periodic = {
        transaction
        for _, transaction in transactions(run)
        if any(
            v["sampledValue"][0].get("context") == "Sample.Periodic"
            for _, v in samples(run, transaction)
        )
    }
    (remote, local, _, _) = [t for _, t in transactions(run)]
    assert {remote, local} <= periodic

    def judged(check: str) -> set[int]:
        return {
            int(re.match(r"transaction (\d+):", f["detail"])[1])  # type: ignore[index]
            for f in findings(verdict, check)
        }

    assert judged("measurands") == periodic
    for transaction in periodic:
        measurands = {
            value.get("measurand", "Energy.Active.Import.Register")
            for _, sample in samples(run, transaction)
            for value in sample["sampledValue"]
        }
        assert {"Voltage", "Current.Import", "Power.Active.Import"} <= measurands
    assert {remote, local} <= judged("interval while Charging") <= periodic
    (_, configured) = [
        c for c in run.injected("ChangeConfiguration") if c.ts < run.calls("StartTransaction")[0].ts
    ]
    assert configured.payload["key"] == "MeterValueSampleInterval"
    for transaction in judged("interval while Charging"):
        (interval,) = findings(verdict, "interval while Charging", f"transaction {transaction}:")
        gap = re.fullmatch(
            rf"transaction {transaction}: largest gap while Charging (\d+) s "
            rf"\(MeterValueSampleInterval {configured.payload['value']} s\)",
            interval["detail"],
        )
        assert gap, interval["detail"]
        stamps = sorted(
            {dt.datetime.fromisoformat(v["timestamp"]) for _, v in samples(run, transaction)}
        )
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
        assert int(gap[1]) <= max(gaps) + 1


def test_9_soft_and_hard_reset_reboot(run: GuidedRun) -> None:
    verdict = run.function(9)
    assert verdict["verdict"] == "PASS"
    resets = run.injected("Reset")
    assert [r.payload for r in resets] == [{"type": "Soft"}, {"type": "Hard"}]
    for reset in resets:
        kind = reset.payload["type"]
        assert run.answer(reset).payload == {"status": "Accepted"}
        boot = run.first_after(reset, "BootNotification")
        assert boot.connection > reset.connection  # back on a new connection
        status = run.first_after(boot, "StatusNotification")
        for connector_id in (1, 2):  # what the step waited for
            assert run.first_after(boot, "StatusNotification", connectorId=connector_id)
        (finding,) = findings(verdict, f"{kind} reset")
        assert finding["verdict"] == "pass"
        assert finding["detail"].startswith(f"{kind} reset: back online, BootNotification after")
        assert evidence(finding) == [reset.unique_id, boot.unique_id, status.unique_id]


def test_10_faults_on_a_connector_and_on_the_charger(run: GuidedRun) -> None:
    verdict = run.function(10)
    assert verdict["verdict"] == "PASS"
    faulted = [m for m in run.calls("StatusNotification") if m.payload["errorCode"] != "NoError"]
    assert [
        (m.payload["connectorId"], m.payload["status"], m.payload["errorCode"]) for m in faulted
    ] == [
        (1, "Faulted", "GroundFailure"),
        (0, "Faulted", "HighTemperature"),
    ]
    for fault, detail in zip(
        faulted,
        [
            "connector 1: GroundFailure (Faulted)",
            "the charge point itself: HighTemperature (Faulted)",
        ],
        strict=True,
    ):
        (finding,) = [f for f in verdict["findings"] if fault.unique_id in evidence(f)]
        assert finding["verdict"] == "pass" and finding["detail"].startswith(detail)
        # Cleared: Available again on that connector.
        assert (
            run.first_after(
                fault, "StatusNotification", connectorId=fault.payload["connectorId"]
            ).payload["status"]
            == "Available"
        )
    assert len(verdict["findings"]) == 2


def test_11_not_observed_its_plug_in_timeout_step_skipped(run: GuidedRun) -> None:
    """The simulator never ends a plug-in by itself, so the script skipped the step; a skipped
    step's functions are NOT_OBSERVED, though the cable disconnect step showed function 11's
    EVDisconnected stop (function 7 above)."""
    (command,) = run.injected("GetConfiguration")
    keys = {k["key"]: k.get("value") for k in run.answer(command).payload["configurationKey"]}
    # What made the step run and wait: a ConnectionTimeOut under the run's ceiling of 600 s.
    assert 0 < int(keys["ConnectionTimeOut"]) <= 600
    verdict = run.function(11)
    assert verdict["verdict"] == "NOT_OBSERVED"
    assert verdict["findings"] == []
    assert verdict["notes"] == ["skipped in the guided run"]
    assert run.calls("StopTransaction", reason="EVDisconnected")


def firmware_statuses(run: GuidedRun, after: Message) -> list[Message]:
    return [m for m in run.calls("FirmwareStatusNotification") if m.ts > after.ts]


def test_12_firmware_update_runs_and_reboots_but_keeps_its_version(run: GuidedRun) -> None:
    (update,) = run.injected("UpdateFirmware")
    assert update.payload["location"] == run.firmware_location  # the recorder's HTTP endpoint
    assert run.answer(update).payload == {}
    statuses = firmware_statuses(run, update)
    assert [m.payload["status"] for m in statuses] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    installed = statuses[-1]
    boot = run.first_after(installed, "BootNotification")
    assert boot.connection > installed.connection
    # The simulator's own pace: 15 to 30 s between one status and the next, and before the reboot.
    for earlier, later in itertools.pairwise([*statuses, boot]):
        assert (later.ts - earlier.ts) / 1e6 >= 14
    before = [b for b in run.calls("BootNotification") if b.ts < update.ts][-1]
    version = before.payload["firmwareVersion"]
    assert boot.payload["firmwareVersion"] == version  # it reboots with the firmware it had
    verdict = run.function(12)
    assert verdict["verdict"] == "FAIL"
    (finding,) = verdict["findings"]
    assert finding["check"] == "UpdateFirmware" and finding["verdict"] == "fail"
    assert finding["detail"] == (
        f"Downloading -> Downloaded -> Installing -> Installed, rebooted, but firmwareVersion is "
        f"still {version}"
    )
    assert evidence(finding) == [update.unique_id, installed.unique_id, boot.unique_id]


def test_13_diagnostics_arrive_at_the_recorders_ftp_endpoint(run: GuidedRun) -> None:
    (request,) = run.injected("GetDiagnostics")
    assert request.payload["location"] == run.diagnostics_location
    file_name = run.answer(request).payload["fileName"]
    statuses = [
        m.payload["status"] for m in run.calls("DiagnosticsStatusNotification") if m.ts > request.ts
    ]
    assert statuses[-1] == "Uploaded" and "Uploading" in statuses
    (upload,) = [row for row in run.rows if row["event"] == "upload"]
    detail = json.loads(upload["detail"])
    assert detail["file_name"] == file_name
    (received,) = [p for p in (run.capture_dir / "diagnostics").rglob("*") if p.is_file()]
    assert received.name == file_name and received.stat().st_size == detail["size"]
    # The simulator starts its upload before its archive is written: a whole tar.gz of its logs
    # arrives, or the part written by then (see test_sap_simulator); the verdict follows the file.
    content = detail["content"]
    if whole_tar_gz(received):
        assert content["kind"] == "tar.gz" and content["readable"] is True
    else:
        assert content["readable"] is readable_gzip(received), content
    verdict = run.function(13)
    (finding,) = verdict["findings"]
    assert finding["detail"].startswith(" -> ".join(statuses) + ", ")
    assert file_name in finding["detail"]
    uploaded = run.first_after(request, "DiagnosticsStatusNotification", status="Uploaded")
    assert request.unique_id in evidence(finding) and uploaded.unique_id in evidence(finding)
    assert verdict["verdict"] == ("PASS" if content["readable"] else "FAIL"), finding


def test_14_the_offline_transactions_meter_values_never_arrive(run: GuidedRun) -> None:
    (_, _, _, (start, transaction)) = transactions(run)
    (stop,) = run.calls("StopTransaction", transactionId=transaction)
    assert stop.connection == start.connection + 1  # the network came back between the two
    # The gap: the close of the connection the transaction started on, the open of the next one.
    opened = [r for r in run.rows if r["event"] == "open"]
    (closed,) = [
        r
        for r in run.rows
        if r["event"] == "close"
        and r["connection_id"] == opened[start.connection - 1]["connection_id"]
    ]
    reopened = opened[stop.connection - 1]
    offline_s = (reopened["ts"] - closed["ts"]) / 1e6
    assert OFFLINE_MINUTES * 60 <= offline_s < OFFLINE_MINUTES * 60 + 30
    # No meter value sampled in the gap reached the backend: this simulator keeps them queued
    # until its next boot, which does not come in the run.
    gap = (closed["ts"], reopened["ts"])
    in_gap = [
        v for _, v in samples(run, transaction)
        if gap[0] <= dt.datetime.fromisoformat(v["timestamp"]).timestamp() * 1e6 <= gap[1]
    ]  # fmt: skip
    assert in_gap == []
    verdict = run.function(14)
    assert verdict["verdict"] == "FAIL"
    (finding,) = verdict["findings"]
    check = re.fullmatch(rf"transaction {transaction} offline (\d+) s", finding["check"])
    assert check and abs(int(check[1]) - offline_s) <= 1, finding
    assert finding["verdict"] == "fail"
    assert finding["detail"] == "start and stop received, meter values not received"
    assert evidence(finding) == [start.unique_id, stop.unique_id]


def test_15_clear_cache_not_applicable_without_an_authorization_cache(run: GuidedRun) -> None:
    (clear,) = run.injected("ClearCache")
    assert run.answer(clear).payload == {"status": "Rejected"}
    (command,) = run.injected("GetConfiguration")
    keys = {k["key"] for k in run.answer(command).payload["configurationKey"]}
    assert "AuthorizationCacheEnabled" not in keys
    verdict = run.function(15)
    assert verdict["verdict"] == "NOT_OBSERVED"
    (finding,) = verdict["findings"]
    assert finding["verdict"] == "note"
    assert finding["detail"].startswith("ClearCache answered Rejected; not applicable")
    assert set(evidence(finding)) == {clear.unique_id}


def test_16_each_trigger_honoured(run: GuidedRun) -> None:
    verdict = run.function(16)
    assert verdict["verdict"] == "PASS"
    triggers = run.injected("TriggerMessage")
    assert [t.payload for t in triggers] == [
        {"requestedMessage": requested}
        for requested in ("BootNotification", "StatusNotification", "Heartbeat")
    ]
    for trigger in triggers:
        requested = trigger.payload["requestedMessage"]
        assert run.answer(trigger).payload == {"status": "Accepted"}
        followed = run.first_after(trigger, requested)
        (finding,) = findings(verdict, f"TriggerMessage({requested})")
        assert finding["verdict"] == "pass"
        assert finding["detail"].startswith(
            f"TriggerMessage({requested}) accepted, {requested} received after"
        )
        assert evidence(finding) == [trigger.unique_id, followed.unique_id]


def test_the_steps_agree_with_the_verdicts(run: GuidedRun) -> None:
    """A skipped step's functions are NOT_OBSERVED; a done step's functions are judged on the
    frames it waited for, each verdict's failures being about their contents, not a missing
    message (no finding names the guided run)."""
    steps = run.steps()
    skipped = {
        f for step in GUIDED_STEPS if steps[step.name][0] == "skipped" for f in step.functions
    }
    assert skipped == {11}
    for number in range(1, 17):
        verdict = run.function(number)
        assert (
            verdict["verdict"] == "NOT_OBSERVED"
            and "skipped in the guided run" in verdict.get("notes", [])
        ) == (number in skipped)
        assert not [f for f in verdict["findings"] if f["check"] == "guided run"]
