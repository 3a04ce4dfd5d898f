"""Verdicts that match the wire (issue 12): each wrong or misleading verdict found by running an
independent charger (the SAP simulator) through the recorder, reproduced as a capture, with the
verdict, its detail and its evidence checked against the frames that show it."""

from __future__ import annotations

from pathlib import Path

from ocpp_audit.analyser.engine import Report, RuleResult, analyse
from ocpp_audit.capture.schema import Direction
from tests.capture_builder import CaptureBuilder, ChargerScript


def judge(capture: CaptureBuilder, tmp_path: Path, *rule_ids: str) -> Report:
    capture.write(tmp_path / "capture")
    return analyse([tmp_path / "capture"], select=rule_ids)


def result(report: Report, charge_point_id: str, rule_id: str) -> RuleResult:
    charger = next(c for c in report.chargers if c.charge_point_id == charge_point_id)
    return next(r for r in charger.results if r.rule.id == rule_id)


def online(cp: ChargerScript) -> ChargerScript:
    cp.connect()
    cp.boot()
    cp.status(1, "Available")
    return cp


def findings(rule_result: RuleResult) -> list[tuple[str, str | None, list[str | None]]]:
    return [
        (f.verdict, f.detail, [e.get("unique_id") for e in f.evidence])
        for f in rule_result.findings
    ]


# --- W6: NotSupported for a key the charger does not have is a negative probe, not a failure ---


def test_w6_not_supported_for_a_key_reported_unknown_is_a_note(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cp.cs("GetConfiguration", {"key": ["NoSuchKey"]}, {"unknownKey": ["NoSuchKey"]})
    probe = cp.cs(
        "ChangeConfiguration", {"key": "NoSuchKey", "value": "1"}, {"status": "NotSupported"}
    )
    accepted = cp.cs(
        "ChangeConfiguration",
        {"key": "MeterValueSampleInterval", "value": "10"},
        {"status": "Accepted"},
    )
    report = judge(capture, tmp_path, "change-configuration")
    verdict = result(report, "CP1", "change-configuration")
    assert verdict.verdict == "PASS"
    assert findings(verdict) == [
        (
            "note",
            "NoSuchKey = 1: NotSupported, a key the charger reported as unknown "
            "(GetConfiguration unknownKey): the answer to a negative probe",
            [probe],
        ),
        ("pass", "MeterValueSampleInterval = 10: Accepted", [accepted]),
    ]


def test_w6_not_supported_for_a_key_a_full_listing_lacks_is_a_note(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cp.cs(
        "GetConfiguration",
        {},
        {"configurationKey": [{"key": "HeartbeatInterval", "value": "60", "readonly": False}]},
    )
    probe = cp.cs(
        "ChangeConfiguration", {"key": "Vendor.Foo", "value": "x"}, {"status": "NotSupported"}
    )
    report = judge(capture, tmp_path, "change-configuration")
    verdict = result(report, "CP1", "change-configuration")
    # nothing else was set: a probe alone judges nothing, so the function is not observed
    assert verdict.verdict == "NOT_OBSERVED"
    assert findings(verdict) == [
        (
            "note",
            "Vendor.Foo = x: NotSupported, a key its full GetConfiguration listing does not "
            "have: the answer to a negative probe",
            [probe],
        )
    ]


def test_w6_not_supported_for_a_key_the_charger_listed_still_fails(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cp.cs(
        "GetConfiguration",
        {},
        {"configurationKey": [{"key": "HeartbeatInterval", "value": "60", "readonly": False}]},
    )
    refused = cp.cs(
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "30"},
        {"status": "NotSupported"},
    )
    # and with no GetConfiguration at all, nothing shows the key is unknown: a failure too
    other = online(capture.charger("CP2"))
    unproven = other.cs(
        "ChangeConfiguration", {"key": "Vendor.Foo", "value": "x"}, {"status": "NotSupported"}
    )
    report = judge(capture, tmp_path, "change-configuration")
    assert result(report, "CP1", "change-configuration").verdict == "FAIL"
    assert findings(result(report, "CP1", "change-configuration")) == [
        ("fail", "HeartbeatInterval = 30: NotSupported", [refused])
    ]
    assert findings(result(report, "CP2", "change-configuration")) == [
        ("fail", "Vendor.Foo = x: NotSupported", [unproven])
    ]


# --- W7: ClearCache "if applicable": a charger without an authorization cache is not judged ---


def test_w7_clear_cache_rejected_without_a_cache_is_not_applicable(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    no_key = online(capture.charger("NOKEY"))
    no_key.cs(
        "GetConfiguration",
        {},
        {"configurationKey": [{"key": "HeartbeatInterval", "value": "60", "readonly": False}]},
    )
    first = no_key.cs("ClearCache", {}, {"status": "Rejected"})
    disabled = online(capture.charger("OFF"))
    disabled.cs(
        "GetConfiguration",
        {"key": ["AuthorizationCacheEnabled"]},
        {
            "configurationKey": [
                {"key": "AuthorizationCacheEnabled", "value": "false", "readonly": False}
            ]
        },
    )
    second = disabled.cs("ClearCache", {}, {"status": "Rejected"})
    report = judge(capture, tmp_path, "clear-cache")
    assert result(report, "NOKEY", "clear-cache").verdict == "NOT_OBSERVED"
    assert findings(result(report, "NOKEY", "clear-cache")) == [
        (
            "note",
            "ClearCache answered Rejected; not applicable: the charger has no authorization "
            "cache (no AuthorizationCacheEnabled key)",
            [first, first],
        )
    ]
    assert result(report, "OFF", "clear-cache").verdict == "NOT_OBSERVED"
    assert findings(result(report, "OFF", "clear-cache"))[0][1] == (
        "ClearCache answered Rejected; not applicable: the charger has no authorization cache "
        "(AuthorizationCacheEnabled is false)"
    )
    assert findings(result(report, "OFF", "clear-cache"))[0][2] == [second, second]


def test_w7_clear_cache_rejected_with_a_cache_fails(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cp.cs(
        "GetConfiguration",
        {},
        {
            "configurationKey": [
                {"key": "AuthorizationCacheEnabled", "value": "true", "readonly": False}
            ]
        },
    )
    rejected = cp.cs("ClearCache", {}, {"status": "Rejected"})
    unknown = online(capture.charger("CP2"))  # no configuration seen: the cache may be there
    unknown_rejected = unknown.cs("ClearCache", {}, {"status": "Rejected"})
    report = judge(capture, tmp_path, "clear-cache")
    assert findings(result(report, "CP1", "clear-cache")) == [
        ("fail", "ClearCache answered Rejected", [rejected, rejected])
    ]
    assert findings(result(report, "CP2", "clear-cache")) == [
        ("fail", "ClearCache answered Rejected", [unknown_rejected, unknown_rejected])
    ]


# --- W2: an accepted Authorize that no start attempt follows is not a failed start ---------------


def test_w2_reservation_authorize_without_a_start_is_a_note(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cp.cs(
        "ReserveNow",
        {"connectorId": 1, "expiryDate": cp.stamp(-3600), "idTag": "RES-TAG", "reservationId": 7},
        {"status": "Accepted"},
    )
    cp.status(1, "Reserved")
    cp.wait(5)
    authorize = cp.authorize("RES-TAG")
    cp.wait(120)
    report = judge(capture, tmp_path, "start-transaction")
    verdict = result(report, "CP1", "start-transaction")
    assert verdict.verdict == "NOT_OBSERVED"
    assert findings(verdict) == [
        (
            "note",
            "Authorize RES-TAG accepted; no start attempt followed within 60 s (no "
            "StartTransaction, no connector Preparing), the idTag of reservation 7: not judged",
            [authorize],
        )
    ]


def test_w2_authorize_with_a_cable_in_but_no_start_still_fails(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    preparing = cp.status(1, "Preparing")
    cp.wait(5)
    authorize = cp.authorize("TAG9")
    cp.wait(120)
    report = judge(capture, tmp_path, "start-transaction")
    assert findings(result(report, "CP1", "start-transaction")) == [
        (
            "fail",
            "Authorize TAG9 accepted and connector 1 Preparing, but no StartTransaction within 60 s",
            [authorize, preparing],
        )
    ]


# --- W4: the reboot that counts for a firmware update is the one after Installed ---------------


def firmware_status(cp: ChargerScript, status: str) -> str:
    return cp.cp("FirmwareStatusNotification", {"status": status}, {})


def test_w4_firmware_reboot_before_installed_is_not_the_updates_reboot(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = capture.charger("CP1")
    cp.connect()
    cp.boot(firmware="1.0")
    update = cp.cs(
        "UpdateFirmware", {"location": "http://127.0.0.1/fw.bin", "retrieveDate": cp.stamp()}, {}
    )
    for status in ("Downloading", "Downloaded"):
        cp.wait(2)
        firmware_status(cp, status)
    cp.wait(2)
    cp.disconnect()  # a reboot while the image waits (say, a Reset): still the old firmware
    cp.wait(5).connect()
    cp.boot(firmware="1.0")
    cp.wait(2)
    firmware_status(cp, "Installing")
    cp.wait(2)
    installed = firmware_status(cp, "Installed")
    cp.wait(2).disconnect()
    cp.wait(5).connect()
    reboot = cp.boot(firmware="2.0")
    report = judge(capture, tmp_path, "firmware-update")
    assert findings(result(report, "CP1", "firmware-update")) == [
        (
            "pass",
            "Downloading -> Downloaded -> Installing -> Installed, rebooted with firmware 2.0 "
            "(was 1.0)",
            [update, installed, reboot],
        )
    ]


def test_w4_no_reboot_after_installed_fails_citing_no_earlier_boot(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = capture.charger("CP1")
    cp.connect()
    cp.boot(firmware="1.0")
    update = cp.cs(
        "UpdateFirmware", {"location": "http://127.0.0.1/fw.bin", "retrieveDate": cp.stamp()}, {}
    )
    cp.wait(2)
    firmware_status(cp, "Downloading")
    cp.wait(2).disconnect()
    cp.wait(5).connect()
    cp.boot(firmware="1.0")  # before Installing and Installed: not the update's reboot
    cp.wait(2)
    firmware_status(cp, "Installing")
    cp.wait(2)
    installed = firmware_status(cp, "Installed")
    report = judge(capture, tmp_path, "firmware-update")
    assert findings(result(report, "CP1", "firmware-update")) == [
        (
            "fail",
            "Downloading -> Installing -> Installed, but no reboot (BootNotification) after the "
            "update",
            [update, installed],
        )
    ]


# --- W8: a stop's status is never a previous transaction's ---------------------------------------


def test_w8_two_stops_within_10_s_each_need_their_own_status(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    first = cp.start_transaction(1, "TAG1")
    cp.status(1, "Charging")
    cp.wait(30)
    first_stop = cp.stop_transaction(first)
    finishing = cp.status(1, "Finishing")
    cp.wait(2)
    second = cp.start_transaction(1, "TAG1")
    cp.status(1, "Charging")
    cp.wait(4)
    second_stop = cp.stop_transaction(second)  # 6 s after the first one's Finishing, and no status
    cp.wait(60)
    report = judge(capture, tmp_path, "stop-transaction")
    # the failure is listed first, as in every report
    assert findings(result(report, "CP1", "stop-transaction")) == [
        (
            "fail",
            f"transaction {second} stopped (Local), but no StatusNotification Finishing or "
            "Available on connector 1 within 30 s",
            [second_stop],
        ),
        (
            "pass",
            f"transaction {first} stopped (Local) -> StatusNotification on connector 1",
            [first_stop, finishing],
        ),
    ]


# --- W3: a plug-in timeout is Preparing -> Available around ConnectionTimeOut, not a later fault ---


def connection_timeout(cp: ChargerScript, seconds: int) -> None:
    cp.cs(
        "GetConfiguration",
        {"key": ["ConnectionTimeOut"]},
        {
            "configurationKey": [
                {"key": "ConnectionTimeOut", "value": str(seconds), "readonly": False}
            ]
        },
    )


def test_w3_a_fault_after_preparing_is_not_a_timeout(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    connection_timeout(cp, 60)
    cp.status(1, "Preparing")
    cp.wait(240)
    cp.status(1, "Faulted", "GroundFailure")
    report = judge(capture, tmp_path, "cable-status")
    verdict = result(report, "CP1", "cable-status")
    assert "timed out" not in " ".join(str(f.detail) for f in verdict.findings)
    assert [f.check for f in verdict.findings if f.verdict == "pass"] == ["transitions"]


def test_w3_timeout_judged_against_connection_timeout(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    on_time = online(capture.charger("ONTIME"))
    connection_timeout(on_time, 60)
    preparing = on_time.status(1, "Preparing")
    on_time.wait(62)
    available = on_time.status(1, "Available")
    unplugged = online(capture.charger("UNPLUGGED"))
    connection_timeout(unplugged, 60)
    unplugged.status(1, "Preparing")
    unplugged.wait(5)
    unplugged.status(1, "Available")
    late = online(capture.charger("LATE"))
    connection_timeout(late, 60)
    late.status(1, "Preparing")
    late.wait(200)
    late.status(1, "Available")
    report = judge(capture, tmp_path, "cable-status")

    def timeout_findings(cp_id: str) -> list[tuple[str, str | None, list[str | None]]]:
        found = result(report, cp_id, "cable-status").findings
        return [
            (f.verdict, f.detail, [e.get("unique_id") for e in f.evidence])
            for f in found
            if f.check == "connector 1 plug-in timeout"
        ]

    assert timeout_findings("ONTIME") == [
        (
            "pass",
            "Preparing timed out to Available after 62 s (ConnectionTimeOut 60 s, no "
            "transaction started)",
            [preparing, available],
        )
    ]
    assert timeout_findings("UNPLUGGED")[0][:2] == (
        "note",
        "Preparing -> Available after 5 s, before ConnectionTimeOut 60 s: the cable was "
        "unplugged, not a timeout",
    )
    assert timeout_findings("LATE")[0][:2] == (
        "fail",
        "Preparing timed out to Available only after 200 s, beyond ConnectionTimeOut 60 s",
    )


# --- W1: queued meter values after the transaction's StopTransaction, on a later connection ------


def test_w1_queued_meter_values_after_the_stop_on_a_later_connection_fail(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    transaction_id = cp.start_transaction(1, "TAG1")
    cp.status(1, "Charging")
    cp.wait(5).disconnect()  # network lost while charging
    cp.wait(60).connect()
    stop = cp.stop_transaction(transaction_id, seconds_ago=10)  # queued stop delivered at once
    cp.status(1, "Available")
    cp.wait(30).disconnect(1000)  # the charger reboots before sending its queued meter values
    cp.wait(10).connect()
    cp.boot()
    late = cp.meter_values(transaction_id, 1, seconds_ago=70)  # sampled while offline
    report = judge(capture, tmp_path, "offline-replay", "protocol-unknown-transaction")
    replay = result(report, "CP1", "offline-replay")
    assert replay.verdict == "FAIL"
    stamp = (cp.now.replace(microsecond=0)).timestamp() - 70
    failed = [f for f in findings(replay) if f[0] == "fail"]
    assert (
        "fail",
        f"queued MeterValues of transaction {transaction_id} (sampled "
        f"{_utc(stamp)}) delivered after its StopTransaction, on a later connection",
        [stop, late],
    ) in failed
    # a queued MeterValues is function 14's: the protocol check does not charge it again
    assert result(report, "CP1", "protocol-unknown-transaction").verdict == "PASS"


def _utc(epoch_s: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_w1_live_meter_values_after_the_stop_and_a_duplicate_stop_are_reported(
    tmp_path: Path,
) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    transaction_id = cp.start_transaction(1, "TAG1")
    cp.wait(20)
    stop = cp.stop_transaction(transaction_id)
    cp.wait(5)
    live = cp.meter_values(transaction_id, 1)
    cp.wait(5)
    again = cp.stop_transaction(transaction_id)
    report = judge(capture, tmp_path, "protocol-unknown-transaction")
    verdict = result(report, "CP1", "protocol-unknown-transaction")
    assert verdict.verdict == "FAIL"
    assert sorted(findings(verdict)) == sorted(
        [
            (
                "fail",
                f"MeterValues for transaction {transaction_id} after its StopTransaction",
                [stop, live],
            ),
            (
                "fail",
                f"second StopTransaction for transaction {transaction_id}, already stopped",
                [stop, again],
            ),
        ]
    )  # and no pass line beside them


# --- one defect, one function: lost offline meter values are function 14's, not also 8's --------


def test_offline_meter_values_lost_fail_function_14_only(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    transaction_id = cp.start_transaction(1, "TAG1")
    cp.status(1, "Charging")
    cp.wait(2).disconnect()
    cp.wait(300).connect()  # five minutes offline; the queued meter values are lost
    stop = cp.stop_transaction(transaction_id, seconds_ago=5)
    cp.status(1, "Available")
    report = judge(capture, tmp_path, "meter-values", "offline-replay")
    replay = result(report, "CP1", "offline-replay")
    assert replay.verdict == "FAIL"
    assert findings(replay)[0][:2] == ("fail", "start and stop received, meter values not received")
    meter = result(report, "CP1", "meter-values")
    start = next(r["unique_id"] for r in capture.rows if r.get("action") == "StartTransaction")
    assert meter.verdict == "NOT_OBSERVED"  # nothing else to judge function 8 on
    assert findings(meter) == [
        (
            "note",
            f"transaction {transaction_id} lasted 297 s without any meter value (it ran while "
            "the charger was offline: judged by function 14)",
            [start, stop],
        ),
        (
            "note",
            f"transaction {transaction_id} ran while the charger was offline: its missing meter "
            "values are judged by function 14",
            [start, stop],
        ),
    ]


# --- W10: no pass line that its own fail lines contradict; each line names its side ------------


def test_w10_calls_in_flight_names_the_side_and_passes_only_the_clean_one(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    first = cp.call(Direction.CP_TO_CS, "Heartbeat", {})
    second = cp.call(
        Direction.CP_TO_CS,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    )
    cp.wait(0.1).result(Direction.CS_TO_CP, first, {"currentTime": cp.stamp()})
    cp.result(Direction.CS_TO_CP, second, {})
    cp.cs("ClearCache", {}, {"status": "Accepted"})
    report = judge(capture, tmp_path, "protocol-calls-in-flight")
    assert sorted(findings(result(report, "CP1", "protocol-calls-in-flight"))) == [
        (
            "fail",
            "charger sent StatusNotification while its earlier CALL (Heartbeat) was unanswered",
            [first, second],
        ),
        ("pass", "backend: 1 CALLs, one at a time", []),
    ]


# --- W9: every TriggerMessage type the charger accepts must be honoured -------------------------


def test_w9_an_accepted_trigger_never_honoured_fails(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    ignored = cp.cs(
        "TriggerMessage",
        {"requestedMessage": "MeterValues", "connectorId": 1},
        {"status": "Accepted"},
    )
    cp.wait(5)
    cp.meter_values(None, 2)  # another connector's: not what was asked
    cp.wait(60)
    honoured = cp.cs(
        "TriggerMessage",
        {"requestedMessage": "MeterValues", "connectorId": 2},
        {"status": "Accepted"},
    )
    cp.wait(1)
    sent = cp.meter_values(None, 2)
    cp.wait(60)
    not_implemented = cp.cs(
        "TriggerMessage",
        {"requestedMessage": "FirmwareStatusNotification"},
        {"status": "NotImplemented"},
    )
    report = judge(capture, tmp_path, "trigger-message")
    verdict = result(report, "CP1", "trigger-message")
    assert verdict.verdict == "FAIL"
    assert sorted(findings(verdict)) == sorted(
        [
            (
                "fail",
                "TriggerMessage(MeterValues) accepted, but no MeterValues for connector 1 within 30 s",
                [ignored],
            ),
            (
                "pass",
                "TriggerMessage(MeterValues) accepted, MeterValues received after 1.1 s",
                [honoured, sent],
            ),
            (
                "note",
                "TriggerMessage(FirmwareStatusNotification) answered NotImplemented",
                [not_implemented],
            ),
        ]
    )


# --- W5: an empty or unreadable file is not a diagnostics report --------------------------------


def diagnostics(cp: ChargerScript, content: dict[str, object], size: int) -> tuple[str, str]:
    request = cp.cs("GetDiagnostics", {"location": "ftp://127.0.0.1/"}, {"fileName": "diag.tar.gz"})
    cp.wait(1)
    cp.cp("DiagnosticsStatusNotification", {"status": "Uploading"}, {})
    cp.wait(2).upload("diag.tar.gz", size, content)
    cp.wait(1)
    uploaded = cp.cp("DiagnosticsStatusNotification", {"status": "Uploaded"}, {})
    return request, uploaded


def test_w5_a_truncated_gzip_is_not_a_diagnostics_report(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    bad = online(capture.charger("BAD"))
    bad_ids = diagnostics(
        bad, {"kind": "gzip", "readable": False, "uncompressed_size": 0, "problem": "truncated"}, 10
    )
    good = online(capture.charger("GOOD"))
    good_ids = diagnostics(
        good, {"kind": "tar.gz", "readable": True, "problem": None, "files": 3}, 20480
    )
    report = judge(capture, tmp_path, "diagnostics")
    assert findings(result(report, "BAD", "diagnostics")) == [
        (
            "fail",
            "Uploading -> Uploaded, but the file diag.tar.gz that arrived (10 bytes, gzip) is not a "
            "diagnostics report: truncated",
            list(bad_ids),
        )
    ]
    assert findings(result(report, "GOOD", "diagnostics")) == [
        (
            "pass",
            "Uploading -> Uploaded, file diag.tar.gz arrived (20480 bytes, tar.gz, readable)",
            list(good_ids),
        )
    ]


def test_w5_uploading_before_the_answer_is_said_to_be_accepted(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    request = cp.call(Direction.CS_TO_CP, "GetDiagnostics", {"location": "ftp://127.0.0.1/"})
    cp.cp("DiagnosticsStatusNotification", {"status": "Uploading"}, {})
    cp.wait(0.1).result(Direction.CP_TO_CS, request, {"fileName": "d.log"})
    cp.wait(1)
    uploaded = cp.cp("DiagnosticsStatusNotification", {"status": "Uploaded"}, {})
    report = judge(capture, tmp_path, "diagnostics")
    assert findings(result(report, "CP1", "diagnostics")) == [
        (
            "pass",
            "Uploading -> Uploaded, file d.log (Uploading came before the GetDiagnostics answer: "
            "accepted, OCPP 1.6 does not order them)",
            [request, uploaded],
        )
    ]


# --- issue 14: a capture without connection events (an imported log) is not failed on them -----


def test_rules_that_need_connections_say_not_observed_without_connection_events(
    tmp_path: Path,
) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("LOG"))
    cp.heartbeats(2, 60)
    reset = cp.cs("Reset", {"type": "Soft"}, {"status": "Accepted"})
    cp.disconnect().wait(20).connect()  # in the log, only the frames show
    boot = cp.boot()
    cp.status(1, "Available")
    cp.wait(600).heartbeat()  # across an offline period the log cannot show
    # an imported log without connection lines: no open or close rows
    capture.rows = [row for row in capture.rows if row["event"] not in ("open", "close")]
    ordered = sorted(capture.rows, key=lambda r: (r["ts"], r["seq"]))
    renumbered = {(row["connection_id"], row["seq"]): seq for seq, row in enumerate(ordered)}
    for row in ordered:  # an answer keeps naming its CALL's seq, renumbered with it
        if row.get("answers_seq") not in (None, -1):
            row["answers_seq"] = renumbered[(row["connection_id"], row["answers_seq"])]
    for seq, row in enumerate(ordered):
        row["connection_id"] = "LOG-import"  # one connection, as the importer makes it
        row["seq"] = seq  # and one sequence: the rules order a connection's rows by it
    report = judge(capture, tmp_path, "reset", "heartbeat", "offline-replay")
    reset_result = result(report, "LOG", "reset")
    assert reset_result.verdict == "NOT_OBSERVED"
    assert findings(reset_result)[0][0] == "note"
    assert "no connection events, so whether the connection dropped cannot be seen" in str(
        findings(reset_result)[0][1]
    )
    assert findings(reset_result)[0][2][:2] == [reset, boot]
    heartbeat = result(report, "LOG", "heartbeat")
    assert heartbeat.verdict != "FAIL"
    assert any(
        verdict == "note" and "no connection events" in str(detail)
        for verdict, detail, _ in findings(heartbeat)
    )
    assert findings(result(report, "LOG", "offline-replay")) == [
        (
            "note",
            "the capture has no connection events (a log imported without connection lines): "
            "offline periods and their replay cannot be seen",
            [],
        )
    ]


# --- issue 13: a failed guided-run step is part of its function's verdict ----------------------


def test_a_failed_step_fails_its_function_unless_the_frames_show_it_working(
    tmp_path: Path,
) -> None:
    from ocpp_audit.lab.acceptance.run import StepOutcome, mark_failed_steps

    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cleared = cp.cs("ClearCache", {}, {"status": "Accepted"})
    report = judge(capture, tmp_path, "clear-cache", "trigger-message")
    steps = [
        StepOutcome("clear cache", (15,), "failed", "no answer within 30 s"),
        StepOutcome("trigger StatusNotification after boot", (16,), "failed", "timed out"),
        StepOutcome("get configuration", (4,), "done"),
    ]
    mark_failed_steps(report, steps)
    clear_cache = result(report, "CP1", "clear-cache")
    assert clear_cache.verdict == "PASS"  # the frames show it: said in a note
    assert clear_cache.notes[-1] == (
        "guided-run step 'clear cache' failed: no answer within 30 s; the frames show the "
        "function working"
    )
    assert findings(clear_cache) == [("pass", "ClearCache answered Accepted", [cleared, cleared])]
    trigger = result(report, "CP1", "trigger-message")  # nothing judged: the step's failure
    assert trigger.verdict == "FAIL"
    assert findings(trigger) == [
        ("fail", "guided-run step 'trigger StatusNotification after boot' failed: timed out", [])
    ]
    assert report.exit_status == 1


# --- found by the peer tests: heartbeat count, GetConfiguration of unknown keys, the CALL named ---


def test_heartbeat_count_is_every_heartbeat_over_all_connections(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    cp.heartbeats(3, 60)
    cp.disconnect().wait(5).connect()
    cp.boot()
    cp.heartbeats(2, 60)
    report = judge(capture, tmp_path, "heartbeat")
    passes = [f for f in findings(result(report, "CP1", "heartbeat")) if f[0] == "pass"]
    assert passes[0][1] == "5 heartbeats, largest gap 60 s (interval 60 s)"


def test_get_configuration_of_unknown_keys_answered_in_unknownkey_is_a_note(
    tmp_path: Path,
) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    probe = cp.cs("GetConfiguration", {"key": ["NoSuchKey"]}, {"unknownKey": ["NoSuchKey"]})
    empty = cp.cs("GetConfiguration", {}, {})
    report = judge(capture, tmp_path, "get-configuration")
    assert sorted(findings(result(report, "CP1", "get-configuration"))) == sorted(
        [
            (
                "note",
                "GetConfiguration of 1 key(s) the charger does not have: all in unknownKey, as "
                "OCPP 1.6 section 5.8 asks",
                [probe, probe],
            ),
            ("fail", "GetConfiguration answered without any configurationKey", [empty, empty]),
        ]
    )


def test_calls_in_flight_names_a_unique_id_re_sent_while_in_flight(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    before = cp.call(Direction.CP_TO_CS, "Heartbeat", {})
    cp.wait(0.1).result(Direction.CS_TO_CP, before, {"currentTime": cp.stamp()})
    dup = cp.wait(1).call(Direction.CP_TO_CS, "Heartbeat", {})
    cp.wait(0.5).call(Direction.CP_TO_CS, "Heartbeat", {}, unique_id=dup)  # re-sent, unanswered
    cp.wait(0.1).result(Direction.CS_TO_CP, dup, {"currentTime": cp.stamp()})
    report = judge(capture, tmp_path, "protocol-calls-in-flight")
    [failing] = [f for f in result(report, "CP1", "protocol-calls-in-flight").findings
                 if f.verdict == "fail"]  # fmt: skip
    assert (
        failing.detail
        == "charger re-sent unique id " + dup + " (Heartbeat) while its CALL was unanswered"
    )
    # the evidence: the first CALL with that id, then the re-sent one (0.5 s later)
    first, again = failing.evidence
    assert (first["unique_id"], again["unique_id"]) == (dup, dup)
    assert first["ts"] is not None and again["ts"] is not None and first["ts"] < again["ts"]


def test_calls_in_flight_names_the_call_that_really_was_unanswered(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))
    slow = cp.call(Direction.CP_TO_CS, "Authorize", {"idTag": "TAG1"})  # answered last
    beat = cp.call(Direction.CP_TO_CS, "Heartbeat", {})
    cp.wait(0.1).result(Direction.CS_TO_CP, beat, {"currentTime": cp.stamp()})
    status = cp.call(
        Direction.CP_TO_CS,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"},
    )
    cp.wait(0.1).result(Direction.CS_TO_CP, status, {})
    cp.wait(1).result(Direction.CS_TO_CP, slow, {"idTagInfo": {"status": "Accepted"}})
    report = judge(capture, tmp_path, "protocol-calls-in-flight")
    assert sorted(findings(result(report, "CP1", "protocol-calls-in-flight"))) == [
        (
            "fail",
            "charger sent Heartbeat while its earlier CALL (Authorize) was unanswered",
            [slow, beat],
        ),
        # the Heartbeat before it was answered: the Authorize is the CALL still in flight
        (
            "fail",
            "charger sent StatusNotification while its earlier CALL (Authorize) was unanswered",
            [slow, status],
        ),
    ]


def test_status_notifications_answering_an_injected_trigger_are_marked_injected(
    tmp_path: Path,
) -> None:
    import duckdb

    from ocpp_audit.analyser.capture import open_capture

    capture = CaptureBuilder()
    cp = online(capture.charger("CP1"))  # the boot status: not injected
    trigger = cp.call(
        Direction.CS_TO_CP,
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
    )
    for row in capture.rows:
        if row.get("unique_id") == trigger:
            row["injected"] = True  # sent by ocpp-audit's control API
    cp.wait(0.05).result(Direction.CP_TO_CS, trigger, {"status": "Accepted"})
    answered = cp.status(1, "Available")
    later = cp.wait(5).status(1, "Preparing")
    capture.write(tmp_path / "capture")
    con: duckdb.DuckDBPyConnection = open_capture([tmp_path / "capture"])
    try:
        rows = con.execute(
            "SELECT unique_id, injected FROM status_notifications ORDER BY ts"
        ).fetchall()
    finally:
        con.close()
    marked = {unique_id for unique_id, injected in rows if injected}
    assert marked == {answered}
    assert later not in marked and len(rows) == 3
