"""Every rule in rules/ passes on a capture that meets it and fails on one that does not.

Two captures are built once per session with the capture builder (rows from ConnectionRecorder,
sealed by the real writer): GOOD, where charger CP1 goes through all 16 functions of the acceptance
script as a well-behaved charger would (plus a few chargers for other passing variants), and BAD,
with one charger per fault. Each case names a capture, a charger, a rule, the folded verdict and a
piece of the finding's detail; the meta-test fails if a rule lacks a PASS or a FAIL case.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.engine import judged_chargers, run_rule
from ocpp_audit.analyser.rules import Rule, function_titles, load_rules
from ocpp_audit.capture.schema import Direction
from tests.capture_builder import CaptureBuilder, ChargerScript

# The rules that judge 1.6 chargers (the OCPP 2.0.1 ones: tests/test_rules_v201.py).
RULES: dict[str, Rule] = {rule.id: rule for rule in load_rules() if rule.judges("1.6")}

SAMPLE_INTERVAL = 10  # MeterValueSampleInterval the chargers report
HEARTBEAT_INTERVAL = 600

CONFIGURATION_KEYS = [
    {"key": "HeartbeatInterval", "value": str(HEARTBEAT_INTERVAL), "readonly": False},
    {"key": "MeterValueSampleInterval", "value": str(SAMPLE_INTERVAL), "readonly": False},
    *({"key": f"VendorKey{n}", "value": str(n), "readonly": True} for n in range(74)),
]


def online(cp: ChargerScript, connectors: int = 2, **boot: object) -> ChargerScript:
    """Connect, boot, and report every connector (0 = the charge point) Available."""
    cp.connect()
    cp.boot(interval=HEARTBEAT_INTERVAL, **boot)  # type: ignore[arg-type]
    for connector_id in range(connectors + 1):
        cp.status(connector_id, "Available")
    return cp


def configure(cp: ChargerScript) -> None:
    cp.cs("GetConfiguration", {}, {"configurationKey": CONFIGURATION_KEYS})


def charge(
    cp: ChargerScript,
    connector_id: int,
    id_tag: str,
    *,
    samples: int = 3,
    every: float = SAMPLE_INTERVAL,
    measurands: dict[str, str] | None = None,
    begin: bool = True,
) -> int:
    """StartTransaction, Transaction.Begin, Charging, periodic samples; returns the transactionId."""
    transaction_id = cp.start_transaction(connector_id, id_tag)
    if begin:
        cp.meter_values(transaction_id, connector_id, context="Transaction.Begin")
    cp.status(connector_id, "Charging")
    for _ in range(samples):
        cp.wait(every)
        cp.meter_values(transaction_id, connector_id, measurands=measurands)
    return transaction_id


def stop(cp: ChargerScript, transaction_id: int, connector_id: int, reason: str) -> None:
    cp.wait(1)
    cp.stop_transaction(
        transaction_id, reason=reason, transaction_data=[cp.sample(context="Transaction.End")]
    )
    cp.status(connector_id, "Finishing")
    cp.wait(2)
    cp.status(connector_id, "Available")


def well_behaved(cp: ChargerScript) -> None:
    """All 16 functions of the acceptance script, as a well-behaved charger answers them."""
    online(cp)
    # 16: TriggerMessage(StatusNotification) after boot
    cp.wait(1)
    cp.cs("TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Accepted"})
    cp.status(0, "Available")
    # 2: heartbeats, and a triggered one
    cp.heartbeats(2, 60)
    cp.wait(5)
    cp.cs("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"})
    cp.heartbeat()
    # 4, 5: configuration
    configure(cp)
    cp.cs(
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": str(HEARTBEAT_INTERVAL)},
        {"status": "Accepted"},
    )
    # 3: availability
    cp.cs("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"})
    cp.status(1, "Unavailable")
    cp.cs("ChangeAvailability", {"connectorId": 1, "type": "Operative"}, {"status": "Accepted"})
    cp.status(1, "Available")
    cp.heartbeat()
    # 6, 7, 8, 11: remote start and stop
    cp.wait(2).status(1, "Preparing")
    cp.cs("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1}, {"status": "Accepted"})
    remote = charge(cp, 1, "TAG1")
    cp.cs("RemoteStopTransaction", {"transactionId": remote}, {"status": "Accepted"})
    stop(cp, remote, 1, "Remote")
    cp.heartbeat()
    # local start (Authorize) and stop; a card that is not approved starts nothing
    cp.wait(2).status(2, "Preparing")
    cp.authorize("TAG2")
    local = charge(cp, 2, "TAG2")
    cp.authorize("TAG2")  # the same card again: a stop request
    stop(cp, local, 2, "Local")
    cp.wait(2).authorize("BLOCKED", "Blocked")
    cp.heartbeat()
    # cable pulled: EVDisconnected
    cp.wait(2).status(1, "Preparing")
    cp.authorize("TAG3")
    unplugged = charge(cp, 1, "TAG3")
    stop(cp, unplugged, 1, "EVDisconnected")
    # 11: a plug-in without a start times out to Available
    cp.wait(2).status(2, "Preparing")
    cp.wait(60).status(2, "Available")
    cp.heartbeat()
    # 10: errors, on a connector and on the charge point itself
    cp.wait(5).status(1, "Faulted", "GroundFailure", info="RCD tripped")
    cp.wait(5).status(1, "Available")
    cp.status(0, "Available", "OtherError", vendor_error_code="E42", info="fan")
    cp.status(0, "Available")
    # 15: clear cache
    cp.cs("ClearCache", {}, {"status": "Accepted"})
    # 13: diagnostics, with the file arriving on the built-in endpoint
    cp.cs("GetDiagnostics", {"location": "ftp://127.0.0.1/"}, {"fileName": "diag.zip"})
    cp.wait(1).cp("DiagnosticsStatusNotification", {"status": "Uploading"}, {})
    cp.wait(3).upload("diag.zip", 2048)
    cp.cp("DiagnosticsStatusNotification", {"status": "Uploaded"}, {})
    cp.heartbeat()
    # 14: offline with a transaction running; the queue is replayed in order
    cp.wait(2).status(1, "Preparing")
    cp.authorize("TAG4")
    offline = charge(cp, 1, "TAG4", samples=1)
    cp.wait(2).disconnect(1006)
    cp.wait(60).connect()
    for seconds_ago in range(55, 0, -SAMPLE_INTERVAL):
        cp.meter_values(offline, 1, seconds_ago=seconds_ago)
    cp.stop_transaction(
        offline,
        reason="Local",
        seconds_ago=1,
        transaction_data=[cp.sample(context="Transaction.End", seconds_ago=1)],
    )
    cp.status(1, "Finishing")
    cp.wait(2).status(1, "Available")
    cp.heartbeat()
    # 9: hard and soft reset
    for reset_type in ("Hard", "Soft"):
        cp.wait(5).cs("Reset", {"type": reset_type}, {"status": "Accepted"})
        cp.wait(1).disconnect(1006)
        cp.wait(20)
        online(cp)
    # 12: firmware update, reboot with the new version
    cp.wait(5).cs(
        "UpdateFirmware", {"location": "ftp://127.0.0.1/fw.bin", "retrieveDate": cp.stamp()}, {}
    )
    for status in ("Downloading", "Downloaded", "Installing"):
        cp.wait(3).cp("FirmwareStatusNotification", {"status": status}, {})
    cp.wait(1).disconnect(1006)
    cp.wait(30)
    online(cp, firmware="1.1.0")
    cp.cp("FirmwareStatusNotification", {"status": "Installed"}, {})
    cp.heartbeat()
    cp.wait(HEARTBEAT_INTERVAL).heartbeat()


def good_capture(builder: CaptureBuilder) -> None:
    well_behaved(builder.charger("CP1"))
    # A LAN charger: no iccid is a note, not a failure.
    online(builder.charger("LAN1"), iccid=None)
    # Heartbeats at the interval a ChangeConfiguration set.
    cp = online(builder.charger("HB30"))
    cp.cs(
        "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}, {"status": "Accepted"}
    )
    cp.heartbeats(4, 30)
    # ChangeAvailability for a connector that is already in the asked state.
    cp = online(builder.charger("AVAIL"))
    cp.cs("ChangeAvailability", {"connectorId": 1, "type": "Operative"}, {"status": "Accepted"})


def bad_capture(builder: CaptureBuilder) -> None:
    online(builder.charger("NOSERIAL"), serial=None)
    cp = builder.charger("EMPTYBOOT").connect()
    cp.boot(payload={})

    cp = online(builder.charger("SLOWHB"))
    cp.cs(
        "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}, {"status": "Accepted"}
    )
    cp.heartbeats(3, 90)
    cp = online(builder.charger("NOTRIGGERHB"))
    cp.cs("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Rejected"})

    cp = online(builder.charger("NOUNAVAIL"))
    cp.cs("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"})
    cp.wait(120).heartbeat()
    cp = builder.charger("NOCONN0").connect()
    cp.boot()
    cp.status(1, "Available")
    cp = online(builder.charger("FAULTNOERR"))
    cp.status(1, "Faulted")

    cp = online(builder.charger("EMPTYCONF"))
    cp.cs("GetConfiguration", {}, {"configurationKey": []})
    cp = online(builder.charger("CONFERR"))
    cp.cs("GetConfiguration", {}, "NotImplemented")

    cp = online(builder.charger("NOCHANGE"))
    cp.cs(
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "30"},
        {"status": "NotSupported"},
    )

    cp = online(builder.charger("NOREMOTESTART"))
    cp.cs("RemoteStartTransaction", {"idTag": "TAG1"}, {"status": "Accepted"})
    cp.wait(120).heartbeat()
    cp = online(builder.charger("STARTSBLOCKED"))
    cp.status(1, "Preparing")
    cp.authorize("BLOCKED", "Invalid")
    cp.start_transaction(1, "BLOCKED")
    cp.status(1, "Charging")

    cp = online(builder.charger("NOREMOTESTOP"))
    configure(cp)
    cp.status(1, "Preparing")
    transaction_id = charge(cp, 1, "TAG1")
    cp.cs("RemoteStopTransaction", {"transactionId": transaction_id}, {"status": "Accepted"})
    cp.wait(120).heartbeat()
    cp = online(builder.charger("UNPLUGNOSTOP"))
    cp.status(1, "Preparing")
    charge(cp, 1, "TAG1")
    cp.wait(5).status(1, "Available")

    cp = online(builder.charger("SPARSEMV"))
    configure(cp)
    cp.status(1, "Preparing")
    transaction_id = charge(cp, 1, "TAG1", every=45)
    stop(cp, transaction_id, 1, "Local")
    cp = online(builder.charger("NOVOLTAGE"))
    cp.status(1, "Preparing")
    transaction_id = charge(cp, 1, "TAG1", measurands={"Energy.Active.Import.Register": "2e+01"})
    stop(cp, transaction_id, 1, "Local")
    cp = online(builder.charger("NOBEGIN"))
    cp.status(1, "Preparing")
    transaction_id = charge(cp, 1, "TAG1", begin=False)
    stop(cp, transaction_id, 1, "Local")

    cp = online(builder.charger("NORESET"))
    cp.cs("Reset", {"type": "Hard"}, {"status": "Accepted"})
    cp.wait(400).heartbeat()
    cp = online(builder.charger("RESETREJECTED"))
    cp.cs("Reset", {"type": "Soft"}, {"status": "Rejected"})

    cp = online(builder.charger("OTHERERROR"))
    cp.status(1, "Faulted", "OtherError")

    cp = online(builder.charger("BADTRANSITION"))
    cp.status(1, "Finishing")
    cp = online(builder.charger("STUCKPREPARING"))
    cp.status(1, "Preparing")
    cp.wait(400).heartbeat()

    cp = online(builder.charger("SAMEFIRMWARE"))
    cp.cs("UpdateFirmware", {"location": "ftp://x/fw.bin", "retrieveDate": cp.stamp()}, {})
    for status in ("Downloading", "Installed"):
        cp.wait(3).cp("FirmwareStatusNotification", {"status": status}, {})
    cp.disconnect()
    cp.wait(10)
    online(cp)
    cp = online(builder.charger("DOWNLOADFAILED"))
    cp.cs("UpdateFirmware", {"location": "ftp://x/fw.bin", "retrieveDate": cp.stamp()}, {})
    for status in ("Downloading", "DownloadFailed"):
        cp.wait(3).cp("FirmwareStatusNotification", {"status": status}, {})

    cp = online(builder.charger("UPLOADFAILED"))
    cp.cs("GetDiagnostics", {"location": "ftp://x/"}, {"fileName": "diag.zip"})
    for status in ("Uploading", "UploadFailed"):
        cp.wait(3).cp("DiagnosticsStatusNotification", {"status": status}, {})
    cp = online(builder.charger("NODIAGFILE"))
    cp.cs("GetDiagnostics", {"location": "ftp://x/"}, {})

    for name, replay_meter_values, in_order in (
        ("DROPSQUEUE", False, True),
        ("OUTOFORDER", True, False),
    ):
        cp = online(builder.charger(name))
        configure(cp)
        cp.status(1, "Preparing")
        transaction_id = charge(cp, 1, "TAG1", samples=1)
        cp.wait(2).disconnect()
        cp.wait(60).connect()
        stop_payload = {"seconds_ago": 1, "reason": "Local"}
        if not in_order:
            cp.stop_transaction(transaction_id, **stop_payload)  # type: ignore[arg-type]
        if replay_meter_values:
            for seconds_ago in range(55, 0, -SAMPLE_INTERVAL):
                cp.meter_values(transaction_id, 1, seconds_ago=seconds_ago)
        if in_order:
            cp.stop_transaction(transaction_id, **stop_payload)  # type: ignore[arg-type]

    cp = online(builder.charger("CACHEREJECTED"))
    cp.cs("ClearCache", {}, {"status": "Rejected"})

    cp = online(builder.charger("NOTRIGGERSTATUS"))
    cp.cs("TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Accepted"})
    cp.wait(60).heartbeat()

    cp = online(builder.charger("BADSCHEMA"))
    cp.cp("StatusNotification", {"connectorId": 1, "status": "Available"}, {})
    cp = online(builder.charger("UNANSWERED"))
    cp.cs("GetConfiguration", {}, None)
    cp.wait(60).heartbeat()
    cp = online(builder.charger("CALLERROR"))
    cp.cs("DataTransfer", {"vendorId": "x"}, "NotImplemented")
    cp = online(builder.charger("TWOINFLIGHT"))
    first = cp.call(Direction.CP_TO_CS, "Heartbeat", {})
    second = cp.call(Direction.CP_TO_CS, "Heartbeat", {})
    cp.result(Direction.CS_TO_CP, first, {"currentTime": cp.stamp()})
    cp.result(Direction.CS_TO_CP, second, {"currentTime": cp.stamp()})
    cp = online(builder.charger("ORPHAN"))
    cp.result(Direction.CP_TO_CS, "never-asked", {"status": "Accepted"})
    cp = online(builder.charger("MALFORMED"))
    cp.send(Direction.CP_TO_CS, '[2,"1","Heartbeat"')
    cp = online(builder.charger("UNKNOWNTX"))
    cp.meter_values(999)
    cp = builder.charger("DRIFT")
    cp.clock_offset = -300
    online(cp)


CAPTURES: dict[str, Callable[[CaptureBuilder], None]] = {"good": good_capture, "bad": bad_capture}


@pytest.fixture(scope="session")
def connections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, duckdb.DuckDBPyConnection]:
    opened = {}
    for name, build in CAPTURES.items():
        builder = CaptureBuilder()
        build(builder)
        folder = tmp_path_factory.mktemp(name)
        builder.write(folder)
        opened[name] = open_capture([Path(folder)])
    yield opened
    for con in opened.values():
        con.close()


# (capture, charger, rule id, folded verdict, a piece of the detail of some finding)
CASES: list[tuple[str, str, str, str, str]] = [
    ("good", "LAN1", "boot-notification", "PASS", "ICCID not included"),
    ("bad", "NOSERIAL", "boot-notification", "FAIL", "without chargePointSerialNumber"),
    ("bad", "EMPTYBOOT", "boot-notification", "FAIL", "empty BootNotification"),
    ("good", "HB30", "heartbeat", "PASS", "largest gap 30 s"),
    ("bad", "SLOWHB", "heartbeat", "FAIL", "heartbeats 90 s apart"),
    ("bad", "NOTRIGGERHB", "heartbeat", "FAIL", "TriggerMessage(Heartbeat) answered Rejected"),
    ("good", "AVAIL", "change-availability", "PASS", "already Available"),
    ("bad", "NOUNAVAIL", "change-availability", "FAIL", "no StatusNotification Unavailable"),
    ("bad", "NOCONN0", "change-availability", "FAIL", "no StatusNotification for connector 0"),
    ("bad", "FAULTNOERR", "change-availability", "FAIL", "Faulted with errorCode NoError"),
    ("bad", "EMPTYCONF", "get-configuration", "FAIL", "without any configurationKey"),
    ("bad", "CONFERR", "get-configuration", "FAIL", "answered NotImplemented"),
    ("good", "HB30", "change-configuration", "PASS", "shows in the cadence"),
    ("bad", "NOCHANGE", "change-configuration", "FAIL", "HeartbeatInterval = 30: NotSupported"),
    ("bad", "NOREMOTESTART", "start-transaction", "FAIL", "but no StartTransaction"),
    ("bad", "STARTSBLOCKED", "start-transaction", "FAIL", "yet a StartTransaction followed"),
    ("bad", "NOREMOTESTOP", "stop-transaction", "FAIL", "but no StopTransaction within 60 s"),
    ("bad", "UNPLUGNOSTOP", "stop-transaction", "FAIL", "has no StopTransaction"),
    ("bad", "SPARSEMV", "meter-values", "FAIL", "45 s apart while Charging"),
    ("bad", "SPARSEMV", "meter-values", "FAIL", "MeterValueSampleInterval is 10 s"),
    ("bad", "NOVOLTAGE", "meter-values", "FAIL", "Voltage"),
    ("bad", "NOBEGIN", "meter-values", "FAIL", "no meter value at start"),
    ("bad", "NORESET", "reset", "FAIL", "no BootNotification within 300 s"),
    ("bad", "RESETREJECTED", "reset", "FAIL", "Soft Reset answered Rejected"),
    ("bad", "OTHERERROR", "error-notifications", "FAIL", "OtherError without info"),
    ("bad", "FAULTNOERR", "error-notifications", "FAIL", "Faulted without an errorCode"),
    (
        "bad",
        "BADTRANSITION",
        "cable-status",
        "FAIL",
        "Available -> Finishing is not an allowed transition",
    ),
    ("bad", "STUCKPREPARING", "cable-status", "FAIL", "stayed Preparing"),
    ("bad", "SAMEFIRMWARE", "firmware-update", "FAIL", "firmwareVersion is still 1.0.0"),
    ("bad", "DOWNLOADFAILED", "firmware-update", "FAIL", "DownloadFailed"),
    ("bad", "UPLOADFAILED", "diagnostics", "FAIL", "upload failed"),
    ("bad", "NODIAGFILE", "diagnostics", "FAIL", "without a fileName"),
    (
        "bad",
        "DROPSQUEUE",
        "offline-replay",
        "FAIL",
        "start and stop received, meter values not received",
    ),
    ("bad", "OUTOFORDER", "offline-replay", "FAIL", "not in chronological order"),
    ("bad", "CACHEREJECTED", "clear-cache", "FAIL", "ClearCache answered Rejected"),
    ("bad", "NOTRIGGERSTATUS", "trigger-message", "FAIL", "no StatusNotification within 30 s"),
    ("bad", "BADSCHEMA", "protocol-schema", "FAIL", "'errorCode' is a required property"),
    ("bad", "UNANSWERED", "protocol-unanswered", "FAIL", "GetConfiguration (backend to charger)"),
    ("bad", "CALLERROR", "protocol-callerror", "FAIL", "DataTransfer answered NotImplemented"),
    ("bad", "TWOINFLIGHT", "protocol-calls-in-flight", "FAIL", "earlier CALL (Heartbeat)"),
    ("bad", "ORPHAN", "protocol-unknown-answer", "FAIL", "never-asked"),
    ("bad", "MALFORMED", "protocol-malformed", "FAIL", "malformed frame"),
    ("bad", "UNKNOWNTX", "protocol-unknown-transaction", "FAIL", "unknown transaction 999"),
    ("bad", "DRIFT", "protocol-clock-drift", "FAIL", "300.0 s behind"),
]

# The well-behaved charger passes every rule; the detail shows what it was judged on.
GOOD_DETAILS: dict[str, str] = {
    "boot-notification": "vendor ACME, model Wallbox 22",
    "heartbeat": "Heartbeat 0.1 s after TriggerMessage(Heartbeat)",
    "change-availability": "Inoperative -> StatusNotification Unavailable",
    "get-configuration": "76 keys",
    "change-configuration": "HeartbeatInterval = 600: Accepted",
    "start-transaction": "Authorize BLOCKED Blocked: no StartTransaction (sequence stopped)",
    "stop-transaction": "stopped (EVDisconnected)",
    "meter-values": "Voltage, Current.Import and Power.Active.Import present",
    "reset": "Hard reset: back online",
    "error-notifications": "the charge point itself: OtherError",
    "cable-status": "Preparing timed out to Available",
    "firmware-update": "rebooted with firmware 1.1.0 (was 1.0.0)",
    "diagnostics": "file diag.zip arrived (2048 bytes)",
    "offline-replay": "start and stop received, meter values received (7 samples in the gap, 5 expected)",
    "clear-cache": "ClearCache answered Accepted",
    "trigger-message": "accepted, StatusNotification received",
    "protocol-schema": "payloads valid",
    "protocol-unanswered": "CALLs answered",
    "protocol-callerror": "none a CALLERROR",
    "protocol-calls-in-flight": "one at a time",
    "protocol-unknown-answer": "each to a CALL in flight",
    "protocol-malformed": "all well formed",
    "protocol-unknown-transaction": "all for known transactions",
    "protocol-clock-drift": "charger clock 0.0 s",
}
CASES += [("good", "CP1", rule_id, "PASS", detail) for rule_id, detail in GOOD_DETAILS.items()]


def judge(con: duckdb.DuckDBPyConnection, rule_id: str, charge_point_id: str):
    return run_rule(con, RULES[rule_id], judged_chargers(con))[charge_point_id]


@pytest.mark.parametrize(
    ("capture", "charge_point_id", "rule_id", "verdict", "detail"),
    CASES,
    ids=[f"{rule}-{cp}-{verdict}" for _, cp, rule, verdict, _ in CASES],
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


def test_well_behaved_charger_has_no_failing_finding(
    connections: dict[str, duckdb.DuckDBPyConnection],
) -> None:
    failing = {
        rule_id: [
            f.detail
            for f in judge(connections["good"], rule_id, "CP1").findings
            if f.verdict == "fail"
        ]
        for rule_id in RULES
    }
    assert {rule_id: d for rule_id, d in failing.items() if d} == {}


def test_iccid_note_rides_along(connections: dict[str, duckdb.DuckDBPyConnection]) -> None:
    result = judge(connections["good"], "boot-notification", "LAN1")
    assert result.notes == ["ICCID not included (a charger connected via LAN has none)"]


def test_charger_without_evidence_is_not_observed(
    connections: dict[str, duckdb.DuckDBPyConnection],
) -> None:
    assert judge(connections["good"], "firmware-update", "LAN1").verdict == "NOT_OBSERVED"
    assert judge(connections["good"], "reset", "HB30").verdict == "NOT_OBSERVED"


def test_every_rule_has_a_pass_and_a_fail_case() -> None:
    covered = {(rule_id, verdict) for _, _, rule_id, verdict, _ in CASES}
    lacking = [
        f"{rule_id} lacks a {verdict} case"
        for rule_id in sorted(RULES)
        for verdict in ("PASS", "FAIL")
        if (rule_id, verdict) not in covered
    ]
    assert lacking == []
    rule_files = sorted(Path(RULES["heartbeat"].path).parent.glob("*.sql"))
    assert len(rule_files) == len([r for r in load_rules() if r.path in rule_files])
    assert {rule.function for rule in RULES.values()} >= set(range(1, 17))


def test_function_titles_come_from_the_rule_headers() -> None:
    # The guided acceptance run's progress names each function by its rule's title.
    titles = function_titles()
    assert sorted(titles) == list(range(1, 17))
    assert titles[15] == "Clear cache"  # "Clear cache (if applicable)": the remark dropped
    assert titles[1] == "Boot notification"
    rule = next(r for r in load_rules() if r.function == 13)
    assert function_titles([rule]) == {13: rule.title}
