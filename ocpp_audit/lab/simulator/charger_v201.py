"""A simulated OCPP 2.0.1 charging station, on the ``ocpp`` library's v201 ``ChargePoint``.

It keeps the 1.6 simulator's physical model and machinery (connection, offline queue, reboots,
meters, tasks: :class:`~ocpp_audit.lab.simulator.charger.SimulatedCharger`) and speaks 2.0.1 on
top of it. Each EVSE has one connector (``connectors[n]`` is EVSE ``n``, connector 1); the
charger-wide configuration keys are read and set as device-model variables (``DEVICE_MODEL``).

How its transactions run (OCPP 2.0.1 E01, with TxStartPoint EVConnected,Authorized and TxStopPoint
EVConnected,Authorized):

- plugging the cable in starts a transaction: ``TransactionEvent`` Started, triggerReason
  CablePluggedIn, chargingState EVConnected, with a Transaction.Begin sample; the connector goes
  Occupied;
- an accepted card (Authorize) or a RequestStartTransaction authorizes it: Updated, triggerReason
  Authorized / RemoteStart (with the remoteStartId), chargingState Charging; then Updated with
  periodic samples every SampledDataCtrlr.TxUpdatedInterval seconds;
- the same card again, a RequestStopTransaction or pulling the cable ends it: Ended with
  stoppedReason Local / Remote / EVDisconnected and a Transaction.End sample.

Every event of a transaction carries the next ``seqNo`` (from 0), and an event that happens while
the station is offline carries ``offline = true`` and waits in the queue (OCPP 2.0.1 E12).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201 import call as ocpp_call
from ocpp.v201.enums import Action
from websockets.asyncio.client import ClientConnection

from ocpp_audit.lab.simulator.charger import (
    Connector,
    SimulatedCharger,
    _cancel,
    _next_version,
    _State,
    utc_now,
)
from ocpp_audit.lab.simulator.profiles import resolve_profile
from ocpp_audit.lab.simulator.transfers import (
    download_firmware,
    is_loopback_location,
    upload_diagnostics,
)
from ocpp_audit.protocol.constants import SUBPROTOCOLS, OcppVersion

__all__ = ["DEVICE_MODEL", "SimulatedCharger201"]

logger = logging.getLogger(__name__)

# Device-model variables (component.variable) and the configuration key each one is; the names are
# OCPP 2.0.1 part 2 appendix 3's (the SAP simulator keeps the same 1.6 -> 2.0.1 map).
DEVICE_MODEL: dict[tuple[str, str], str] = {
    ("OCPPCommCtrlr", "HeartbeatInterval"): "HeartbeatInterval",
    ("OCPPCommCtrlr", "WebSocketPingInterval"): "WebSocketPingInterval",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "MeterValueSampleInterval",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): "MeterValuesSampledData",
    ("SampledDataCtrlr", "TxEndedMeasurands"): "StopTxnSampledData",
    ("AlignedDataCtrlr", "Interval"): "ClockAlignedDataInterval",
    ("AlignedDataCtrlr", "Measurands"): "MeterValuesAlignedData",
    ("TxCtrlr", "EVConnectionTimeOut"): "ConnectionTimeOut",
    ("TxCtrlr", "StopTxOnEVSideDisconnect"): "StopTransactionOnEVSideDisconnect",
    ("TxCtrlr", "StopTxOnInvalidId"): "StopTransactionOnInvalidId",
    ("AuthCtrlr", "AuthorizeRemoteStart"): "AuthorizeRemoteTxRequests",
    ("AuthCtrlr", "LocalAuthorizeOffline"): "LocalAuthorizeOffline",
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "AllowOfflineTxForUnknownId",
    ("AuthCacheCtrlr", "Enabled"): "AuthorizationCacheEnabled",
    ("LocalAuthListCtrlr", "Enabled"): "LocalAuthListEnabled",
    ("DeviceDataCtrlr", "ItemsPerMessage"): "GetConfigurationMaxKeys",
}
# NotifyReport parts: reportData entries per message (DeviceDataCtrlr.ItemsPerMessage).
REPORT_ITEMS_PER_MESSAGE = 10
_DATA_TYPES = {"int": "integer", "bool": "boolean", "csl": "MemberList", "str": "string"}


@dataclass
class Transaction201:
    """A 2.0.1 transaction: the id is the station's own, its events are numbered by seqNo."""

    evse_id: int
    transaction_id: str
    id_token: str | None = None
    remote_start_id: int | None = None
    seq_no: int = 0
    charging: bool = False

    def next_seq_no(self) -> int:
        seq_no, self.seq_no = self.seq_no, self.seq_no + 1
        return seq_no


class SimulatedCharger201(SimulatedCharger):
    """One OCPP 2.0.1 charging station with ``connectors`` EVSEs of one connector each."""

    ocpp_version = OcppVersion.V201
    subprotocol = SUBPROTOCOLS[OcppVersion.V201]

    def __init__(
        self, charge_point_id: str, target_url: str, *, profile: str = "v201-good", **options: Any
    ) -> None:
        # A 1.6 profile name stands for its 2.0.1 twin (good -> v201-good).
        profile = resolve_profile(profile, OcppVersion.V201.value)
        super().__init__(charge_point_id, target_url, profile=profile, **options)
        self._boot_reason = "PowerUp"
        self._firmware_request_id: int | None = None  # Installed goes after the reboot
        self.log_status = "Idle"
        self._log_request_id: int | None = None
        self._event_ids = 0

    def _new_link(self, connection: ClientConnection) -> Any:
        return _Link201(self, connection)

    def _heartbeat(self) -> Any:
        return ocpp_call.Heartbeat()

    # ------------------------------------------------------------------ physical steps

    async def plug_in(self, connector_id: int = 1) -> None:
        """The cable goes in: Occupied, and (TxStartPoint EVConnected) a transaction starts."""
        connector = self._connector(connector_id)
        connector.plugged = True
        if connector.faulted or not connector.operative or connector.transaction is not None:
            return
        await self._set_status(connector, "Occupied")
        async with connector.lock:
            await self._begin(connector, "CablePluggedIn")
        if connector.authorized_id_tag is not None:
            token, connector.authorized_id_tag = connector.authorized_id_tag, None
            await self._authorize_transaction(connector, token, "Authorized")

    async def unplug(self, connector_id: int = 1) -> None:
        """The cable comes out: a running transaction ends (EVDeparted / EVDisconnected)."""
        connector = self._connector(connector_id)
        connector.plugged = False
        connector.authorized_id_tag = None
        if connector.transaction is not None:
            await self._end(connector, "EVDeparted", "EVDisconnected")
        if not connector.faulted and connector.operative:
            await self._set_status(connector, "Available")

    async def swipe(self, id_tag: str, connector_id: int = 1) -> None:
        """A card: Authorize, then authorize the transaction (or end the one it started)."""
        connector = self._connector(connector_id)
        transaction = connector.transaction
        if transaction is not None and transaction.id_token is not None:
            if id_tag == transaction.id_token or await self._authorize(id_tag) == "Accepted":
                await self._end(connector, "StopAuthorized", "Local")
            return
        if connector.faulted or not connector.operative:
            return
        if await self._authorize(id_tag) != "Accepted":
            return  # "If not approved the sequence must stop"
        if transaction is not None:
            await self._authorize_transaction(connector, id_tag, "Authorized")
        else:
            connector.authorized_id_tag = id_tag  # the transaction starts with the cable

    async def raise_fault(self, connector_id: int = 1, error_code: str = "GroundFailure") -> None:
        """A hardware error: StatusNotification Faulted (an EVSE) and a NotifyEvent saying why
        (OCPP 2.0.1 has no error fields in StatusNotification; connector 0 is the station)."""
        connector = self._connector(connector_id, allow_zero=True)
        connector.faulted = True
        if connector.transaction is not None:
            await self._end(connector, "AbnormalCondition", "Other")
        if connector_id:
            await self._set_status(connector, "Faulted")
        await self._notify_problem(connector_id, error_code, cleared=False)

    async def clear_fault(self, connector_id: int = 1) -> None:
        connector = self._connector(connector_id, allow_zero=True)
        connector.faulted = False
        await self._notify_problem(connector_id, connector.error_code, cleared=True)
        if connector_id:
            await self._set_status(connector, self._idle_status(connector))

    def transaction_id(self, connector_id: int = 1) -> str | None:  # type: ignore[override]
        transaction = self._connector(connector_id).transaction
        return None if transaction is None else transaction.transaction_id  # type: ignore[return-value]

    # ------------------------------------------------------------------ boot and status

    def _idle_status(self, connector: Connector) -> str:
        if connector.faulted:
            return "Faulted"
        if not connector.operative:
            return "Unavailable"
        if connector.plugged:
            return "Occupied"
        return "Available"

    def _power_on(self) -> None:
        super()._power_on()
        for connector in self.connectors[1:]:
            if connector.status == "Preparing":
                connector.status = "Occupied"
            _cancel(connector.timeout_task)

    def _boot_payload(self) -> Any:
        station: dict[str, Any] = {
            "model": self.model,
            "vendor_name": self.vendor,
            "firmware_version": self.firmware_version,
        }
        if self.profile.send_serial_and_iccid:
            station["serial_number"] = self.serial_number
            station["modem"] = {"iccid": self.iccid}
        return ocpp_call.BootNotification(charging_station=station, reason=self._boot_reason)

    async def _boot(self) -> bool:
        """BootNotification until Accepted (OCPP 2.0.1 B01), with the reason of this boot."""
        while self._state is _State.BOOTING:
            result = await self._call(self._boot_payload(), early=True)
            if result is None:
                if self._state is not _State.BOOTING:
                    return False
                await asyncio.sleep(self.timing.boot_retry)
                continue
            self.stats.boots += 1
            if result.status == "Accepted":
                if result.interval > 0:  # B01.FR.04: the heartbeat interval
                    self.config.set("HeartbeatInterval", str(result.interval))
                self._boot_needed = False
                if self._firmware_request_id is not None:
                    self._spawn(self._installed(self._firmware_request_id))
                    self._firmware_request_id = None
                self._boot_reason = "PowerUp"
                return True
            if self._startup is not None and not self._startup.done():
                self._startup.set_result(None)
            await asyncio.sleep(result.interval if result.interval > 0 else self.timing.boot_retry)
        return False

    async def _send_status(self, connector: Connector, *, early: bool = False) -> None:
        """StatusNotification of the EVSE's connector (OCPP 2.0.1 G01); connector 0 (the
        station) has none in 2.0.1."""
        if connector.connector_id == 0:
            connector.reported = (connector.status, connector.error_code)
            return
        payload = ocpp_call.StatusNotification(
            timestamp=utc_now(),
            connector_status=connector.status,
            evse_id=connector.connector_id,
            connector_id=1,
        )
        reported = (connector.status, connector.error_code)
        if await self._call(payload, early=early) is not None:
            connector.reported = reported

    async def _notify_problem(self, connector_id: int, error_code: str, *, cleared: bool) -> None:
        """NotifyEvent of the component's Problem variable (OCPP 2.0.1 N07, G05)."""
        self._event_ids += 1
        component: dict[str, Any] = {"name": "ChargingStation"}
        if connector_id:
            component = {"name": "Connector", "evse": {"id": connector_id, "connector_id": 1}}
            self._connector(connector_id).error_code = error_code
        event: dict[str, Any] = {
            "event_id": self._event_ids,
            "timestamp": utc_now(),
            "trigger": "Delta",
            "actual_value": "false" if cleared else "true",
            "cleared": cleared,
            "event_notification_type": "HardWiredNotification",
            "component": component,
            "variable": {"name": "Problem"},
        }
        if not cleared:
            event["tech_code"] = error_code
            event["tech_info"] = f"simulated {error_code}"
        await self._call(
            ocpp_call.NotifyEvent(generated_at=utc_now(), seq_no=0, event_data=[event])
        )

    # ------------------------------------------------------------------ authorization

    async def _authorize(self, id_tag: str) -> str:
        """Authorize online (OCPP 2.0.1 C01); offline the cache or OfflineTxForUnknownIdEnabled."""
        if self._state is _State.READY:
            result = await self._call(
                ocpp_call.Authorize(id_token={"id_token": id_tag, "type": "ISO14443"})
            )
            if result is not None:
                status = (result.id_token_info or {}).get("status", "Invalid")
                if self.config.get_bool("AuthorizationCacheEnabled"):
                    self.auth_cache[id_tag] = status
                return status
        known = self.auth_cache.get(id_tag)
        if known is not None and self.config.get_bool("LocalAuthorizeOffline"):
            return known
        return "Accepted" if self.config.get_bool("AllowOfflineTxForUnknownId") else "Invalid"

    # ------------------------------------------------------------------ transactions

    def _meter_value(self, connector: Connector, context: str) -> dict[str, object]:
        """One meterValue element in 2.0.1 form: values are numbers, units in unitOfMeasure."""
        sampled = []
        for value in self._sampled_values(connector, context):
            item: dict[str, object] = {
                "value": float(value["value"]),
                "context": context,
                "measurand": value["measurand"],
                "location": "Outlet",
                "unit_of_measure": {"unit": value["unit"]},
            }
            if "phase" in value:
                item["phase"] = value["phase"]
            sampled.append(item)
        return {"timestamp": utc_now(), "sampled_value": sampled}

    async def _event(
        self,
        connector: Connector,
        event_type: str,
        trigger_reason: str,
        *,
        context: str | None = None,
        id_token: str | None = None,
        stopped_reason: str | None = None,
    ) -> Any:
        """One TransactionEvent of the connector's transaction, queued while offline."""
        transaction: Transaction201 = connector.transaction  # type: ignore[assignment]
        info: dict[str, Any] = {"transaction_id": transaction.transaction_id}
        if event_type == "Ended":
            info["charging_state"] = "EVConnected" if connector.plugged else "Idle"
        elif transaction.charging:
            info["charging_state"] = "Charging"
        elif connector.plugged:
            info["charging_state"] = "EVConnected"
        if stopped_reason is not None:
            info["stopped_reason"] = stopped_reason
        if transaction.remote_start_id is not None and trigger_reason == "RemoteStart":
            info["remote_start_id"] = transaction.remote_start_id
        payload = ocpp_call.TransactionEvent(
            event_type=event_type,
            timestamp=utc_now(),
            trigger_reason=trigger_reason,
            seq_no=transaction.next_seq_no(),
            transaction_info=info,
            meter_value=[self._meter_value(connector, context)] if context else None,
            evse={"id": connector.connector_id, "connector_id": 1},
            id_token={"id_token": id_token, "type": "ISO14443"} if id_token else None,
            # E12.FR.xx: an event that happens while offline is sent later with offline = true
            offline=True if self._state is not _State.READY else None,
        )
        return await self._call(payload, queue=True)

    async def _begin(self, connector: Connector, trigger_reason: str) -> None:
        """Started (TxStartPoint EVConnected): the transaction's id is the station's own."""
        if connector.transaction is not None:
            return
        self._advance_meter(connector)
        # TransactionType.transactionId: identifierString, at most 36 characters.
        transaction_id = f"TX-{uuid.uuid4().hex[:20]}"
        connector.transaction = Transaction201(connector.connector_id, transaction_id)  # type: ignore[assignment]
        self.stats.transactions += 1
        await self._event(connector, "Started", trigger_reason, context="Transaction.Begin")

    async def _authorize_transaction(
        self,
        connector: Connector,
        id_token: str,
        trigger_reason: str,
        remote_start_id: int | None = None,
    ) -> None:
        """Updated: authorized (card or RequestStartTransaction), the energy flows: Charging."""
        async with connector.lock:
            transaction: Transaction201 | None = connector.transaction  # type: ignore[assignment]
            if transaction is None or transaction.id_token is not None:
                return
            transaction.id_token = id_token
            transaction.remote_start_id = remote_start_id
            transaction.charging = True
            connector.status = "Occupied"
            self._advance_meter(connector)
            await self._event(connector, "Updated", trigger_reason, id_token=id_token)
            self._restart_meter(connector)

    async def _end(self, connector: Connector, trigger_reason: str, stopped_reason: str) -> None:
        """Ended with the stoppedReason and a Transaction.End sample (TxStopPoint)."""
        async with connector.lock:
            if connector.transaction is None:
                return
            _cancel(connector.meter_task)
            transaction: Transaction201 = connector.transaction  # type: ignore[assignment]
            transaction.charging = False
            self._advance_meter(connector)
            await self._event(
                connector,
                "Ended",
                trigger_reason,
                context="Transaction.End",
                stopped_reason=stopped_reason,
            )
            connector.transaction = None
            if connector.inoperative_scheduled:
                connector.inoperative_scheduled = False
                connector.operative = False
                await self._set_status(connector, "Unavailable")

    async def _stop_transaction(
        self,
        connector: Connector,
        reason: str,
        *,
        id_tag: str | None = None,
        send_status: bool = True,
    ) -> None:
        """The 1.6 machinery's stop (a reset, a fault): Ended with the 2.0.1 reason."""
        reasons = {"HardReset": "ImmediateReset", "SoftReset": "ImmediateReset", "Reboot": "Reboot"}
        await self._end(connector, "ResetCommand", reasons.get(reason, "Other"))

    async def _sample_meter(self, connector: Connector) -> None:
        """Updated every SampledDataCtrlr.TxUpdatedInterval seconds while charging (J02)."""
        while connector.transaction is not None:
            interval = self.meter_value_sample_interval
            if interval <= 0:
                return
            period = max(
                interval * self.profile.meter_interval_factor, self.profile.meter_interval_floor_s
            )
            await asyncio.sleep(period)
            if connector.transaction is None:
                return
            await self._event(connector, "Updated", "MeterValuePeriodic", context="Sample.Periodic")

    def _discarded_from_queue(self, payload: Any) -> bool:
        """The faulty profile's loss: the Updated events of the offline period are dropped."""
        return (
            isinstance(payload, ocpp_call.TransactionEvent)
            and payload.event_type == "Updated"
            and bool(payload.offline)
            and not self.profile.deliver_queued_meter_values
        )

    def _transaction_of(self, payload: Any) -> Any:
        return None  # the transactionId is the station's: nothing to confirm when delivered

    # ------------------------------------------------------------------ reset, firmware, logs

    async def _reboot(self, reason: str, *, hard: bool) -> None:
        self._boot_reason = "FirmwareUpdate" if reason == "Reboot" else "RemoteReset"
        await super()._reboot(reason, hard=hard)

    async def _update_firmware_201(self, request_id: int, location: str, retrieve: str) -> None:
        """L01: Downloading, Downloaded, InstallRebooting, reboot (reason FirmwareUpdate), and
        Installed once back with the new firmwareVersion; every status with the requestId."""
        with contextlib.suppress(ValueError):
            start = datetime.fromisoformat(retrieve.replace("Z", "+00:00"))
            delay = (start - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(min(delay, 3600))
        await self._firmware_status_201("Downloading", request_id)
        if is_loopback_location(location):
            try:
                await download_firmware(location, timeout=self.timing.response_timeout * 3)
            except (OSError, ValueError) as exc:
                logger.warning("%s: firmware download failed: %s", self.charge_point_id, exc)
                await self._firmware_status_201("DownloadFailed", request_id)
                return
        else:
            await asyncio.sleep(self.timing.transfer_step)
        await self._firmware_status_201("Downloaded", request_id)
        await asyncio.sleep(self.timing.transfer_step)
        while any(c.transaction is not None for c in self.connectors):
            await asyncio.sleep(1)  # L01.FR.06: wait for the transactions to end
        self._new_firmware_version = _next_version(self.firmware_version, location)
        # L01.FR.15: InstallRebooting before rebooting to install.
        await self._firmware_status_201("InstallRebooting", request_id)
        self._firmware_request_id = request_id
        await self._reboot("Reboot", hard=False)

    async def _installed(self, request_id: int) -> None:
        await self._ready.wait()
        await self._firmware_status_201("Installed", request_id)

    async def _firmware_status_201(self, status: str, request_id: int | None) -> None:
        self.firmware_status = status
        await self._call(ocpp_call.FirmwareStatusNotification(status=status, request_id=request_id))

    async def _upload_log(self, request_id: int, location: str, file_name: str) -> None:
        """N01: Uploading, then Uploaded or UploadFailure, with the GetLog's requestId."""
        await self._log_status("Uploading", request_id)
        if is_loopback_location(location):
            content = "\n".join(
                [
                    f"{utc_now()} {self.charge_point_id} {self.vendor} {self.model} (OCPP 2.0.1)",
                    f"firmware {self.firmware_version}",
                    *(f"EVSE {c.connector_id}: {c.status}" for c in self.connectors[1:]),
                ]
            ).encode()
            try:
                await upload_diagnostics(
                    location, file_name, content, timeout=self.timing.response_timeout * 3
                )
            except Exception as exc:  # aioftp raises its own errors besides OSError
                logger.warning("%s: log upload failed: %s", self.charge_point_id, exc)
                await self._log_status("UploadFailure", request_id)
                return
        else:
            await asyncio.sleep(self.timing.transfer_step)
        await self._log_status("Uploaded", request_id)

    async def _log_status(self, status: str, request_id: int | None) -> None:
        self.log_status = status
        await self._call(ocpp_call.LogStatusNotification(status=status, request_id=request_id))

    # ------------------------------------------------------------------ device model

    def variable_key(self, component: str, variable: str) -> str | None:
        return DEVICE_MODEL.get((component, variable))

    def report_data(self) -> list[dict[str, Any]]:
        """Every variable of the device model as NotifyReport reportData (B07)."""
        entries = []
        for (component, variable), key in DEVICE_MODEL.items():
            if key not in self.config:
                continue
            item = self.config._keys[key]
            entries.append(
                {
                    "component": {"name": component},
                    "variable": {"name": variable},
                    "variable_attribute": [
                        {
                            "type": "Actual",
                            "value": item.value[:2500],
                            "mutability": "ReadOnly" if item.readonly else "ReadWrite",
                        }
                    ],
                    "variable_characteristics": {
                        "data_type": _DATA_TYPES.get(item.kind, "string"),
                        "supports_monitoring": False,
                    },
                }
            )
        return entries

    async def _send_report(self, request_id: int) -> None:
        """NotifyReport parts: seqNo from 0, tbc on every part but the last (B07.FR.xx)."""
        entries = self.report_data()
        parts = [
            entries[n : n + REPORT_ITEMS_PER_MESSAGE]
            for n in range(0, len(entries), REPORT_ITEMS_PER_MESSAGE)
        ] or [[]]
        for seq_no, part in enumerate(parts):
            await self._call(
                ocpp_call.NotifyReport(
                    request_id=request_id,
                    generated_at=utc_now(),
                    seq_no=seq_no,
                    tbc=seq_no < len(parts) - 1,
                    report_data=part or None,
                )
            )


class _Link201(ChargePoint):
    """One WebSocket connection of the 2.0.1 station: the ``ocpp`` v201 ChargePoint answering
    the CSMS's CALLs (``@on`` answers at once; follow-ups go in ``@after``, as tasks)."""

    def __init__(self, charger: SimulatedCharger201, connection: ClientConnection) -> None:
        super().__init__(
            charger.charge_point_id, connection, response_timeout=charger.timing.response_timeout
        )
        self.charger = charger

    def _answered(self) -> None:
        self.charger.stats.commands_answered += 1

    def _evses(self, evse: dict[str, Any] | None) -> list[Connector] | None:
        """The EVSEs addressed (None: the whole station); None too when there is no such EVSE."""
        connectors = self.charger.connectors
        if evse is None:
            return connectors[1:]
        evse_id = evse.get("id", 0)
        if not 1 <= evse_id < len(connectors) or evse.get("connector_id", 1) != 1:
            return None
        return [connectors[evse_id]]

    # --- provisioning (B)

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        self._answered()
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, **_: Any) -> None:
        self.charger._spawn(self.charger._send_report(request_id))

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        """B06: one result per item; unknown ones are UnknownComponent / UnknownVariable."""
        self._answered()
        charger = self.charger
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            key = charger.variable_key(component["name"], variable["name"])
            result: dict[str, Any] = {"component": component, "variable": variable}
            if key is None or key not in charger.config:
                known = any(c == component["name"] for c, _v in DEVICE_MODEL)
                result["attribute_status"] = "UnknownVariable" if known else "UnknownComponent"
            else:
                result["attribute_status"] = "Accepted"
                result["attribute_value"] = charger.config.get(key)[:2500]
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        """B05: a verdict per item."""
        self._answered()
        charger = self.charger
        results = []
        self._changed: list[str] = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            key = charger.variable_key(component["name"], variable["name"])
            if key is None or key not in charger.config:
                known = any(c == component["name"] for c, _v in DEVICE_MODEL)
                status = "UnknownVariable" if known else "UnknownComponent"
            elif item.get("attribute_type", "Actual") != "Actual":
                status = "NotSupportedAttributeType"
            elif not charger.profile.accept_change_configuration:
                status = "Rejected"
            else:
                changed = charger.config.change(key, item["attribute_value"])
                status = "Accepted" if changed == "Accepted" else "Rejected"
                if status == "Accepted":
                    self._changed.append(key)
            results.append(
                {"attribute_status": status, "component": component, "variable": variable}
            )
        return call_result.SetVariables(set_variable_result=results)

    @after(Action.set_variables)
    def after_set_variables(self, **_: Any) -> None:
        charger = self.charger
        if "HeartbeatInterval" in self._changed:
            charger._restart_heartbeat()
        if "MeterValueSampleInterval" in self._changed:
            for connector in charger.connectors[1:]:
                if connector.transaction is not None and connector.transaction.charging:  # type: ignore[attr-defined]
                    charger._restart_meter(connector)

    @on(Action.reset)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        """B11/B12: OnIdle waits for running transactions (Scheduled); Immediate does not."""
        self._answered()
        if evse_id is not None:
            return call_result.Reset(status="Rejected")  # no EVSE-level reset here
        busy = any(c.transaction is not None for c in self.charger.connectors)
        return call_result.Reset(status="Scheduled" if busy and type == "OnIdle" else "Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        if evse_id is not None:
            return
        charger = self.charger

        async def reset() -> None:
            while type == "OnIdle" and any(c.transaction is not None for c in charger.connectors):
                await asyncio.sleep(0.5)
            await charger._reboot("HardReset" if type == "Immediate" else "SoftReset", hard=False)

        charger._spawn(reset())

    # --- availability (G)

    @on(Action.change_availability)
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        """G03/G04: Scheduled when a transaction runs on an EVSE that is to go Inoperative."""
        self._answered()
        targets = self._evses(evse)
        if targets is None:
            return call_result.ChangeAvailability(status="Rejected")
        operative = operational_status == "Operative"
        scheduled = False
        for connector in targets:
            if not operative and connector.transaction is not None:
                connector.inoperative_scheduled = True
                scheduled = True
            else:
                connector.operative = operative
                connector.inoperative_scheduled = False
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @after(Action.change_availability)
    def after_change_availability(self, evse: dict[str, Any] | None = None, **_: Any) -> None:
        charger = self.charger
        targets = self._evses(evse) or []

        async def report() -> None:
            for connector in targets:
                if connector.transaction is None:
                    await charger._set_status(connector, charger._idle_status(connector))

        charger._spawn(report())

    # --- authorization and transactions (C, E, F)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        self._answered()
        if not self.charger.config.get_bool("AuthorizationCacheEnabled"):
            return call_result.ClearCache(status="Rejected")  # C11.FR.04
        self.charger.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    def _start_target(self, evse_id: int | None) -> Connector | None:
        connectors = self.charger.connectors
        candidates = connectors[1:] if evse_id is None else connectors[evse_id : evse_id + 1]
        for connector in candidates:
            transaction = connector.transaction
            if (
                connector.connector_id
                and connector.operative
                and not connector.faulted
                and (transaction is None or transaction.id_token is None)  # type: ignore[attr-defined]
            ):
                return connector
        return None

    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        **_: Any,
    ) -> Any:
        """F01: Accepted, with the transactionId when the cable's transaction already runs."""
        self._answered()
        connector = self._start_target(evse_id)
        if connector is None:
            return call_result.RequestStartTransaction(status="Rejected")
        running = connector.transaction
        return call_result.RequestStartTransaction(
            status="Accepted",
            transaction_id=running.transaction_id if running is not None else None,
        )

    @after(Action.request_start_transaction)
    def after_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        **_: Any,
    ) -> None:
        charger = self.charger
        connector = self._start_target(evse_id)
        if connector is None:
            return
        token = id_token["id_token"]

        async def start() -> None:
            if charger.config.get_bool("AuthorizeRemoteTxRequests") and (
                await charger._authorize(token) != "Accepted"
            ):
                return
            if connector.transaction is None:
                # TxStartPoint Authorized: no cable yet, the authorization starts the transaction.
                async with connector.lock:
                    await charger._begin(connector, "RemoteStart")
            await charger._authorize_transaction(connector, token, "RemoteStart", remote_start_id)

        charger._spawn(start())

    def _running(self, transaction_id: str) -> Connector | None:
        for connector in self.charger.connectors:
            transaction = connector.transaction
            if transaction is not None and transaction.transaction_id == transaction_id:
                return connector
        return None

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(self, transaction_id: str, **_: Any) -> Any:
        self._answered()
        found = self._running(transaction_id) is not None
        return call_result.RequestStopTransaction(status="Accepted" if found else "Rejected")

    @after(Action.request_stop_transaction)
    def after_request_stop_transaction(self, transaction_id: str, **_: Any) -> None:
        connector = self._running(transaction_id)
        if connector is not None:
            # F03.FR.xx: Ended with triggerReason RemoteStop, stoppedReason Remote.
            self.charger._spawn(self.charger._end(connector, "RemoteStop", "Remote"))

    # --- firmware and logs (L, N)

    @on(Action.update_firmware)
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> Any:
        self._answered()
        return call_result.UpdateFirmware(status="Accepted")

    @after(Action.update_firmware)
    def after_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> None:
        self.charger._spawn(
            self.charger._update_firmware_201(
                request_id, firmware["location"], firmware["retrieve_date_time"]
            )
        )

    @on(Action.get_log)
    def on_get_log(self, log_type: str, request_id: int, log: dict[str, Any], **_: Any) -> Any:
        """N01: AcceptedCanceled when it cancels an upload in progress."""
        self._answered()
        charger = self.charger
        busy = charger.log_status == "Uploading"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._log_file = f"{log_type}-{charger.charge_point_id}-{stamp}.log"
        return call_result.GetLog(
            status="AcceptedCanceled" if busy else "Accepted", filename=self._log_file
        )

    @after(Action.get_log)
    def after_get_log(self, request_id: int, log: dict[str, Any], **_: Any) -> None:
        self.charger._spawn(
            self.charger._upload_log(request_id, log["remote_location"], self._log_file)
        )

    # --- remote trigger (F06)

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        self._answered()
        if evse is not None and self._evses(evse) is None:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message not in _TRIGGERED:
            return call_result.TriggerMessage(status="NotImplemented")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if requested_message in _TRIGGERED and (evse is None or self._evses(evse) is not None):
            self.charger._spawn(self._triggered(requested_message, evse))

    async def _triggered(self, requested_message: str, evse: dict[str, Any] | None) -> None:
        charger = self.charger
        targets = self._evses(evse) or []
        if requested_message == "BootNotification":
            charger._boot_reason = "Triggered"
            await charger._call(charger._boot_payload())
            charger._boot_reason = "PowerUp"
        elif requested_message == "Heartbeat":
            await charger._call(ocpp_call.Heartbeat())
        elif requested_message == "StatusNotification":
            for connector in targets:
                await charger._send_status(connector)
        elif requested_message == "FirmwareStatusNotification":
            await charger._firmware_status_201(charger.firmware_status, None)
        elif requested_message == "LogStatusNotification":
            await charger._log_status(charger.log_status, None)
        elif requested_message == "MeterValues":
            for connector in targets:
                await charger._call(
                    ocpp_call.MeterValues(
                        evse_id=connector.connector_id,
                        meter_value=[charger._meter_value(connector, "Trigger")],
                    )
                )
        elif requested_message == "TransactionEvent":
            for connector in targets:
                if connector.transaction is not None:
                    await charger._event(connector, "Updated", "Trigger", context="Trigger")


_TRIGGERED = frozenset(
    {
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "FirmwareStatusNotification",
        "LogStatusNotification",
        "MeterValues",
        "TransactionEvent",
    }
)
