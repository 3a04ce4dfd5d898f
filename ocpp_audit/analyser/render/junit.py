"""JUnit XML: one testsuite per charger, one testcase per function or check.

FAIL is a failure with the criterion and the findings, NOT_OBSERVED is skipped. CI systems read it
as test results. Every text and attribute goes through ``for_xml``: a charger's id, idTag or error
text may hold characters XML 1.0 forbids, and the file must still parse with a strict parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ocpp_audit.analyser.model import FAIL, NOT_OBSERVED, Report, RuleResult
from ocpp_audit.display import for_xml


def _case_name(result: RuleResult) -> str:
    prefix = f"{result.rule.function:02d} " if result.rule.function is not None else ""
    return for_xml(f"{prefix}{result.rule.title} [{result.rule.id}]")


def _findings_text(result: RuleResult) -> str:
    lines = [f"Criterion: {result.rule.criterion}", ""]
    for finding in result.findings:
        label = f"{finding.verdict}"
        if finding.check:
            label += f" {finding.check}"
        lines.append(f"- {label}: {finding.detail or ''}".rstrip())
        for item in finding.evidence:
            lines.append(f"    {item.get('ts')} {item.get('unique_id') or ''}".rstrip())
    for note in result.notes:
        lines.append(f"note: {note}")
    return for_xml("\n".join(lines))


def render_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="ocpp-audit")
    total = failures = skipped = 0
    for charger in report.chargers:
        suite_failures = sum(1 for r in charger.results if r.verdict == FAIL)
        suite_skipped = sum(1 for r in charger.results if r.verdict == NOT_OBSERVED)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=for_xml(charger.charge_point_id),
            tests=str(len(charger.results)),
            failures=str(suite_failures),
            errors="0",
            skipped=str(suite_skipped),
        )
        total += len(charger.results)
        failures += suite_failures
        skipped += suite_skipped
        for result in charger.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=for_xml(f"ocpp_audit.{charger.charge_point_id}"),
                name=_case_name(result),
            )
            if result.verdict == FAIL:
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=for_xml(result.rule.criterion),
                    type=result.rule.severity,
                )
                failure.text = _findings_text(result)
            elif result.verdict == NOT_OBSERVED:
                ET.SubElement(case, "skipped", message="not observed in the capture")
            if result.notes:
                ET.SubElement(case, "system-out").text = for_xml("\n".join(result.notes))
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("skipped", str(skipped))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
