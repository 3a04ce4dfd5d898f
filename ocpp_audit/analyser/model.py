"""What an analysis found: a Report of ChargerReports, each a RuleResult per rule with its Findings.

The runner (``engine.py``) builds it; the renderers (``render/``) read it. A rule's findings fold into
one verdict per charger and rule: any ``fail`` makes it FAIL; else any ``pass`` makes it PASS; else
NOT_OBSERVED. This module imports neither, so both depend on it and not on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ocpp_audit.analyser.rules import Rule

if TYPE_CHECKING:
    from ocpp_audit.capture.live import OpenJournals
    from ocpp_audit.capture.parts import SkippedPart

PASS = "PASS"
FAIL = "FAIL"
NOT_OBSERVED = "NOT_OBSERVED"
FINDING_VERDICTS = ("pass", "fail", "not_observed", "note")
FORMAT_VERSION = 1

# How each verdict reads in every format.
RESULT_WORDS = {PASS: "PASS", FAIL: "FAIL", NOT_OBSERVED: "NOT OBSERVED"}


@dataclass
class Finding:
    check: str | None
    verdict: str  # pass | fail | not_observed | note
    detail: str | None
    evidence: list[dict[str, str | None]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "verdict": self.verdict,
            "detail": self.detail,
            "evidence": self.evidence,
        }


@dataclass
class RuleResult:
    rule: Rule
    verdict: str  # PASS | FAIL | NOT_OBSERVED
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    omitted_findings: int = 0  # beyond engine.MAX_FINDINGS, left in the capture

    @property
    def omitted_note(self) -> str | None:
        if not self.omitted_findings:
            return None
        return f"{self.omitted_findings} more findings not shown; query the capture for all"

    def to_dict(self) -> dict[str, object]:
        omitted = [self.omitted_note] if self.omitted_note else []
        return {
            "function": self.rule.function,
            "rule": self.rule.id,
            "title": self.rule.title,
            "verdict": self.verdict,
            "notes": [*self.notes, *omitted],
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def details(self, verdict: str) -> list[str]:
        """The distinct details of the findings with this (lower-case) verdict."""
        seen: dict[str, None] = {}
        for finding in self.findings:
            if finding.verdict == verdict and finding.detail:
                seen.setdefault(finding.detail, None)
        return list(seen)


@dataclass
class ChargerReport:
    charge_point_id: str
    results: list[RuleResult]
    # From its BootNotifications, for the report's heading (as the reference report's
    # "Manufacturer Name / Model / Firmware Version"): label -> value. Not in the JSON document.
    identity: dict[str, str] = field(default_factory=dict)
    # The OCPP version it spoke (its connections' negotiated subprotocol); None when not recorded.
    ocpp_version: str | None = None

    @property
    def functions(self) -> list[RuleResult]:
        return [r for r in self.results if r.rule.function is not None]

    @property
    def checks(self) -> list[RuleResult]:
        return [r for r in self.results if r.rule.function is None]

    def to_dict(self) -> dict[str, object]:
        return {
            "charge_point_id": self.charge_point_id,
            "ocpp_version": self.ocpp_version,
            "functions": [r.to_dict() for r in self.functions],
            "checks": [r.to_dict() for r in self.checks],
        }


@dataclass
class Report:
    chargers: list[ChargerReport]
    rules: list[Rule]
    elapsed_s: float = 0.0
    rule_seconds: dict[str, float] = field(default_factory=dict)
    # How analyse() opened the capture (open_capture's keyword arguments), so that a renderer
    # needing more than the verdicts (the html report) can open it again. Not in the JSON document.
    source: dict[str, object] | None = None
    # Parts left out with skip_bad_parts (None: not asked, so the JSON document has no such key).
    skipped_parts: list[SkippedPart] | None = None
    # The capture was being recorded: rows read from its open journals (ocpp_audit.capture.live),
    # None when it had none.
    open_journals: OpenJournals | None = None

    @property
    def exit_status(self) -> int:
        """1 if any rule of severity error FAILs for any charger, else 0."""
        failed = any(
            r.verdict == FAIL and r.rule.severity == "error"
            for charger in self.chargers
            for r in charger.results
        )
        return 1 if failed else 0

    def verdicts(self) -> dict[tuple[str, str], str]:
        """(charge_point_id, rule id) -> verdict, for baselines."""
        return {
            (charger.charge_point_id, r.rule.id): r.verdict
            for charger in self.chargers
            for r in charger.results
        }

    def to_dict(self) -> dict[str, object]:
        """The versioned JSON document (format_version 1)."""
        document: dict[str, object] = {
            "format_version": FORMAT_VERSION,
            "chargers": [charger.to_dict() for charger in self.chargers],
        }
        if self.skipped_parts is not None:
            # An added top-level key: format_version 1's existing keys stay as they are.
            document["skipped_parts"] = [part.to_dict() for part in self.skipped_parts]
        if self.open_journals is not None:
            # Likewise added: the capture was being recorded, and this much was not yet sealed.
            document["open_journals"] = self.open_journals.to_dict()
        return document


def fold(verdicts: Sequence[str]) -> str:
    """Any fail -> FAIL, else any pass -> PASS, else NOT_OBSERVED (notes do not count)."""
    if "fail" in verdicts:
        return FAIL
    if "pass" in verdicts:
        return PASS
    return NOT_OBSERVED


def result_notes(result: RuleResult, limit: int = 3) -> list[str]:
    """What a reader wants next to a verdict: the notes, then what decided it."""
    deciding = {FAIL: "fail", PASS: "pass"}.get(result.verdict)
    lines = [note for note in result.notes]
    if deciding is not None:
        details = result.details(deciding)
        lines.extend(details[:limit])
        if len(details) > limit:
            lines.append(f"... and {len(details) - limit} more")
    if result.omitted_note:
        lines.append(result.omitted_note)
    return lines
