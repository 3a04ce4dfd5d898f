"""The acceptance scenario: everything each of the script's 16 functions needs to be judged.

The steps follow the platform's test script (``reference/greenflux-test-script-*.txt``), with the
TriggerMessage of function 16 right after boot as the script asks. Each step sends the
server-initiated commands through a :class:`Commander` (the built-in central system, or the
recorder's control API later), performs the physical steps on the charger, and waits for the
charger's resulting messages. The scenario does not judge: the analyser does, from the capture.
A step raises :class:`ScenarioError` when an expected message does not come in time.

The steps are a plain list (:data:`ACCEPTANCE_STEPS`) with a name and the function numbers each
belongs to, so that a guided run can walk them, prompt a person for the physical ones, and report
progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ocpp_audit.lab.simulator.charger import ChargerTiming
from ocpp_audit.protocol.errors import CallErrorReceived

__all__ = [
    "ACCEPTANCE_STEPS",
    "STEP_FAILURES",
    "Commander",
    "PhysicalCharger",
    "ScenarioError",
    "ScenarioTiming",
    "Step",
    "charger_timing_for_scenario",
    "run_acceptance_scenario",
]

logger = logging.getLogger(__name__)

Payload = dict[str, Any]

# What a failed step raises, from either commander: no expected message in time, an unknown
# charger, a lost connection, a malformed answer, or the charger's CALLERROR (the control API
# commander's CallErrorReceived subclasses the protocol's, which the central system raises).
STEP_FAILURES: tuple[type[Exception], ...] = (
    TimeoutError,
    LookupError,
    ConnectionError,
    ValueError,
    CallErrorReceived,
)


class Commander(Protocol):
    """What the scenario needs from a central system (``CentralSystem`` satisfies it)."""

    async def call(
        self, charge_point_id: str, action: str, payload: Payload, timeout: float = 30
    ) -> Payload: ...

    def mark(self) -> int: ...

    async def wait_for_message(
        self,
        charge_point_id: str,
        action: str,
        *,
        after: int = 0,
        predicate: Callable[[Payload], bool] | None = None,
        timeout: float = 10,
    ) -> Payload: ...


class PhysicalCharger(Protocol):
    """The physical steps (``SimulatedCharger`` has them; a guided run prompts a person)."""

    charge_point_id: str

    async def plug_in(self, connector_id: int = 1) -> None: ...
    async def unplug(self, connector_id: int = 1) -> None: ...
    async def swipe(self, id_tag: str, connector_id: int = 1) -> None: ...
    async def lose_network(self) -> None: ...
    async def restore_network(self) -> None: ...
    async def raise_fault(
        self, connector_id: int = 1, error_code: str = "GroundFailure"
    ) -> None: ...
    async def clear_fault(self, connector_id: int = 1) -> None: ...


@dataclass(frozen=True)
class ScenarioTiming:
    """The knobs of the scenario (``run_acceptance_scenario(..., **timing)``)."""

    valid_id_tag: str = "ACCEPTANCE-OK"  # a card the commander's central system accepts
    rejected_id_tag: str = "ACCEPTANCE-UNKNOWN"  # a card it rejects (Invalid)
    connector_id: int = 1
    heartbeat_interval: int = 2  # set with ChangeConfiguration (function 5)
    meter_value_sample_interval: int = 1  # set with ChangeConfiguration (functions 5, 8)
    charge_seconds: float = 8.0  # remote session: long enough for a sparse sampler to show
    local_charge_seconds: float = 2.0  # local session
    offline_seconds: float = 3.5  # network loss during a transaction (function 14)
    step_timeout: float = 10.0  # how long to wait for each expected message
    reboot_timeout: float = 20.0  # from Reset / firmware install to BootNotification
    max_connection_timeout: float = 10.0  # skip the plug-in timeout step above this
    firmware_location: str = "https://firmware.example.com/ocpp-audit/firmware-1.5.0.bin"
    diagnostics_location: str = "ftp://diagnostics.example.com/uploads/"
    settle_seconds: float = 0.3  # pause after the last step so trailing messages land


def charger_timing_for_scenario(**overrides: Any) -> ChargerTiming:
    """A simulated charger's timing that matches the scenario's defaults.

    Its power-on MeterValueSampleInterval already equals the scenario's, so a profile that rejects
    ChangeConfiguration fails function 5 and nothing else; ConnectionTimeOut is short so the
    plug-in timeout of function 11 is quick.
    """
    defaults = ScenarioTiming()
    values: dict[str, Any] = {
        "heartbeat_interval": defaults.heartbeat_interval,
        "meter_value_sample_interval": defaults.meter_value_sample_interval,
        "connection_timeout": 1,
        "reboot_delay": 0.3,
        "transfer_step": 0.15,
    }
    values.update(overrides)
    return ChargerTiming(**values)


class ScenarioError(Exception):
    """A step's expected message did not come (or a command failed); names the step."""

    def __init__(self, step: Step, cause: BaseException) -> None:
        super().__init__(f"step {step.name!r} (function {step.function_label}): {cause}")
        self.step = step
        self.cause = cause


@dataclass
class ScenarioContext:
    commander: Commander
    charger: PhysicalCharger
    timing: ScenarioTiming
    facts: dict[str, Any] = field(default_factory=dict)  # learned on the way (connector count, ...)
    # What the run changed on the charger and how to put it back: key -> (what, the command). A
    # step registers before it changes something and forgets it once it put it back itself; what
    # is left is restored when the run ends, however it ends (skip, failure, abort, Ctrl-C).
    to_restore: dict[str, tuple[str, Callable[[], Awaitable[Any]]]] = field(default_factory=dict)

    def will_restore(self, key: str, what: str, action: Callable[[], Awaitable[Any]]) -> None:
        self.to_restore.setdefault(key, (what, action))  # the first value is the original one

    def restored(self, key: str) -> None:
        self.to_restore.pop(key, None)

    @property
    def charge_point_id(self) -> str:
        return self.charger.charge_point_id

    async def command(
        self, action: str, payload: Payload, *, timeout: float | None = None
    ) -> Payload:
        answer = await self.commander.call(
            self.charge_point_id,
            action,
            payload,
            timeout=timeout if timeout is not None else self.timing.step_timeout,
        )
        logger.info("%s: %s -> %s", self.charge_point_id, action, answer)
        return answer

    async def expect(
        self,
        action: str,
        predicate: Callable[[Payload], bool] | None = None,
        *,
        after: int,
        timeout: float | None = None,
    ) -> Payload:
        return await self.commander.wait_for_message(
            self.charge_point_id,
            action,
            after=after,
            predicate=predicate,
            timeout=timeout if timeout is not None else self.timing.step_timeout,
        )

    async def expect_status(
        self, connector_id: int, status: str, *, after: int, timeout: float | None = None
    ) -> Payload:
        return await self.expect(
            "StatusNotification",
            lambda p: p.get("connectorId") == connector_id and p.get("status") == status,
            after=after,
            timeout=timeout,
        )

    async def expect_reboot(self, after: int) -> None:
        """BootNotification, then a StatusNotification for every connector 1..n.

        Connector 0 (the charge point as a whole) is not waited for: many chargers never report it
        (the SAP simulator does not), and function 9 asks for "StatusNotifications" after the boot,
        not for connector 0's. A connector that does not report is named in the failure.
        """
        await self.expect("BootNotification", after=after, timeout=self.timing.reboot_timeout)
        connectors = self.facts.get("connectors", 1)
        for connector_id in range(1, connectors + 1):
            try:
                await self.expect(
                    "StatusNotification",
                    lambda p, c=connector_id: p.get("connectorId") == c,
                    after=after,
                )
            except TimeoutError as exc:
                raise TimeoutError(
                    f"{self.charge_point_id}: BootNotification, but no StatusNotification for "
                    f"connector {connector_id} within {self.timing.step_timeout:g} s"
                ) from exc

    async def transaction_id(self, connector_id: int, *, after: int) -> int:
        """The running transaction's id: from the charger if it says, else from its MeterValues."""
        known = getattr(self.charger, "transaction_id", None)
        if callable(known):
            value = known(connector_id)
            if isinstance(value, int) and value > 0:
                return value
        meter_values = await self.expect(
            "MeterValues",
            lambda p: p.get("connectorId") == connector_id and "transactionId" in p,
            after=after,
        )
        return int(meter_values["transactionId"])

    async def start_local(self, *, charge_seconds: float) -> int:
        """Plug in, swipe the valid card: Authorize, StartTransaction, Charging."""
        t, c = self.timing, self.timing.connector_id
        mark = self.commander.mark()
        await self.charger.plug_in(c)
        await self.expect_status(c, "Preparing", after=mark)
        await self.charger.swipe(t.valid_id_tag, c)
        await self.expect("Authorize", lambda p: p.get("idTag") == t.valid_id_tag, after=mark)
        await self.expect("StartTransaction", lambda p: p.get("connectorId") == c, after=mark)
        await self.expect_status(c, "Charging", after=mark)
        transaction_id = await self.transaction_id(c, after=mark)
        await asyncio.sleep(charge_seconds)
        return transaction_id


StepRun = Callable[[ScenarioContext], Awaitable[None]]

# A command that puts the charger back gets its own time, whatever the steps' timeout was.
RESTORE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Step:
    name: str
    functions: tuple[int, ...]
    run: StepRun
    physical: bool = False  # needs a person (or the simulator) to act on the charger

    @property
    def function_label(self) -> str:
        return ", ".join(str(f) for f in self.functions)


# --------------------------------------------------------------------------- the steps


async def _boot(ctx: ScenarioContext) -> None:
    """1: the charger is on and has sent its BootNotification."""
    if hasattr(ctx.charger, "start") and not getattr(ctx.charger, "started", True):
        await ctx.charger.start()  # type: ignore[attr-defined]
    await ctx.expect("BootNotification", after=0, timeout=ctx.timing.reboot_timeout)


async def _trigger_status(ctx: ScenarioContext) -> None:
    """16: "After booting the centralsystem will send a TriggerMessage requesting the status"."""
    mark = ctx.commander.mark()
    await ctx.command("TriggerMessage", {"requestedMessage": "StatusNotification"})
    await ctx.expect("StatusNotification", after=mark)


async def _trigger_heartbeat(ctx: ScenarioContext) -> None:
    """2: "When CS is not providing heartbeat, send OCPP command to see heartbeat"."""
    mark = ctx.commander.mark()
    await ctx.command("TriggerMessage", {"requestedMessage": "Heartbeat"})
    await ctx.expect("Heartbeat", after=mark)


async def _change_availability(ctx: ScenarioContext) -> None:
    """3: Inoperative -> Unavailable, Operative -> Available (per connector)."""
    c = ctx.timing.connector_id
    operative = {"connectorId": c, "type": "Operative"}
    ctx.will_restore(
        f"availability {c}",
        f"ChangeAvailability Operative on connector {c}",
        lambda: ctx.command("ChangeAvailability", operative, timeout=RESTORE_TIMEOUT_S),
    )
    mark = ctx.commander.mark()
    await ctx.command("ChangeAvailability", {"connectorId": c, "type": "Inoperative"})
    await ctx.expect_status(c, "Unavailable", after=mark)
    mark = ctx.commander.mark()
    await ctx.command("ChangeAvailability", operative)
    ctx.restored(f"availability {c}")
    await ctx.expect_status(c, "Available", after=mark)


async def _get_configuration(ctx: ScenarioContext) -> None:
    """4: GetConfiguration() with no keys: the complete list."""
    answer = await ctx.command("GetConfiguration", {})
    values = {item.get("key"): item.get("value") for item in answer.get("configurationKey", [])}
    ctx.facts["configuration"] = values
    try:
        ctx.facts["connectors"] = int(values.get("NumberOfConnectors") or 1)
        ctx.facts["connection_timeout"] = float(values.get("ConnectionTimeOut") or "nan")
    except ValueError:
        ctx.facts.setdefault("connectors", 1)


async def _change_configuration(ctx: ScenarioContext) -> None:
    """5: ChangeConfiguration per item, here the two intervals the other functions rely on."""
    t = ctx.timing
    reported = ctx.facts.get("configuration", {})
    for key, value in (
        ("HeartbeatInterval", t.heartbeat_interval),
        ("MeterValueSampleInterval", t.meter_value_sample_interval),
    ):
        original = reported.get(key)
        if original is not None and original != str(value):  # put back when the run ends
            ctx.will_restore(
                f"configuration {key}",
                f"ChangeConfiguration {key} = {original}",
                lambda k=key, v=original: ctx.command(
                    "ChangeConfiguration", {"key": k, "value": v}, timeout=RESTORE_TIMEOUT_S
                ),
            )
        answer = await ctx.command("ChangeConfiguration", {"key": key, "value": str(value)})
        ctx.facts[f"change {key}"] = answer.get("status")


async def _remote_start(ctx: ScenarioContext) -> None:
    """6: RemoteStartTransaction -> StartTransaction (with transactionId) -> statuses."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.plug_in(c)
    await ctx.expect_status(c, "Preparing", after=mark)
    await ctx.command("RemoteStartTransaction", {"connectorId": c, "idTag": t.valid_id_tag})
    await ctx.expect("StartTransaction", lambda p: p.get("connectorId") == c, after=mark)
    await ctx.expect_status(c, "Charging", after=mark)
    ctx.facts["remote_transaction_id"] = await ctx.transaction_id(c, after=mark)
    await asyncio.sleep(t.charge_seconds)  # 8: periodic meter values while charging


async def _remote_stop(ctx: ScenarioContext) -> None:
    """7: RemoteStopTransaction(transactionId) -> StopTransaction -> Finishing, Available."""
    c = ctx.timing.connector_id
    transaction_id = ctx.facts["remote_transaction_id"]
    mark = ctx.commander.mark()
    await ctx.command("RemoteStopTransaction", {"transactionId": transaction_id})
    await ctx.expect(
        "StopTransaction", lambda p: p.get("transactionId") == transaction_id, after=mark
    )
    await ctx.expect_status(c, "Finishing", after=mark)
    await ctx.charger.unplug(c)
    await ctx.expect_status(c, "Available", after=mark)


async def _local_start(ctx: ScenarioContext) -> None:
    """6: Authorize -> (Accepted) StartTransaction and statuses."""
    ctx.facts["local_transaction_id"] = await ctx.start_local(
        charge_seconds=ctx.timing.local_charge_seconds
    )


async def _local_stop(ctx: ScenarioContext) -> None:
    """7: the same card again: StopTransaction and statuses."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.swipe(t.valid_id_tag, c)
    await ctx.expect("StopTransaction", after=mark)
    await ctx.charger.unplug(c)
    await ctx.expect_status(c, "Available", after=mark)


async def _unknown_card(ctx: ScenarioContext) -> None:
    """6: "If not approved the sequence must stop": Authorize, and no StartTransaction."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.swipe(t.rejected_id_tag, c)
    await ctx.expect("Authorize", lambda p: p.get("idTag") == t.rejected_id_tag, after=mark)


async def _cable_disconnect(ctx: ScenarioContext) -> None:
    """7, 11: unplugging during a transaction stops it (reason EVDisconnected)."""
    c = ctx.timing.connector_id
    await ctx.start_local(charge_seconds=0.5)
    mark = ctx.commander.mark()
    await ctx.charger.unplug(c)
    await ctx.expect("StopTransaction", lambda p: p.get("reason") == "EVDisconnected", after=mark)
    await ctx.expect_status(c, "Available", after=mark)


async def _plug_in_timeout(ctx: ScenarioContext) -> None:
    """11: plugged in without a start: Preparing, then back to Available after ConnectionTimeOut."""
    t, c = ctx.timing, ctx.timing.connector_id
    connection_timeout = ctx.facts.get("connection_timeout", float("nan"))
    if not connection_timeout <= t.max_connection_timeout:
        logger.warning(
            "%s: ConnectionTimeOut %s s is above %s s: plug-in timeout step skipped",
            ctx.charge_point_id,
            connection_timeout,
            t.max_connection_timeout,
        )
        return
    mark = ctx.commander.mark()
    await ctx.charger.plug_in(c)
    await ctx.expect_status(c, "Preparing", after=mark)
    await ctx.expect(
        "StatusNotification",
        lambda p: p.get("connectorId") == c and p.get("status") in ("Available", "Faulted"),
        after=mark,
        timeout=connection_timeout + t.step_timeout,
    )
    await ctx.charger.unplug(c)


async def _faults(ctx: ScenarioContext) -> None:
    """10: errors show in StatusNotification; on connector 0 they are the charger's own."""
    for connector_id, error_code in (
        (ctx.timing.connector_id, "GroundFailure"),
        (0, "HighTemperature"),
    ):
        mark = ctx.commander.mark()
        await ctx.charger.raise_fault(connector_id, error_code)
        await ctx.expect(
            "StatusNotification",
            lambda p, c=connector_id, e=error_code: (
                p.get("connectorId") == c and p.get("errorCode") == e
            ),
            after=mark,
        )
        await ctx.charger.clear_fault(connector_id)
        await ctx.expect_status(connector_id, "Available", after=mark)


async def _soft_reset(ctx: ScenarioContext) -> None:
    """9: Soft reset: the charger comes back (BootNotification, StatusNotification)."""
    mark = ctx.commander.mark()
    await ctx.command("Reset", {"type": "Soft"})
    await ctx.expect_reboot(mark)


async def _hard_reset(ctx: ScenarioContext) -> None:
    """9: Hard reset: the same."""
    mark = ctx.commander.mark()
    await ctx.command("Reset", {"type": "Hard"})
    await ctx.expect_reboot(mark)


def _date_time(when: datetime) -> str:
    """OCPP 1.6 dateTime to the second, UTC: 2024-05-01T12:00:00Z."""
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


async def _firmware_update(ctx: ScenarioContext) -> None:
    """12: UpdateFirmware -> Downloading ... Installed, then a reboot with the new version."""
    mark = ctx.commander.mark()
    await ctx.command(
        "UpdateFirmware",
        {"location": ctx.timing.firmware_location, "retrieveDate": _date_time(datetime.now(UTC))},
    )
    await ctx.expect(
        "FirmwareStatusNotification", lambda p: p.get("status") == "Downloading", after=mark
    )
    await ctx.expect(
        "FirmwareStatusNotification",
        lambda p: p.get("status") == "Installed",
        after=mark,
        timeout=ctx.timing.reboot_timeout,
    )
    await ctx.expect_reboot(mark)


async def _diagnostics(ctx: ScenarioContext) -> None:
    """13: GetDiagnostics with a timeframe and an FTP location -> Uploading -> Uploaded."""
    mark = ctx.commander.mark()
    now = datetime.now(UTC)
    await ctx.command(
        "GetDiagnostics",
        {
            "location": ctx.timing.diagnostics_location,
            "startTime": _date_time(now - timedelta(hours=1)),
            "stopTime": _date_time(now),
        },
    )
    await ctx.expect(
        "DiagnosticsStatusNotification", lambda p: p.get("status") == "Uploading", after=mark
    )
    await ctx.expect(
        "DiagnosticsStatusNotification",
        lambda p: p.get("status") == "Uploaded",
        after=mark,
        timeout=ctx.timing.reboot_timeout,
    )


async def _offline_transaction(ctx: ScenarioContext) -> None:
    """14: a transaction runs while the network is lost; its messages arrive after reconnect."""
    t, c = ctx.timing, ctx.timing.connector_id
    transaction_id = await ctx.start_local(charge_seconds=0.2)
    await ctx.charger.lose_network()
    await asyncio.sleep(t.offline_seconds)
    await ctx.charger.restore_network()
    mark = ctx.commander.mark()
    await ctx.charger.swipe(t.valid_id_tag, c)
    await ctx.expect(
        "StopTransaction", lambda p: p.get("transactionId") == transaction_id, after=mark
    )
    await ctx.charger.unplug(c)
    await ctx.expect_status(c, "Available", after=mark)


async def _clear_cache(ctx: ScenarioContext) -> None:
    """15: ClearCache -> Accepted."""
    await ctx.command("ClearCache", {})
    await asyncio.sleep(ctx.timing.settle_seconds)


ACCEPTANCE_STEPS: tuple[Step, ...] = (
    Step("boot notification", (1,), _boot),
    Step("trigger StatusNotification after boot", (16,), _trigger_status),
    Step("trigger Heartbeat", (2,), _trigger_heartbeat),
    Step("change availability Inoperative, Operative", (3,), _change_availability),
    Step("get configuration", (4,), _get_configuration),
    Step("change configuration", (5,), _change_configuration),
    Step("remote start, charge", (6, 8), _remote_start, physical=True),
    Step("remote stop", (7, 8), _remote_stop, physical=True),
    Step("local start with a valid card, charge", (6, 8), _local_start, physical=True),
    Step("local stop with the same card", (7, 8), _local_stop, physical=True),
    Step("unknown card is rejected", (6,), _unknown_card, physical=True),
    Step("cable disconnect stops the transaction", (7, 11), _cable_disconnect, physical=True),
    Step("plug-in without start times out", (11,), _plug_in_timeout, physical=True),
    Step("faults on a connector and on the charger", (10,), _faults, physical=True),
    Step("soft reset", (9,), _soft_reset),
    Step("hard reset", (9,), _hard_reset),
    Step("firmware update", (12,), _firmware_update),
    Step("diagnostics", (13,), _diagnostics),
    Step("transaction through a network loss", (14,), _offline_transaction, physical=True),
    Step("clear cache", (15,), _clear_cache),
)


async def run_acceptance_scenario(
    commander: Commander,
    charger: PhysicalCharger,
    *,
    steps: tuple[Step, ...] = ACCEPTANCE_STEPS,
    on_step: Callable[[Step], None] | None = None,
    **timing: Any,
) -> dict[str, Any]:
    """Run the steps in order; returns the facts learned (configuration, change statuses, ...).

    ``timing`` overrides :class:`ScenarioTiming` fields (e.g. ``rejected_id_tag="BAD"``).
    Raises :class:`ScenarioError` naming the step when an expected message does not come.
    """
    known = {f.name for f in fields(ScenarioTiming)}
    unknown = set(timing) - known
    if unknown:
        raise TypeError(f"unknown scenario timing: {', '.join(sorted(unknown))}")
    ctx = ScenarioContext(commander, charger, ScenarioTiming(**timing))
    for step in steps:
        if on_step is not None:
            on_step(step)
        logger.info(
            "%s: step %r (function %s)", ctx.charge_point_id, step.name, step.function_label
        )
        try:
            await step.run(ctx)
        except STEP_FAILURES as exc:
            raise ScenarioError(step, exc) from exc
    return ctx.facts
