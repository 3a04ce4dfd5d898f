"""Script a charger's conversation with timestamps and write it as a real capture.

Rows come from :class:`ConnectionRecorder`, so they are exactly what an engine writes; they are sealed
into Parquet parts with the writer's ``write_rows`` (or, before the writer exists, with pyarrow and
``schema.arrow_schema()`` in the same layout). A test reads like the conversation it stands for::

    capture = CaptureBuilder()
    cp = capture.charger("CP1")
    cp.connect()
    cp.boot()                                   # BootNotification + answer (interval 60)
    cp.status(1, "Available")
    cp.wait(60).heartbeat()
    cp.cs("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"})
    paths = capture.write(tmp_path)

Each charger keeps its own clock (seconds since the builder's start); ``wait`` moves it on. Payload
timestamps default to the charger's clock, and ``clock_offset`` shifts them (a drifting clock).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

from ocpp_audit.capture import schema
from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import ClosedBy, Direction, Event

START = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)

# Time the other side takes to answer a CALL, in seconds.
ANSWER_LATENCY = 0.05


def iso(instant: dt.datetime) -> str:
    """OCPP 1.6 dateTime: ISO 8601 in UTC with a Z (the form most chargers send)."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Sink:
    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows

    def append(self, row: dict[str, object]) -> None:
        self.rows.append(row)


class ChargerScript:
    """One charger's side of a capture: connections, CALLs and answers, in time order."""

    def __init__(self, builder: CaptureBuilder, charge_point_id: str) -> None:
        self.builder = builder
        self.charge_point_id = charge_point_id
        self.t = 0.0  # seconds since START
        self.clock_offset = 0.0  # the charger's clock minus the recorder's, in seconds
        self.recorder: ConnectionRecorder | None = None
        self._ids = itertools.count(1)
        self._transaction_ids = itertools.count(1001)
        self._connections = itertools.count(1)

    # --- time ---------------------------------------------------------------------------------
    @property
    def now(self) -> dt.datetime:
        return START + dt.timedelta(seconds=self.t)

    def ts_us(self) -> int:
        return round(self.now.timestamp() * 1_000_000)

    def stamp(self, seconds_ago: float = 0.0) -> str:
        """The charger's payload timestamp now (or ``seconds_ago`` back), with its clock offset."""
        return iso(self.now + dt.timedelta(seconds=self.clock_offset - seconds_ago))

    def at(self, seconds: float) -> ChargerScript:
        self.t = float(seconds)
        return self

    def wait(self, seconds: float) -> ChargerScript:
        self.t += seconds
        return self

    # --- connections --------------------------------------------------------------------------
    def connect(self, *, path: str | None = None, version: str | None = None) -> ChargerScript:
        """Open a connection; ``version`` "2.0.1" or "2.1" negotiates that subprotocol (the
        charger's first version is kept for its later connections), else ocpp1.6."""
        self.version = version or getattr(self, "version", "1.6")
        connection_id = f"{self.charge_point_id}-c{next(self._connections)}"
        self.recorder = ConnectionRecorder(
            _Sink(self.builder.rows), self.charge_point_id, connection_id=connection_id
        )
        self.recorder.opened(
            path=path or f"/ocpp/{self.charge_point_id}",
            subprotocols_offered=[f"ocpp{self.version}"],
            subprotocol=f"ocpp{self.version}",
            remote_address="127.0.0.1:50000",
            ts=self.ts_us(),
        )
        return self

    def disconnect(
        self, code: int = 1006, reason: str | None = None, closed_by: ClosedBy = ClosedBy.CHARGER
    ) -> ChargerScript:
        recorder = self._connected()
        recorder.closed(code, reason, closed_by)
        self.builder.rows[-1]["ts"] = self.ts_us()
        self.recorder = None
        return self

    def upload(
        self, file_name: str, size: int, content: dict[str, Any] | None = None
    ) -> ChargerScript:
        """A diagnostics file arrived on the built-in endpoint (an ``upload`` event); ``content``
        is what the endpoint read in it (recorder/diagnostics_file.describe)."""
        recorder = self._connected()
        detail: dict[str, Any] = {"file_name": file_name, "size": size}
        if content is not None:
            detail["content"] = content
        recorder.event(Event.UPLOAD, detail)
        self.builder.rows[-1]["ts"] = self.ts_us()
        return self

    def _connected(self) -> ConnectionRecorder:
        if self.recorder is None:
            raise RuntimeError(f"{self.charge_point_id} is not connected: call connect() first")
        return self.recorder

    # --- frames -------------------------------------------------------------------------------
    def send(self, direction: Direction, text: str | bytes) -> ChargerScript:
        """One raw frame, exactly as given (malformed ones too)."""
        self._connected().message(direction, text, ts=self.ts_us())
        return self

    def new_id(self) -> str:
        return f"{self.charge_point_id}-{next(self._ids)}"

    def call(
        self,
        direction: Direction,
        action: str,
        payload: dict[str, Any],
        unique_id: str | None = None,
    ) -> str:
        unique_id = unique_id or self.new_id()
        self.send(direction, json.dumps([2, unique_id, action, payload]))
        return unique_id

    def result(
        self, direction: Direction, unique_id: str, payload: dict[str, Any]
    ) -> ChargerScript:
        return self.send(direction, json.dumps([3, unique_id, payload]))

    def error(
        self,
        direction: Direction,
        unique_id: str,
        error_code: str = "NotImplemented",
        description: str = "",
    ) -> ChargerScript:
        return self.send(direction, json.dumps([4, unique_id, error_code, description, {}]))

    def _exchange(
        self,
        direction: Direction,
        action: str,
        payload: dict[str, Any],
        answer: dict[str, Any] | str | None,
    ) -> str:
        unique_id = self.call(direction, action, payload)
        if answer is not None:
            self.wait(ANSWER_LATENCY)
            back = Direction.CS_TO_CP if direction is Direction.CP_TO_CS else Direction.CP_TO_CS
            if isinstance(answer, str):  # a CALLERROR code
                self.error(back, unique_id, answer)
            else:
                self.result(back, unique_id, answer)
        return unique_id

    def cp(
        self, action: str, payload: dict[str, Any], answer: dict[str, Any] | str | None = None
    ) -> str:
        """A charger CALL and the backend's answer (a dict, a CALLERROR code, or None: unanswered)."""
        return self._exchange(Direction.CP_TO_CS, action, payload, answer)

    def cs(
        self, action: str, payload: dict[str, Any], answer: dict[str, Any] | str | None = None
    ) -> str:
        """A backend CALL and the charger's answer (a dict, a CALLERROR code, or None)."""
        return self._exchange(Direction.CS_TO_CP, action, payload, answer)

    # --- the charger's usual messages ---------------------------------------------------------
    def boot(
        self,
        *,
        vendor: str = "ACME",
        model: str = "Wallbox 22",
        serial: str | None = "SN-0001",
        firmware: str | None = "1.0.0",
        iccid: str | None = "8931440400012345678",
        interval: int = 60,
        status: str = "Accepted",
        payload: dict[str, Any] | None = None,
    ) -> str:
        if payload is None:
            payload = {"chargePointVendor": vendor, "chargePointModel": model}
            optional = {
                "chargePointSerialNumber": serial,
                "firmwareVersion": firmware,
                "iccid": iccid,
            }
            payload.update({key: value for key, value in optional.items() if value is not None})
        return self.cp(
            "BootNotification",
            payload,
            {"status": status, "currentTime": iso(self.now), "interval": interval},
        )

    def heartbeat(self) -> str:
        return self.cp("Heartbeat", {}, {"currentTime": iso(self.now)})

    def heartbeats(self, count: int, every: float) -> ChargerScript:
        for _ in range(count):
            self.wait(every)
            self.heartbeat()
        return self

    def status(
        self,
        connector_id: int,
        status: str,
        error_code: str = "NoError",
        *,
        info: str | None = None,
        vendor_error_code: str | None = None,
        seconds_ago: float = 0.0,
    ) -> str:
        payload: dict[str, Any] = {
            "connectorId": connector_id,
            "errorCode": error_code,
            "status": status,
            "timestamp": self.stamp(seconds_ago),
        }
        if info is not None:
            payload["info"] = info
        if vendor_error_code is not None:
            payload["vendorErrorCode"] = vendor_error_code
        return self.cp("StatusNotification", payload, {})

    def authorize(self, id_tag: str, status: str = "Accepted") -> str:
        return self.cp("Authorize", {"idTag": id_tag}, {"idTagInfo": {"status": status}})

    def start_transaction(
        self,
        connector_id: int = 1,
        id_tag: str = "TAG1",
        meter_start: int = 1000,
        *,
        transaction_id: int | None = None,
        seconds_ago: float = 0.0,
        answer: bool = True,
    ) -> int:
        """StartTransaction and its answer; returns the transactionId the backend gave."""
        transaction_id = transaction_id or next(self._transaction_ids)
        self.cp(
            "StartTransaction",
            {
                "connectorId": connector_id,
                "idTag": id_tag,
                "meterStart": meter_start,
                "timestamp": self.stamp(seconds_ago),
            },
            {"idTagInfo": {"status": "Accepted"}, "transactionId": transaction_id}
            if answer
            else None,
        )
        return transaction_id

    def stop_transaction(
        self,
        transaction_id: int,
        meter_stop: int = 2000,
        reason: str | None = "Local",
        *,
        id_tag: str | None = "TAG1",
        seconds_ago: float = 0.0,
        transaction_data: list[dict[str, Any]] | None = None,
    ) -> str:
        payload: dict[str, Any] = {
            "transactionId": transaction_id,
            "meterStop": meter_stop,
            "timestamp": self.stamp(seconds_ago),
        }
        if reason is not None:
            payload["reason"] = reason
        if id_tag is not None:
            payload["idTag"] = id_tag
        if transaction_data is not None:
            payload["transactionData"] = transaction_data
        return self.cp("StopTransaction", payload, {"idTagInfo": {"status": "Accepted"}})

    def sample(
        self,
        *,
        context: str | None = "Sample.Periodic",
        measurands: dict[str, str] | None = None,
        seconds_ago: float = 0.0,
    ) -> dict[str, Any]:
        """One meterValue element (timestamp + sampledValue list)."""
        if measurands is None:
            measurands = {
                "Energy.Active.Import.Register": "1500",
                "Power.Active.Import": "7400",
                "Current.Import": "32",
                "Voltage": "230",
            }
        sampled = []
        for measurand, value in measurands.items():
            item: dict[str, Any] = {"value": value, "measurand": measurand}
            if context is not None:
                item["context"] = context
            sampled.append(item)
        return {"timestamp": self.stamp(seconds_ago), "sampledValue": sampled}

    def meter_values(
        self,
        transaction_id: int | None,
        connector_id: int = 1,
        *,
        context: str | None = "Sample.Periodic",
        measurands: dict[str, str] | None = None,
        seconds_ago: float = 0.0,
        meter_value: list[dict[str, Any]] | None = None,
    ) -> str:
        payload: dict[str, Any] = {"connectorId": connector_id}
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        payload["meterValue"] = meter_value or [
            self.sample(context=context, measurands=measurands, seconds_ago=seconds_ago)
        ]
        return self.cp("MeterValues", payload, {})

    # --- OCPP 2.0.1 (connect(version="2.0.1") first) --------------------------------------------
    def boot201(
        self,
        *,
        vendor: str = "ACME",
        model: str = "Wallbox 22",
        serial: str | None = "SN-0001",
        firmware: str | None = "1.0.0",
        iccid: str | None = "8931440400012345678",
        reason: str = "PowerUp",
        interval: int = 60,
        status: str = "Accepted",
    ) -> str:
        """BootNotificationRequest {chargingStation{...}, reason} and its answer."""
        station: dict[str, Any] = {"model": model, "vendorName": vendor}
        if serial is not None:
            station["serialNumber"] = serial
        if firmware is not None:
            station["firmwareVersion"] = firmware
        if iccid is not None:
            station["modem"] = {"iccid": iccid}
        return self.cp(
            "BootNotification",
            {"chargingStation": station, "reason": reason},
            {"status": status, "currentTime": iso(self.now), "interval": interval},
        )

    def status201(
        self, evse_id: int, connector_id: int, status: str, *, seconds_ago: float = 0.0
    ) -> str:
        return self.cp(
            "StatusNotification",
            {
                "timestamp": self.stamp(seconds_ago),
                "connectorStatus": status,
                "evseId": evse_id,
                "connectorId": connector_id,
            },
            {},
        )

    def sample201(
        self,
        *,
        context: str = "Sample.Periodic",
        measurands: dict[str, float] | None = None,
        seconds_ago: float = 0.0,
    ) -> dict[str, Any]:
        """One 2.0.1 meterValue element: values are numbers, units in unitOfMeasure."""
        if measurands is None:
            measurands = {
                "Energy.Active.Import.Register": 1500.0,
                "Power.Active.Import": 7400.0,
                "Current.Import": 32.0,
                "Voltage": 230.0,
            }
        units = {"Energy.Active.Import.Register": "Wh", "Power.Active.Import": "W"}
        sampled = []
        for measurand, value in measurands.items():
            item: dict[str, Any] = {"value": value, "measurand": measurand, "context": context}
            if measurand in units:
                item["unitOfMeasure"] = {"unit": units[measurand]}
            sampled.append(item)
        return {"timestamp": self.stamp(seconds_ago), "sampledValue": sampled}

    def tx_event(
        self,
        event_type: str,
        transaction_id: str,
        seq_no: int,
        trigger_reason: str,
        *,
        charging_state: str | None = None,
        stopped_reason: str | None = None,
        remote_start_id: int | None = None,
        evse_id: int | None = 1,
        connector_id: int | None = 1,
        id_token: str | None = None,
        offline: bool | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        seconds_ago: float = 0.0,
        answer: bool = True,
    ) -> str:
        """TransactionEventRequest with its transactionInfo, and the backend's answer."""
        info: dict[str, Any] = {"transactionId": transaction_id}
        if charging_state is not None:
            info["chargingState"] = charging_state
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        if remote_start_id is not None:
            info["remoteStartId"] = remote_start_id
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": self.stamp(seconds_ago),
            "triggerReason": trigger_reason,
            "seqNo": seq_no,
            "transactionInfo": info,
        }
        if offline is not None:
            payload["offline"] = offline
        if evse_id is not None:
            payload["evse"] = {"id": evse_id}
            if connector_id is not None:
                payload["evse"]["connectorId"] = connector_id
        if id_token is not None:
            payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
        if meter_value is not None:
            payload["meterValue"] = meter_value
        back: dict[str, Any] | None = None
        if answer:
            back = {"idTokenInfo": {"status": "Accepted"}} if id_token is not None else {}
        return self.cp("TransactionEvent", payload, back)

    def notify_report(
        self, request_id: int, seq_no: int, report_data: list[dict[str, Any]], tbc: bool = False
    ) -> str:
        payload: dict[str, Any] = {
            "requestId": request_id,
            "generatedAt": self.stamp(),
            "seqNo": seq_no,
            "reportData": report_data,
        }
        if tbc:
            payload["tbc"] = True
        return self.cp("NotifyReport", payload, {})


def variable(
    component: str, name: str, value: str, mutability: str = "ReadWrite"
) -> dict[str, Any]:
    """One NotifyReport reportData entry (OCPP 2.0.1 ReportDataType)."""
    return {
        "component": {"name": component},
        "variable": {"name": name},
        "variableAttribute": [{"type": "Actual", "value": value, "mutability": mutability}],
        "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False},
    }


class CaptureBuilder:
    """Rows of one capture, from one or more scripted chargers."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.chargers: dict[str, ChargerScript] = {}

    def charger(self, charge_point_id: str) -> ChargerScript:
        if charge_point_id not in self.chargers:
            self.chargers[charge_point_id] = ChargerScript(self, charge_point_id)
        return self.chargers[charge_point_id]

    def sorted_rows(self) -> list[dict[str, object]]:
        return sorted(self.rows, key=lambda row: (row["ts"], row["connection_id"], row["seq"]))

    def write(self, capture_dir: Path) -> list[Path]:
        """Seal the rows into Parquet parts under ``capture_dir``; returns the parts."""
        rows = self.sorted_rows()
        try:
            from ocpp_audit.capture.writer import write_rows
        except ImportError:
            return _write_with_pyarrow(rows, capture_dir)
        return write_rows(rows, capture_dir)


def _write_with_pyarrow(rows: list[dict[str, object]], capture_dir: Path) -> list[Path]:
    """The writer's layout, for as long as ``write_rows`` is not there."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_schema = schema.arrow_schema()
    by_date: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        full = schema.empty_row()
        full.update(row)
        day = dt.datetime.fromtimestamp(int(row["ts"]) / 1e6, dt.UTC).date().isoformat()  # type: ignore[arg-type]
        by_date.setdefault(day, []).append(full)
    parts = []
    for day, day_rows in sorted(by_date.items()):
        folder = capture_dir / schema.FRAMES_DIR / f"{schema.PARTITION_KEY}={day}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(day_rows, schema=arrow_schema)
        path = folder / "part-test-0.parquet"
        pq.write_table(table, path, compression="zstd")
        parts.append(path)
    return parts
