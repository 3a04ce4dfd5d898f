"""The acceptance scenario in OCPP 2.0.1 terms: the same 16 functions, the 2.0.1 messages.

The steps reuse :mod:`~ocpp_audit.lab.simulator.scenario`'s context (commander, physical charger,
timing) and differ where 2.0.1 does (``../shared/reference/ocpp201-acceptance.md``):
RequestStart/StopTransaction with remoteStartId and the charger's transactionId, GetBaseReport and
its NotifyReport parts, SetVariables on device-model variables, Reset OnIdle and Immediate,
UpdateFirmware and GetLog with a requestId, TriggerMessage with an EVSE, errors as NotifyEvent.
A transaction starts with the cable (TxStartPoint EVConnected) and is authorized by a card or a
RequestStartTransaction; its events are TransactionEvents with a seqNo.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp_audit.lab.simulator.scenario import (
    RESTORE_TIMEOUT_S,
    ScenarioContext,
    Step,
    _date_time,
)

__all__ = ["ACCEPTANCE_STEPS_V201"]

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
_request_ids = itertools.count(1)


def _token(id_tag: str) -> Payload:
    return {"idToken": id_tag, "type": "ISO14443"}


def _evse_of(payload: Payload) -> int | None:
    evse = payload.get("evse")
    return evse.get("id") if isinstance(evse, dict) else None


async def _expect_status(ctx: ScenarioContext, evse_id: int, status: str, *, after: int) -> Payload:
    return await ctx.expect(
        "StatusNotification",
        lambda p: p.get("evseId") == evse_id and p.get("connectorStatus") == status,
        after=after,
    )


async def _expect_event(
    ctx: ScenarioContext, evse_id: int, *, after: int, timeout: float | None = None, **fields: Any
) -> Payload:
    """The next TransactionEvent of the EVSE whose fields (or transactionInfo's) match."""

    def matches(payload: Payload) -> bool:
        if _evse_of(payload) not in (None, evse_id):
            return False
        info = payload.get("transactionInfo") or {}
        return all(payload.get(k, info.get(k)) == v for k, v in fields.items())

    return await ctx.expect("TransactionEvent", matches, after=after, timeout=timeout)


def _transaction_id(event: Payload) -> str:
    return str((event.get("transactionInfo") or {}).get("transactionId"))


async def _start_local(ctx: ScenarioContext, *, charge_seconds: float) -> str:
    """Plug in (Started, CablePluggedIn), swipe the valid card: Authorize, Updated Charging."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.plug_in(c)
    await _expect_status(ctx, c, "Occupied", after=mark)
    started = await _expect_event(ctx, c, after=mark, eventType="Started")
    await ctx.charger.swipe(t.valid_id_tag, c)
    await ctx.expect(
        "Authorize", lambda p: (p.get("idToken") or {}).get("idToken") == t.valid_id_tag, after=mark
    )
    await _expect_event(ctx, c, after=mark, chargingState="Charging")
    await asyncio.sleep(charge_seconds)
    return _transaction_id(started)


# --------------------------------------------------------------------------- the steps


async def _boot(ctx: ScenarioContext) -> None:
    """1: the station is on and has sent its BootNotification."""
    if hasattr(ctx.charger, "start") and not getattr(ctx.charger, "started", True):
        await ctx.charger.start()  # type: ignore[attr-defined]
    await ctx.expect("BootNotification", after=0, timeout=ctx.timing.reboot_timeout)


async def _trigger_status(ctx: ScenarioContext) -> None:
    """16: TriggerMessage(StatusNotification) for an EVSE and connector (F06)."""
    c = ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.command(
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "evse": {"id": c, "connectorId": 1}},
    )
    await ctx.expect("StatusNotification", lambda p: p.get("evseId") == c, after=mark)


async def _trigger_heartbeat(ctx: ScenarioContext) -> None:
    """2: TriggerMessage(Heartbeat) (TC_F_20)."""
    mark = ctx.commander.mark()
    await ctx.command("TriggerMessage", {"requestedMessage": "Heartbeat"})
    await ctx.expect("Heartbeat", after=mark)


async def _change_availability(ctx: ScenarioContext) -> None:
    """3: Inoperative -> Unavailable, Operative -> Available, for one EVSE (G03)."""
    c = ctx.timing.connector_id
    operative = {"operationalStatus": "Operative", "evse": {"id": c}}
    ctx.will_restore(
        f"availability {c}",
        f"ChangeAvailability Operative on EVSE {c}",
        lambda: ctx.command("ChangeAvailability", operative, timeout=RESTORE_TIMEOUT_S),
    )
    mark = ctx.commander.mark()
    await ctx.command("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": c}})
    await _expect_status(ctx, c, "Unavailable", after=mark)
    mark = ctx.commander.mark()
    await ctx.command("ChangeAvailability", operative)
    ctx.restored(f"availability {c}")
    await _expect_status(ctx, c, "Available", after=mark)


async def _get_base_report(ctx: ScenarioContext) -> None:
    """4: GetBaseReport(FullInventory): every NotifyReport part of the requestId, to tbc false."""
    request_id = next(_request_ids)
    mark = ctx.commander.mark()
    answer = await ctx.command(
        "GetBaseReport", {"requestId": request_id, "reportBase": "FullInventory"}
    )
    if answer.get("status") != "Accepted":
        return
    variables: dict[str, str] = {}

    def collect(payload: Payload) -> bool:
        if payload.get("requestId") != request_id:
            return False
        for entry in payload.get("reportData") or []:
            key = f"{entry['component']['name']}.{entry['variable']['name']}"
            for attribute in entry.get("variableAttribute") or []:
                if attribute.get("type", "Actual") == "Actual" and "value" in attribute:
                    variables[key] = attribute["value"]
        return not payload.get("tbc", False)

    await ctx.expect("NotifyReport", collect, after=mark)
    ctx.facts["configuration"] = variables
    ctx.facts.setdefault("connectors", 1)


async def _set_variables(ctx: ScenarioContext) -> None:
    """5: SetVariables of the two intervals the other functions rely on (B05), put back later."""
    t = ctx.timing
    reported = ctx.facts.get("configuration", {})
    items = (
        ("OCPPCommCtrlr", "HeartbeatInterval", t.heartbeat_interval),
        ("SampledDataCtrlr", "TxUpdatedInterval", t.meter_value_sample_interval),
    )
    for component, variable, value in items:
        original = reported.get(f"{component}.{variable}")
        if original is not None and original != str(value):
            data = {
                "component": {"name": component},
                "variable": {"name": variable},
                "attributeValue": original,
            }
            ctx.will_restore(
                f"variable {component}.{variable}",
                f"SetVariables {component}.{variable} = {original}",
                lambda d=data: ctx.command(
                    "SetVariables", {"setVariableData": [d]}, timeout=RESTORE_TIMEOUT_S
                ),
            )
    answer = await ctx.command(
        "SetVariables",
        {
            "setVariableData": [
                {"component": {"name": c}, "variable": {"name": v}, "attributeValue": str(value)}
                for c, v, value in items
            ]
        },
    )
    ctx.facts["set variables"] = [r.get("attributeStatus") for r in answer["setVariableResult"]]


async def _remote_start(ctx: ScenarioContext) -> None:
    """6: cable in, RequestStartTransaction(remoteStartId) -> Updated RemoteStart -> Charging."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.plug_in(c)
    started = await _expect_event(ctx, c, after=mark, eventType="Started")
    remote_start_id = next(_request_ids)
    await ctx.command(
        "RequestStartTransaction",
        {"idToken": _token(t.valid_id_tag), "remoteStartId": remote_start_id, "evseId": c},
    )
    await _expect_event(ctx, c, after=mark, remoteStartId=remote_start_id)
    await _expect_event(ctx, c, after=mark, chargingState="Charging")
    ctx.facts["remote_transaction_id"] = _transaction_id(started)
    await asyncio.sleep(t.charge_seconds)  # 8: periodic Updated meter values while charging


async def _remote_stop(ctx: ScenarioContext) -> None:
    """7: RequestStopTransaction(transactionId) -> Ended (Remote); unplug -> Available."""
    c = ctx.timing.connector_id
    transaction_id = ctx.facts["remote_transaction_id"]
    mark = ctx.commander.mark()
    await ctx.command("RequestStopTransaction", {"transactionId": transaction_id})
    await _expect_event(ctx, c, after=mark, eventType="Ended", transactionId=transaction_id)
    await ctx.charger.unplug(c)
    await _expect_status(ctx, c, "Available", after=mark)


async def _local_start(ctx: ScenarioContext) -> None:
    """6: cable in, the valid card: Authorize, Updated Authorized, Charging."""
    ctx.facts["local_transaction_id"] = await _start_local(
        ctx, charge_seconds=ctx.timing.local_charge_seconds
    )


async def _local_stop(ctx: ScenarioContext) -> None:
    """7: the same card again: Ended (Local); unplug -> Available."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.swipe(t.valid_id_tag, c)
    await _expect_event(ctx, c, after=mark, eventType="Ended")
    await ctx.charger.unplug(c)
    await _expect_status(ctx, c, "Available", after=mark)


async def _unknown_card(ctx: ScenarioContext) -> None:
    """6: an unknown card: Authorize answered Invalid, and no transaction starts."""
    t, c = ctx.timing, ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.swipe(t.rejected_id_tag, c)
    await ctx.expect(
        "Authorize",
        lambda p: (p.get("idToken") or {}).get("idToken") == t.rejected_id_tag,
        after=mark,
    )


async def _cable_disconnect(ctx: ScenarioContext) -> None:
    """7, 11: pulling the cable ends the transaction (EVDeparted, EVDisconnected): Available."""
    c = ctx.timing.connector_id
    await _start_local(ctx, charge_seconds=0.5)
    mark = ctx.commander.mark()
    await ctx.charger.unplug(c)
    await _expect_event(ctx, c, after=mark, eventType="Ended", stoppedReason="EVDisconnected")
    await _expect_status(ctx, c, "Available", after=mark)


async def _faults(ctx: ScenarioContext) -> None:
    """10: a connector's error (Faulted and a NotifyEvent), then the station's own."""
    c = ctx.timing.connector_id
    mark = ctx.commander.mark()
    await ctx.charger.raise_fault(c, "GroundFailure")
    await _expect_status(ctx, c, "Faulted", after=mark)
    await ctx.expect("NotifyEvent", after=mark)
    await ctx.charger.clear_fault(c)
    await _expect_status(ctx, c, "Available", after=mark)
    mark = ctx.commander.mark()
    await ctx.charger.raise_fault(0, "HighTemperature")
    await ctx.expect("NotifyEvent", after=mark)
    await ctx.charger.clear_fault(0)


async def _expect_reboot(ctx: ScenarioContext, after: int, reason: str) -> None:
    """BootNotification with the reason, then a StatusNotification for EVSE 1."""
    await ctx.expect(
        "BootNotification",
        lambda p: p.get("reason") == reason,
        after=after,
        timeout=ctx.timing.reboot_timeout,
    )
    await ctx.expect("StatusNotification", after=after)


async def _on_idle_reset(ctx: ScenarioContext) -> None:
    """9: Reset OnIdle with nothing running: back with BootNotification reason RemoteReset."""
    mark = ctx.commander.mark()
    await ctx.command("Reset", {"type": "OnIdle"})
    await _expect_reboot(ctx, mark, "RemoteReset")


async def _immediate_reset(ctx: ScenarioContext) -> None:
    """9: Reset Immediate: the same."""
    mark = ctx.commander.mark()
    await ctx.command("Reset", {"type": "Immediate"})
    await _expect_reboot(ctx, mark, "RemoteReset")


async def _firmware_update(ctx: ScenarioContext) -> None:
    """12: UpdateFirmware(requestId) -> Downloading ... InstallRebooting, reboot, Installed."""
    request_id = next(_request_ids)
    mark = ctx.commander.mark()
    await ctx.command(
        "UpdateFirmware",
        {
            "requestId": request_id,
            "firmware": {
                "location": ctx.timing.firmware_location,
                "retrieveDateTime": _date_time(datetime.now(UTC)),
            },
        },
    )
    await ctx.expect(
        "FirmwareStatusNotification",
        lambda p: p.get("status") == "Downloading" and p.get("requestId") == request_id,
        after=mark,
    )
    await _expect_reboot(ctx, mark, "FirmwareUpdate")
    await ctx.expect(
        "FirmwareStatusNotification",
        lambda p: p.get("status") == "Installed",
        after=mark,
        timeout=ctx.timing.reboot_timeout,
    )


async def _get_log(ctx: ScenarioContext) -> None:
    """13: GetLog(DiagnosticsLog, requestId) -> Uploading -> Uploaded."""
    request_id = next(_request_ids)
    mark = ctx.commander.mark()
    now = datetime.now(UTC)
    await ctx.command(
        "GetLog",
        {
            "logType": "DiagnosticsLog",
            "requestId": request_id,
            "log": {
                "remoteLocation": ctx.timing.diagnostics_location,
                "oldestTimestamp": _date_time(now - timedelta(hours=1)),
                "latestTimestamp": _date_time(now),
            },
        },
    )
    for status in ("Uploading", "Uploaded"):
        await ctx.expect(
            "LogStatusNotification",
            lambda p, s=status: p.get("status") == s and p.get("requestId") == request_id,
            after=mark,
            timeout=ctx.timing.reboot_timeout,
        )


async def _offline_transaction(ctx: ScenarioContext) -> None:
    """14: a transaction runs through a network loss; its events come after the reconnect, with
    offline set and the seqNo unbroken (E12)."""
    t, c = ctx.timing, ctx.timing.connector_id
    transaction_id = await _start_local(ctx, charge_seconds=0.2)
    await ctx.charger.lose_network()
    await asyncio.sleep(t.offline_seconds)
    await ctx.charger.restore_network()
    mark = ctx.commander.mark()
    await ctx.charger.swipe(t.valid_id_tag, c)
    await _expect_event(ctx, c, after=mark, eventType="Ended", transactionId=transaction_id)
    await ctx.charger.unplug(c)
    await _expect_status(ctx, c, "Available", after=mark)


async def _clear_cache(ctx: ScenarioContext) -> None:
    """15: ClearCache -> Accepted (C11)."""
    await ctx.command("ClearCache", {})
    await asyncio.sleep(ctx.timing.settle_seconds)


ACCEPTANCE_STEPS_V201: tuple[Step, ...] = (
    Step("boot notification", (1,), _boot),
    Step("trigger StatusNotification of EVSE 1 after boot", (16,), _trigger_status),
    Step("trigger Heartbeat", (2,), _trigger_heartbeat),
    Step("change availability of an EVSE Inoperative, Operative", (3,), _change_availability),
    Step("get base report (NotifyReport parts)", (4,), _get_base_report),
    Step("set variables", (5,), _set_variables),
    Step("remote start, charge", (6, 8, 11), _remote_start, physical=True),
    Step("remote stop", (7, 8, 11), _remote_stop, physical=True),
    Step("local start with a valid card, charge", (6, 8), _local_start, physical=True),
    Step("local stop with the same card", (7, 8), _local_stop, physical=True),
    Step("unknown card is rejected", (6,), _unknown_card, physical=True),
    Step("cable disconnect ends the transaction", (7, 11), _cable_disconnect, physical=True),
    Step("faults on an EVSE and on the station", (10,), _faults, physical=True),
    Step("reset OnIdle", (9,), _on_idle_reset),
    Step("reset Immediate", (9,), _immediate_reset),
    Step("firmware update", (12,), _firmware_update),
    Step("get log", (13,), _get_log),
    Step("transaction through a network loss", (14,), _offline_transaction, physical=True),
    Step("clear cache", (15,), _clear_cache),
)
