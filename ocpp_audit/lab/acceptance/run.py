"""The guided acceptance run: the script's 16 functions against one connected charger.

It walks :data:`~ocpp_audit.lab.simulator.scenario.ACCEPTANCE_STEPS` in order, sending the
server-initiated commands through the recorder's control API and waiting for the charger's
messages; physical steps go to a person (:class:`PromptedCharger`) or to the simulator
(:class:`AutoCharger`). A step whose expected message does not come is marked failed and the run
goes on: the verdicts come from the capture, not from the run. At the end the capture is sealed
and the run's slice (this charger, since the run started) is judged with the same rules as a
passive capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ocpp_audit.analyser.rules import function_titles
from ocpp_audit.lab.acceptance.commander import ControlCommander, ControlError
from ocpp_audit.lab.simulator.scenario import (
    ACCEPTANCE_STEPS,
    RESTORE_TIMEOUT_S,
    STEP_FAILURES,
    PhysicalCharger,
    ScenarioContext,
    ScenarioTiming,
    Step,
)
from ocpp_audit.lab.simulator.scenario_v201 import ACCEPTANCE_STEPS_V201
from ocpp_audit.recorder.control import AsyncControlClient, ControlClient

if TYPE_CHECKING:
    from ocpp_audit.analyser.engine import Report

__all__ = ["GUIDED_STEPS", "GUIDED_STEPS_V201", "GuidedRun", "Prompts", "StepOutcome", "run_guided"]

logger = logging.getLogger(__name__)


async def _guided_boot(ctx: ScenarioContext) -> None:
    """1: ask for a BootNotification now (OCPP 1.6 section 5.17 TriggerMessage), so the run's own
    slice of the capture holds one even when the charger booted long before the run."""
    mark = ctx.commander.mark()
    await ctx.command("TriggerMessage", {"requestedMessage": "BootNotification"})
    await ctx.expect("BootNotification", after=mark)


# The acceptance steps, with the boot step asking for a BootNotification instead of awaiting one
# (TriggerMessage BootNotification is the same in 2.0.1, F06).
GUIDED_STEPS: tuple[Step, ...] = (
    Step("boot notification (triggered)", (1,), _guided_boot),
    *ACCEPTANCE_STEPS[1:],
)
# The same run in OCPP 2.0.1 terms, for a charger whose connection negotiated ocpp2.0.1.
GUIDED_STEPS_V201: tuple[Step, ...] = (
    Step("boot notification (triggered)", (1,), _guided_boot),
    *ACCEPTANCE_STEPS_V201[1:],
)


class RunAborted(Exception):
    """The person typed 'a' at the prompt."""


class Prompts:
    """Lines a person types (``s`` skip the step, ``a`` abort), read from a stream in a thread."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending: asyncio.Task[str | None] | None = None

    @classmethod
    def from_stream(cls, stream: IO[str] | None = None) -> Prompts:
        """Read ``stream`` (stdin by default) line by line in a daemon thread."""
        prompts = cls()
        loop = asyncio.get_running_loop()
        source = stream if stream is not None else sys.stdin

        def read() -> None:
            for line in source:
                loop.call_soon_threadsafe(prompts.feed, line)
            loop.call_soon_threadsafe(prompts.feed, None)

        threading.Thread(target=read, name="acceptance-prompts", daemon=True).start()
        return prompts

    def feed(self, line: str | None) -> None:
        """One typed line (None: the input ended)."""
        self._queue.put_nowait(line)

    def next_line(self) -> asyncio.Task[str | None]:
        """The task of the next line; kept across steps so no typed line is lost."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._queue.get())
        return self._pending

    def consume(self) -> None:
        self._pending = None

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


@dataclass
class StepOutcome:
    name: str
    functions: tuple[int, ...]
    status: str  # done | failed | skipped | aborted
    detail: str = ""
    seconds: float = 0.0


@dataclass
class GuidedRun:
    charge_point_id: str
    started: dt.datetime
    finished: dt.datetime | None = None
    steps: list[StepOutcome] = field(default_factory=list)
    skipped_functions: set[int] = field(default_factory=set)
    aborted: bool = False
    capture_dir: Path | None = None
    report: Report | None = None
    restored: list[str] = field(default_factory=list)  # what the run put back on the charger


async def _timing_for_run(
    control: AsyncControlClient, charge_point_id: str, timing: dict[str, Any]
) -> dict:
    """Point UpdateFirmware and GetDiagnostics at the recorder's endpoints when it has them."""
    status, document = await control.capture(charge_point_id=charge_point_id)
    endpoints = document.get("endpoints") if status == 200 else None
    merged = dict(timing)
    if endpoints:
        merged.setdefault("firmware_location", endpoints["firmware_location"])
        merged.setdefault("diagnostics_location", endpoints["diagnostics_location"])
    else:
        logger.warning(
            "the recorder has no firmware/diagnostics endpoints (record --endpoints HOST): "
            "UpdateFirmware and GetDiagnostics point at example locations"
        )
    return merged


async def run_guided(
    control: ControlClient | AsyncControlClient,
    charge_point_id: str,
    charger: PhysicalCharger,
    *,
    skip: Collection[int] = (),
    progress: Callable[[str], None] | None = None,
    prompts: Prompts | None = None,
    judge: bool = True,
    steps: tuple[Step, ...] = GUIDED_STEPS,
    **timing: Any,
) -> GuidedRun:
    """Walk ``steps`` against ``charge_point_id``, then seal and judge the run's slice.

    ``skip``: function numbers whose steps are skipped (their verdicts are NOT_OBSERVED).
    ``prompts``: a person's input (s / a) while a step waits; None for an unattended run.
    ``timing``: :class:`ScenarioTiming` overrides.
    """
    known = {f.name for f in fields(ScenarioTiming)}
    if set(timing) - known:
        raise TypeError(f"unknown scenario timing: {', '.join(sorted(set(timing) - known))}")
    # One session (and its keep-alive connections) for the whole run.
    async with AsyncControlClient(control.url, control.token) as client:
        return await _run_guided(
            client, charge_point_id, charger, skip, progress, prompts, judge, steps, timing
        )


async def _run_guided(
    control: AsyncControlClient,
    charge_point_id: str,
    charger: PhysicalCharger,
    skip: Collection[int],
    progress: Callable[[str], None] | None,
    prompts: Prompts | None,
    judge: bool,
    steps: tuple[Step, ...],
    timing: dict[str, Any],
) -> GuidedRun:
    say = progress or (lambda message: None)
    status, document = await control.chargers()
    if status != 200:
        raise ConnectionError(f"control API at {control.url}: {document.get('error')}")
    connected = {c.get("charge_point_id"): c for c in document.get("chargers", [])}
    if charge_point_id not in connected:
        raise LookupError(f"charger {charge_point_id!r} is not connected to the recorder")
    if steps is GUIDED_STEPS and connected[charge_point_id].get("ocpp_version") in ("2.0.1", "2.1"):
        steps = GUIDED_STEPS_V201  # the 16 functions in the version the charger speaks
    # Follow the charger's messages from now on (the recorder keeps a log once asked).
    status, document = await control.messages(charge_point_id)
    if status != 200:
        raise ConnectionError(f"control API at {control.url}: {document.get('error')}")
    merged = await _timing_for_run(control, charge_point_id, timing)
    ctx = ScenarioContext(ControlCommander(control), charger, ScenarioTiming(**merged))
    run = GuidedRun(charge_point_id, dt.datetime.now(dt.UTC), skipped_functions=set(skip))
    try:
        await _walk(ctx, run, steps, prompts, say)
        await asyncio.sleep(ctx.timing.settle_seconds)  # trailing messages land
        run.finished = dt.datetime.now(dt.UTC)
        if judge:
            say("sealing the capture and judging the run ...")
            run.capture_dir, run.report = await _judge(control, run)
    finally:  # after a skip, a failure, an abort or Ctrl-C too
        await _restore(ctx, run, say)
    return run


async def _walk(
    ctx: ScenarioContext,
    run: GuidedRun,
    steps: tuple[Step, ...],
    prompts: Prompts | None,
    say: Callable[[str], None],
) -> None:
    loop = asyncio.get_running_loop()
    total = len(steps)
    function_title = function_titles()  # for the progress display, from the rules' headers
    for number, step in enumerate(steps, 1):
        titles = ", ".join(f"{f} {function_title.get(f, '')}".strip() for f in step.functions)
        label = f"[{number}/{total}] function {titles}: {step.name}"
        if set(step.functions) & run.skipped_functions:
            say(f"{label} ... skipped")
            run.steps.append(StepOutcome(step.name, step.functions, "skipped", "--skip"))
            continue
        if prompts is not None:
            # A person acts now: the step's name before its instructions. In --auto mode only
            # the outcome line below is printed, so each step shows once.
            say(f"{label} ...")
            say("    (type s and Enter to skip this step, a to abort the run)")
        began = loop.time()
        try:
            outcome = await _run_step(ctx, step, prompts)
        except RunAborted:
            run.aborted = True
            run.steps.append(StepOutcome(step.name, step.functions, "aborted"))
            say(f"{label} ... aborted: the run stops here")
            break
        outcome.seconds = loop.time() - began
        run.steps.append(outcome)
        if outcome.status == "skipped":
            run.skipped_functions.update(step.functions)
        say(
            f"{label} ... {outcome.status}"
            + (f": {outcome.detail}" if outcome.detail else "")
            + f" ({outcome.seconds:.1f} s)"
        )
    if prompts is not None:
        prompts.close()


async def _restore(ctx: ScenarioContext, run: GuidedRun, say: Callable[[str], None]) -> None:
    """Put back what the run changed on the charger (availability, configuration), newest first,
    and say so: a skipped or failed step must not leave a connector Inoperative."""
    for key, (what, action) in reversed(list(ctx.to_restore.items())):
        try:
            async with asyncio.timeout(RESTORE_TIMEOUT_S + 5):
                await action()
        except Exception as exc:  # the charger may be gone: say what could not be put back
            say(f"could not restore {what}: {exc or type(exc).__name__}")
            run.restored.append(f"{what} (failed: {exc or type(exc).__name__})")
        else:
            say(f"restored: {what}")
            run.restored.append(what)
        ctx.restored(key)


async def _run_step(ctx: ScenarioContext, step: Step, prompts: Prompts | None) -> StepOutcome:
    task = asyncio.ensure_future(step.run(ctx))
    try:
        while True:
            waiting: set[asyncio.Future[Any]] = {task}
            line_task = prompts.next_line() if prompts is not None else None
            if line_task is not None:
                waiting.add(line_task)
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                break
            assert prompts is not None and line_task is not None
            line = line_task.result()
            prompts.consume()
            answer = (line or "").strip().lower()
            if line is None:
                prompts = None  # input ended: just wait for the step
            elif answer in ("s", "skip"):
                return StepOutcome(step.name, step.functions, "skipped", "skipped at the prompt")
            elif answer in ("a", "abort"):
                raise RunAborted
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    try:
        task.result()
    except (*STEP_FAILURES, ControlError) as exc:
        return StepOutcome(step.name, step.functions, "failed", str(exc) or type(exc).__name__)
    return StepOutcome(step.name, step.functions, "done")


async def _judge(control: AsyncControlClient, run: GuidedRun) -> tuple[Path, Report]:
    from ocpp_audit.analyser.engine import analyse

    status, document = await control.seal()
    if status != 200:
        raise ConnectionError(f"could not seal the capture: {document.get('error')}")
    status, document = await control.capture()
    capture = document.get("capture_dir") if status == 200 else None
    if not capture:
        raise ConnectionError("the control API did not say where the capture is")
    capture_dir = Path(capture)
    report = await asyncio.to_thread(  # DuckDB work, off the event loop
        analyse, [capture_dir], chargers=[run.charge_point_id], since=run.started
    )
    mark_skipped(report, run.skipped_functions)
    mark_failed_steps(report, run.steps)
    return capture_dir, report


def mark_skipped(report: Report, functions: Collection[int]) -> None:
    """Functions whose steps were skipped are NOT_OBSERVED, whatever else the slice shows."""
    for charger in report.chargers:
        for result in charger.results:
            if result.rule.function in functions:
                result.verdict = "NOT_OBSERVED"
                result.findings = []
                result.notes = ["skipped in the guided run"]


def mark_failed_steps(report: Report, steps: Collection[StepOutcome]) -> None:
    """A step that failed is part of its functions' verdicts: a function the frames do not show
    passing FAILs with the step's failure as a finding; one the frames show passing stays PASS,
    and the report says the step failed anyway."""
    from ocpp_audit.analyser.engine import FAIL, PASS, Finding

    failed = [step for step in steps if step.status == "failed"]
    for charger in report.chargers:
        for result in charger.results:
            for step in failed:
                if result.rule.function not in step.functions:
                    continue
                detail = f"guided-run step '{step.name}' failed: {step.detail}"
                if result.verdict == PASS:
                    result.notes.append(f"{detail}; the frames show the function working")
                else:
                    result.verdict = FAIL
                    result.findings.insert(0, Finding("guided run", "fail", detail))
