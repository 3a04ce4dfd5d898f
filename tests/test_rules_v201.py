"""Every OCPP 2.0.1 rule passes on a capture that meets it and fails on one that does not.

As tests/test_rules.py for 1.6: two captures built once per session with the capture builder (rows
from ConnectionRecorder on connections that negotiated ocpp2.0.1, sealed by the real writer). GOOD201
has charger CP201 going through all 16 functions the way a well-behaved 2.0.1 charger would; BAD201
has one charger per fault. Each case names a capture, a charger, a rule, the folded verdict and a
piece of the finding's detail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.engine import judged_chargers, run_rule
from ocpp_audit.analyser.rules import Rule, load_rules
from ocpp_audit.capture.schema import Direction
from tests.capture_builder import CaptureBuilder, ChargerScript, variable

RULES: dict[str, Rule] = {rule.id: rule for rule in load_rules() if rule.judges("2.0.1")}
SAMPLE_INTERVAL = 10  # SampledDataCtrlr.TxUpdatedInterval the chargers report
HEARTBEAT_INTERVAL = 600

REPORT = [
    variable("OCPPCommCtrlr", "HeartbeatInterval", str(HEARTBEAT_INTERVAL)),
    variable("SampledDataCtrlr", "TxUpdatedInterval", str(SAMPLE_INTERVAL)),
    variable("AuthCacheCtrlr", "Enabled", "true"),
    *(variable("VendorCtrlr", f"Setting{n}", str(n), "ReadOnly") for n in range(37)),
]


def online(cp: ChargerScript, evses: int = 2, *, reason: str = "PowerUp", **boot: object) -> None:
    """Connect with ocpp2.0.1, boot, and report every EVSE's connector Available."""
    cp.connect(version="2.0.1")
    cp.boot201(interval=HEARTBEAT_INTERVAL, reason=reason, **boot)  # type: ignore[arg-type]
    for evse_id in range(1, evses + 1):
        cp.status201(evse_id, 1, "Available")


def report(cp: ChargerScript, request_id: int = 1) -> None:
    """GetBaseReport(FullInventory), answered in two NotifyReport parts."""
    cp.cs("GetBaseReport", {"requestId": request_id, "reportBase": "FullInventory"},
          {"status": "Accepted"})  # fmt: skip
    cp.wait(1).notify_report(request_id, 0, REPORT[:20], tbc=True)
    cp.wait(1).notify_report(request_id, 1, REPORT[20:])


def charge(
    cp: ChargerScript,
    transaction_id: str,
    evse_id: int,
    id_token: str,
    *,
    remote_start_id: int | None = None,
    samples: int = 3,
    every: float = SAMPLE_INTERVAL,
) -> int:
    """Cable in (Occupied), Started with Transaction.Begin, Charging, periodic Updated samples;
    returns the next seqNo."""
    cp.status201(evse_id, 1, "Occupied")
    cp.wait(0.2).tx_event(
        "Started", transaction_id, 0, "RemoteStart" if remote_start_id else "Authorized",
        charging_state="EVConnected", evse_id=evse_id, id_token=id_token,
        remote_start_id=remote_start_id,
        meter_value=[cp.sample201(context="Transaction.Begin")],
    )  # fmt: skip
    cp.wait(1).tx_event("Updated", transaction_id, 1, "ChargingStateChanged",
                        charging_state="Charging", evse_id=evse_id)  # fmt: skip
    seq_no = 2
    for _ in range(samples):
        cp.wait(every).tx_event("Updated", transaction_id, seq_no, "MeterValuePeriodic",
                                evse_id=evse_id, meter_value=[cp.sample201()])  # fmt: skip
        seq_no += 1
    return seq_no


def end(
    cp: ChargerScript,
    transaction_id: str,
    evse_id: int,
    seq_no: int,
    trigger: str,
    reason: str,
    *,
    unplug: bool = True,
) -> None:
    cp.wait(2).tx_event("Ended", transaction_id, seq_no, trigger, stopped_reason=reason,
                        charging_state="EVConnected", evse_id=evse_id,
                        meter_value=[cp.sample201(context="Transaction.End")])  # fmt: skip
    if unplug:
        cp.wait(1).status201(evse_id, 1, "Available")


def firmware_update(cp: ChargerScript, request_id: int, statuses: list[str]) -> None:
    cp.cs("UpdateFirmware",
          {"requestId": request_id,
           "firmware": {"location": "https://fw.example.com/1.1.0.bin",
                        "retrieveDateTime": cp.stamp()}},
          {"status": "Accepted"})  # fmt: skip
    for status in statuses:
        cp.wait(5).cp("FirmwareStatusNotification", {"status": status, "requestId": request_id}, {})


def get_log(cp: ChargerScript, request_id: int, statuses: list[str]) -> None:
    cp.cs("GetLog",
          {"logType": "DiagnosticsLog", "requestId": request_id,
           "log": {"remoteLocation": "ftp://logs.example.com/"}},
          {"status": "Accepted", "filename": f"log-{request_id}.zip"})  # fmt: skip
    for status in statuses:
        cp.wait(3).cp("LogStatusNotification", {"status": status, "requestId": request_id}, {})


def well_behaved(cp: ChargerScript) -> None:
    """All 16 functions, as a well-behaved OCPP 2.0.1 charging station does them."""
    online(cp)
    cp.wait(5)
    report(cp)  # 4
    cp.wait(2).cs("GetVariables",
                  {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"},
                                        "variable": {"name": "HeartbeatInterval"}}]},
                  {"getVariableResult": [{"attributeStatus": "Accepted",
                                          "component": {"name": "OCPPCommCtrlr"},
                                          "variable": {"name": "HeartbeatInterval"},
                                          "attributeValue": str(HEARTBEAT_INTERVAL)}]})  # fmt: skip
    # 5: SetVariables per item
    items = [("SampledDataCtrlr", "TxUpdatedInterval", str(SAMPLE_INTERVAL)),
             ("OCPPCommCtrlr", "HeartbeatInterval", str(HEARTBEAT_INTERVAL))]  # fmt: skip
    cp.wait(2).cs(
        "SetVariables",
        {"setVariableData": [{"component": {"name": c}, "variable": {"name": v},
                              "attributeValue": value} for c, v, value in items]},
        {"setVariableResult": [{"attributeStatus": "Accepted", "component": {"name": c},
                                "variable": {"name": v}} for c, v, _ in items]},
    )  # fmt: skip
    # 3: availability of EVSE 2
    cp.wait(2).cs("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}},
                  {"status": "Accepted"})  # fmt: skip
    cp.wait(1).status201(2, 1, "Unavailable")
    cp.wait(2).cs("ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}},
                  {"status": "Accepted"})  # fmt: skip
    cp.wait(1).status201(2, 1, "Available")
    # 16: triggers
    cp.wait(2).cs("TriggerMessage",
                  {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
                  {"status": "Accepted"})  # fmt: skip
    cp.wait(0.5).status201(1, 1, "Available")
    cp.wait(2).cs("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"})
    cp.wait(0.5).heartbeat()
    # 6, 7, 8, 11: remote start and stop
    cp.wait(5).cs("RequestStartTransaction",
                  {"idToken": {"idToken": "TAG1", "type": "ISO14443"}, "remoteStartId": 42,
                   "evseId": 1},
                  {"status": "Accepted"})  # fmt: skip
    seq_no = charge(cp, "TX-1", 1, "TAG1", remote_start_id=42)
    cp.wait(2).cs("RequestStopTransaction", {"transactionId": "TX-1"}, {"status": "Accepted"})
    end(cp, "TX-1", 1, seq_no, "RemoteStop", "Remote")
    # 6, 7: local start and stop
    cp.wait(10).cp("Authorize", {"idToken": {"idToken": "TAG2", "type": "ISO14443"}},
                   {"idTokenInfo": {"status": "Accepted"}})  # fmt: skip
    seq_no = charge(cp, "TX-2", 2, "TAG2")
    end(cp, "TX-2", 2, seq_no, "StopAuthorized", "Local")
    # 10: an error with its detail, and a Faulted connector explained by a NotifyEvent
    cp.wait(5).status201(2, 1, "Faulted")
    cp.wait(0.5).cp("NotifyEvent", {
        "generatedAt": cp.stamp(), "seqNo": 0,
        "eventData": [{"eventId": 1, "timestamp": cp.stamp(), "trigger": "Alerting",
                       "actualValue": "true", "techCode": "E-RCD", "techInfo": "RCD tripped",
                       "eventNotificationType": "HardWiredNotification",
                       "component": {"name": "ConnectedEV", "evse": {"id": 2}},
                       "variable": {"name": "Problem"}}]}, {})  # fmt: skip
    cp.wait(5).status201(2, 1, "Available")
    # 15, 13
    cp.wait(2).cs("ClearCache", {}, {"status": "Accepted"})
    cp.wait(2)
    get_log(cp, 8, ["Uploading", "Uploaded"])
    cp.wait(60).heartbeat()
    # 14: a transaction runs through an offline period; its events are replayed with offline set
    cp.wait(5)
    seq_no = charge(cp, "TX-3", 1, "TAG3")
    cp.wait(1).disconnect()
    offline_s = 60
    cp.wait(offline_s)
    cp.connect()
    queued = offline_s // SAMPLE_INTERVAL
    for n in range(queued):  # sampled every 10 s while offline, delivered now, oldest first
        ago = offline_s - n * SAMPLE_INTERVAL - 2
        cp.wait(0.1).tx_event("Updated", "TX-3", seq_no, "MeterValuePeriodic", offline=True,
                              seconds_ago=ago, meter_value=[cp.sample201(seconds_ago=ago)])  # fmt: skip
        seq_no += 1
    cp.wait(SAMPLE_INTERVAL - 1).tx_event("Updated", "TX-3", seq_no, "MeterValuePeriodic",
                                          meter_value=[cp.sample201()])  # fmt: skip
    end(cp, "TX-3", 1, seq_no + 1, "StopAuthorized", "Local")
    cp.wait(5).heartbeat()
    # 9: Immediate reset
    cp.wait(5).cs("Reset", {"type": "Immediate"}, {"status": "Accepted"})
    cp.wait(1).disconnect(1000)
    cp.wait(20)
    online(cp, reason="RemoteReset")
    # 12: firmware update, with the reboot it needs
    cp.wait(5)
    firmware_update(cp, 7, ["Downloading", "Downloaded", "SignatureVerified", "InstallRebooting"])
    cp.wait(1).disconnect(1000)
    cp.wait(30)
    online(cp, reason="FirmwareUpdate", firmware="1.1.0")
    cp.wait(1).cp("FirmwareStatusNotification", {"status": "Installed", "requestId": 7}, {})
    cp.wait(60).heartbeat()
    # 2: heartbeats at the interval
    cp.heartbeats(2, HEARTBEAT_INTERVAL)
    cp.wait(10).disconnect(1000)


def good_capture(builder: CaptureBuilder) -> None:
    well_behaved(builder.charger("CP201"))
    # a LAN charger without a modem: iccid is a note
    cp = builder.charger("LAN201")
    online(cp, iccid=None)
    cp.heartbeats(2, HEARTBEAT_INTERVAL).disconnect(1000)
    # an OCPP 2.1 charger: SEND and CALLRESULTERROR are well-formed frames there
    cp = builder.charger("CP21")
    cp.connect(version="2.1")
    cp.boot201(interval=HEARTBEAT_INTERVAL)
    cp.wait(1).send(Direction.CP_TO_CS, '[6,"s1","NotifyPeriodicEventStream",'
                    '{"id":1,"pending":0,"basetime":"2024-05-01T10:00:01.000Z",'
                    '"data":[{"t":0,"v":"1"}]}]')  # fmt: skip
    cp.wait(1).disconnect(1000)


def bad_capture(builder: CaptureBuilder) -> None:
    cp = builder.charger("NOSERIAL201")
    online(cp, serial=None)
    cp = builder.charger("SLOWHB201")
    online(cp)
    cp.heartbeats(2, 800).disconnect(1000)
    cp = builder.charger("NOTRIGGERHB201")
    online(cp)
    cp.cs("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Rejected"})
    cp = builder.charger("NOUNAVAIL201")
    online(cp)
    cp.wait(2).cs("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}},
                  {"status": "Accepted"})  # fmt: skip
    cp = builder.charger("BROKENREPORT201")
    online(cp)
    cp.cs("GetBaseReport", {"requestId": 3, "reportBase": "FullInventory"}, {"status": "Accepted"})
    cp.wait(1).notify_report(3, 0, REPORT[:10], tbc=True)
    cp.wait(1).notify_report(3, 2, REPORT[10:], tbc=True)
    cp = builder.charger("SETREJECTED201")
    online(cp)
    cp.cs("SetVariables",
          {"setVariableData": [{"component": {"name": "SampledDataCtrlr"},
                                "variable": {"name": "TxUpdatedInterval"},
                                "attributeValue": "10"}]},
          {"setVariableResult": [{"attributeStatus": "Rejected",
                                  "component": {"name": "SampledDataCtrlr"},
                                  "variable": {"name": "TxUpdatedInterval"}}]})  # fmt: skip
    cp = builder.charger("NOREMOTESTART201")
    online(cp)
    cp.cs("RequestStartTransaction",
          {"idToken": {"idToken": "TAG1", "type": "ISO14443"}, "remoteStartId": 5},
          {"status": "Accepted"})  # fmt: skip
    cp.wait(120).heartbeat()
    cp = builder.charger("NOREMOTESTOP201")
    online(cp)
    seq_no = charge(cp, "TX-9", 1, "TAG1")
    cp.wait(1).cs("RequestStopTransaction", {"transactionId": "TX-9"}, {"status": "Accepted"})
    cp.wait(90).tx_event("Updated", "TX-9", seq_no, "MeterValuePeriodic",
                         meter_value=[cp.sample201()])  # fmt: skip
    cp = builder.charger("SPARSE201")
    online(cp)
    seq_no = charge(cp, "TX-5", 1, "TAG1", every=45)
    end(cp, "TX-5", 1, seq_no, "StopAuthorized", "Local")
    cp = builder.charger("RESETREASON201")
    online(cp)
    cp.wait(5).cs("Reset", {"type": "OnIdle"}, {"status": "Accepted"})
    cp.wait(1).disconnect(1000)
    cp.wait(20)
    online(cp, reason="PowerUp")
    cp = builder.charger("FAULT201")
    online(cp)
    cp.wait(5).status201(1, 1, "Faulted")
    cp = builder.charger("PLUG201")
    online(cp)
    cp.wait(5).status201(1, 1, "Occupied")
    cp.wait(60).heartbeat()
    cp = builder.charger("FW201")
    online(cp)
    firmware_update(cp, 4, ["Downloading", "DownloadFailed"])
    cp = builder.charger("LOG201")
    online(cp)
    get_log(cp, 5, ["Uploading", "UploadFailure"])
    # 14: events of the offline period lost (seqNo gap), and a queued one without the offline flag
    cp = builder.charger("LOST201")
    online(cp)
    seq_no = charge(cp, "TX-7", 1, "TAG1")
    cp.wait(1).disconnect()
    cp.wait(60)
    cp.connect()
    cp.wait(1).tx_event("Updated", "TX-7", seq_no + 3, "MeterValuePeriodic", offline=True,
                        seconds_ago=20, meter_value=[cp.sample201(seconds_ago=20)])  # fmt: skip
    end(cp, "TX-7", 1, seq_no + 4, "StopAuthorized", "Local")
    cp = builder.charger("NOFLAG201")
    online(cp)
    seq_no = charge(cp, "TX-8", 1, "TAG1")
    cp.wait(1).disconnect()
    cp.wait(60)
    cp.connect()
    cp.wait(1).tx_event("Updated", "TX-8", seq_no, "MeterValuePeriodic",
                        seconds_ago=20, meter_value=[cp.sample201(seconds_ago=20)])  # fmt: skip
    end(cp, "TX-8", 1, seq_no + 1, "StopAuthorized", "Local")
    cp = builder.charger("CACHE201")
    online(cp)
    cp.cs("ClearCache", {}, {"status": "Rejected"})
    cp = builder.charger("TRIGGER201")
    online(cp)
    cp.cs("TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Rejected"})
    # protocol: a CALLERROR sent in reply to a CALLRESULT, a SEND on a 2.0.1 connection, and a
    # 2.0.1 payload that breaks its schema (a meter value as a string)
    cp = builder.charger("PROTO201")
    online(cp)
    unique_id = cp.heartbeat()
    cp.wait(0.1).error(Direction.CP_TO_CS, unique_id, "FormatViolation", "bad currentTime")
    cp.wait(1).send(Direction.CP_TO_CS, '[6,"s1","NotifyPeriodicEventStream",{"id":1}]')
    cp.wait(1).cp("MeterValues", {"evseId": 1, "meterValue": [
        {"timestamp": cp.stamp(), "sampledValue": [{"value": "230"}]}]}, {})  # fmt: skip


CAPTURES: dict[str, Callable[[CaptureBuilder], None]] = {
    "good201": good_capture,
    "bad201": bad_capture,
}


@pytest.fixture(scope="session")
def connections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, duckdb.DuckDBPyConnection]:
    opened = {}
    for name, build in CAPTURES.items():
        builder = CaptureBuilder()
        build(builder)
        folder = tmp_path_factory.mktemp(name)
        builder.write(folder)
        opened[name] = open_capture([folder])
    yield opened
    for con in opened.values():
        con.close()


CASES: list[tuple[str, str, str, str, str]] = [
    ("good201", "LAN201", "boot-notification-v201", "PASS", "ICCID not included"),
    (
        "bad201",
        "NOSERIAL201",
        "boot-notification-v201",
        "FAIL",
        "without chargingStation.serialNumber",
    ),
    ("bad201", "SLOWHB201", "heartbeat-v201", "FAIL", "heartbeats 800 s apart"),
    (
        "bad201",
        "NOTRIGGERHB201",
        "heartbeat-v201",
        "FAIL",
        "TriggerMessage(Heartbeat) answered Rejected",
    ),
    (
        "bad201",
        "NOUNAVAIL201",
        "change-availability-v201",
        "FAIL",
        "no StatusNotification Unavailable for EVSE 1",
    ),
    ("bad201", "BROKENREPORT201", "get-configuration-v201", "FAIL", "seqNo 0, 2: not contiguous"),
    (
        "bad201",
        "SETREJECTED201",
        "change-configuration-v201",
        "FAIL",
        "SampledDataCtrlr.TxUpdatedInterval = 10: Rejected",
    ),
    (
        "bad201",
        "NOREMOTESTART201",
        "start-transaction-v201",
        "FAIL",
        "no TransactionEvent with that remoteStartId",
    ),
    (
        "bad201",
        "NOREMOTESTOP201",
        "stop-transaction-v201",
        "FAIL",
        "RequestStopTransaction TX-9 accepted, but no TransactionEvent Ended",
    ),
    ("bad201", "SPARSE201", "meter-values-v201", "FAIL", "45 s apart while Charging"),
    ("bad201", "RESETREASON201", "reset-v201", "FAIL", "reason PowerUp, not RemoteReset"),
    ("bad201", "FAULT201", "error-notifications-v201", "FAIL", "Faulted without a NotifyEvent"),
    ("bad201", "PLUG201", "cable-status-v201", "FAIL", "no TransactionEvent reports the cable"),
    ("bad201", "FW201", "firmware-update-v201", "FAIL", "Downloading -> DownloadFailed"),
    ("bad201", "LOG201", "diagnostics-v201", "FAIL", "Uploading -> UploadFailure"),
    ("bad201", "LOST201", "offline-replay-v201", "FAIL", "seqNo 5, 6, 7 never received"),
    ("bad201", "NOFLAG201", "offline-replay-v201", "FAIL", "has offline = false"),
    ("bad201", "CACHE201", "clear-cache-v201", "FAIL", "ClearCache answered Rejected"),
    (
        "bad201",
        "TRIGGER201",
        "trigger-message-v201",
        "FAIL",
        "TriggerMessage(StatusNotification) answered Rejected",
    ),
    (
        "bad201",
        "PROTO201",
        "protocol-callerror",
        "FAIL",
        "CALLERROR FormatViolation sent by the charger in reply to the CALLRESULT of Heartbeat",
    ),
    ("bad201", "PROTO201", "protocol-malformed", "FAIL", "SEND is an OCPP 2.1 message type"),
    ("bad201", "PROTO201", "protocol-schema", "FAIL", "CALL MeterValues: MeterValuesRequest"),
    ("good201", "CP21", "protocol-malformed", "PASS", "all well formed"),
    # OCPP 2.1 part 4 section 4.2.4: a SEND "does not expect a response": never unanswered
    ("good201", "CP21", "protocol-unanswered", "PASS", "1 CALLs answered"),
]
GOOD_DETAILS = {
    "boot-notification-v201": "reason PowerUp",
    "heartbeat-v201": "heartbeats, largest gap",
    "change-availability-v201": "Inoperative EVSE 2 -> StatusNotification Unavailable",
    "get-configuration-v201": "40 report entries in 2 NotifyReport part(s)",
    "change-configuration-v201": "SampledDataCtrlr.TxUpdatedInterval = 10: Accepted",
    "start-transaction-v201": "RequestStartTransaction (remoteStartId 42) TAG1 -> transaction TX-1",
    "stop-transaction-v201": "RequestStopTransaction TX-1 -> TransactionEvent Ended (Remote)",
    "meter-values-v201": "transaction TX-1: meter values at start and stop",
    "reset-v201": "Immediate reset: back online, BootNotification (RemoteReset)",
    "error-notifications-v201": "Faulted, NotifyEvent ConnectedEV.Problem E-RCD",
    "cable-status-v201": "Available -> Occupied with TransactionEvent",
    "firmware-update-v201": "rebooted (FirmwareUpdate) with firmware 1.1.0 (was 1.0.0)",
    "diagnostics-v201": "Uploading -> Uploaded (requestId 8)",
    "offline-replay-v201": "6 event(s) from the offline period replayed with offline = true",
    "clear-cache-v201": "ClearCache answered Accepted",
    "trigger-message-v201": "TriggerMessage(StatusNotification) accepted",
    "protocol-callerror": "none a CALLERROR",
    "protocol-calls-in-flight": "",
    "protocol-clock-drift": "",
    "protocol-malformed": "all well formed",
    "protocol-schema": "payloads valid",
    "protocol-unanswered": "CALLs answered",
    "protocol-unknown-answer": "each to a CALL in flight",
}
CASES += [("good201", "CP201", rule_id, "PASS", d) for rule_id, d in GOOD_DETAILS.items() if d]


def judge(con: duckdb.DuckDBPyConnection, rule_id: str, charge_point_id: str):
    return run_rule(con, RULES[rule_id], judged_chargers(con))[charge_point_id]


@pytest.mark.parametrize(
    ("capture", "charge_point_id", "rule_id", "verdict", "detail"),
    CASES,
    ids=[f"{rule}-{verdict}-{cp}" for _, cp, rule, verdict, _ in CASES],
)
def test_rule_case(
    connections: dict[str, duckdb.DuckDBPyConnection],
    capture: str,
    charge_point_id: str,
    rule_id: str,
    verdict: str,
    detail: str,
) -> None:
    result = judge(connections[capture], rule_id, charge_point_id)
    details = [finding.detail or "" for finding in result.findings]
    assert result.verdict == verdict, details
    assert any(detail in text for text in details), details


def test_well_behaved_charger_passes_every_function_without_a_failing_finding(
    connections: dict[str, duckdb.DuckDBPyConnection],
) -> None:
    results = {rule_id: judge(connections["good201"], rule_id, "CP201") for rule_id in RULES}
    failing = {
        rule_id: [f.detail for f in result.findings if f.verdict == "fail"]
        for rule_id, result in results.items()
    }
    assert {rule_id: d for rule_id, d in failing.items() if d} == {}
    functions = {r.function: results[r.id].verdict for r in RULES.values() if r.function}
    assert functions == dict.fromkeys(range(1, 17), "PASS")


def test_every_2_0_1_rule_has_a_pass_and_a_fail_case() -> None:
    covered = {(rule_id, verdict) for _, _, rule_id, verdict, _ in CASES}
    lacking = [
        f"{rule_id} lacks a {verdict} case"
        for rule_id, rule in sorted(RULES.items())
        if not rule.judges("1.6")  # the shared protocol checks have their 1.6 cases
        for verdict in ("PASS", "FAIL")
        if (rule_id, verdict) not in covered
    ]
    assert lacking == []
    assert {rule.function for rule in RULES.values()} >= set(range(1, 17))
    assert Path(RULES["reset-v201"].path).name == "09-reset-v201.sql"
