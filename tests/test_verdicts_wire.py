"""Verdicts that match the wire (issue 12): each wrong or misleading verdict found by running an
independent charger (the SAP simulator) through the recorder, reproduced as a capture, with the
verdict, its detail and its evidence checked against the frames that show it."""

from __future__ import annotations

from pathlib import Path

from ocpp_audit.analyser.engine import Report, RuleResult, analyse
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
