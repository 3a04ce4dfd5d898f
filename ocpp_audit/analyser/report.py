"""Render a Report as table, json, junit or markdown text.

- ``table``: per charger the acceptance script's layout (#, function, result, notes), plain text.
- ``json``: the versioned document of ``Report.to_dict()`` (format_version 1).
- ``markdown``: like the reference test report (#, Function, Acceptance Criteria, Result).
- ``junit``: one testsuite per charger, one testcase per function or check; FAIL is a failure with
  the criterion and the findings, NOT_OBSERVED is skipped. CI systems read it as test results.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET

from ocpp_audit.analyser.engine import FAIL, NOT_OBSERVED, PASS, ChargerReport, Report, RuleResult

FORMATS = ("table", "json", "junit", "markdown", "html")

# How each verdict reads in every format (the html report too).
RESULT_WORDS = {PASS: "PASS", FAIL: "FAIL", NOT_OBSERVED: "NOT OBSERVED"}
_NOTES_WIDTH = 56
_TITLE_WIDTH = 40


def render(report: Report, fmt: str) -> str:
    """The report as text in ``fmt`` (one of FORMATS), ending with a newline."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "table":
        return render_table(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "junit":
        return render_junit(report)
    if fmt == "html":  # one self-contained page with timelines and charts (html_report.py)
        from ocpp_audit.analyser.html_report import render_html

        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")


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


def _summary(charger: ChargerReport) -> str:
    counts = {verdict: 0 for verdict in (PASS, FAIL, NOT_OBSERVED)}
    for result in charger.results:
        counts[result.verdict] += 1
    return ", ".join(f"{counts[v]} {RESULT_WORDS[v]}" for v in (PASS, FAIL, NOT_OBSERVED))


def _number(result: RuleResult) -> str:
    return str(result.rule.function) if result.rule.function is not None else ""


def _result_word(result: RuleResult) -> str:
    word = RESULT_WORDS[result.verdict]
    if result.verdict == FAIL and result.rule.severity == "warning":
        word += " (warning)"
    return word


# --- table ----------------------------------------------------------------------------------------


def render_table(report: Report) -> str:
    if not report.chargers:
        return "No chargers in the capture: nothing judged.\n"
    return "\n\n".join(_table_for(charger).rstrip("\n") for charger in report.chargers) + "\n"


def _table_for(charger: ChargerReport) -> str:
    rows: list[tuple[str, list[str], str, list[str]]] = []
    for result in [*charger.functions, *charger.checks]:
        indent = "" if result.rule.function is not None else "  "
        names = textwrap.wrap(result.rule.title, _TITLE_WIDTH, subsequent_indent="  ") or [""]
        notes: list[str] = []
        for note in result_notes(result):
            notes.extend(textwrap.wrap(note, _NOTES_WIDTH) or [""])
        rows.append((_number(result), [indent + n for n in names], _result_word(result), notes))
    headers = ("#", "Function", "Result", "Notes")
    widths = [
        max([len(headers[0])] + [len(row[0]) for row in rows]),
        max([len(headers[1])] + [len(name) for row in rows for name in row[1]]),
        max([len(headers[2])] + [len(row[2]) for row in rows]),
    ]

    def line(cells: tuple[str, str, str, str]) -> str:
        return "  ".join(
            [
                cells[0].rjust(widths[0]),
                cells[1].ljust(widths[1]),
                cells[2].ljust(widths[2]),
                cells[3],
            ]
        ).rstrip()

    out = [f"Charger {charger.charge_point_id}  ({_summary(charger)})"]
    if charger.identity:
        out.append("  ".join(f"{label}: {value}" for label, value in charger.identity.items()))
    out.append("")
    out.append(line(headers))
    out.append(line((*("-" * w for w in widths), "-" * len(headers[3]))))  # type: ignore[arg-type]
    first_check = len(charger.functions)
    for index, (number, names, word, notes) in enumerate(rows):
        if index == first_check:
            out.append(line(("", "Protocol checks", "", "")))
        for offset in range(max(len(names), len(notes))):
            out.append(
                line(
                    (
                        number if offset == 0 else "",
                        names[offset] if offset < len(names) else "",
                        word if offset == 0 else "",
                        notes[offset] if offset < len(notes) else "",
                    )
                )
            )
    return "\n".join(out) + "\n"


# --- markdown -------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(report: Report) -> str:
    out = ["# Acceptance report", ""]
    if not report.chargers:
        out.append("No chargers in the capture: nothing judged.")
        return "\n".join(out) + "\n"
    for charger in report.chargers:
        out.append(f"## Charger {charger.charge_point_id}")
        out.append("")
        for label, value in charger.identity.items():
            out.append(f"- {label}: {_md_cell(value)}")
        if charger.identity:
            out.append("")
        out.append(_summary(charger))
        out.append("")
        out.append("| # | Function | Acceptance Criteria | Result |")
        out.append("| --- | --- | --- | --- |")
        for result in charger.results:
            verdict = _result_word(result)
            notes = result_notes(result)
            cell = verdict + (": " + "; ".join(notes) if notes else "")
            out.append(
                f"| {_number(result)} | {_md_cell(result.rule.title)} "
                f"| {_md_cell(result.rule.criterion)} | {_md_cell(cell)} |"
            )
        out.append("")
    return "\n".join(out)


# --- junit ----------------------------------------------------------------------------------------


def _case_name(result: RuleResult) -> str:
    prefix = f"{result.rule.function:02d} " if result.rule.function is not None else ""
    return f"{prefix}{result.rule.title} [{result.rule.id}]"


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
    return "\n".join(lines)


def render_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="ocpp-audit")
    total = failures = skipped = 0
    for charger in report.chargers:
        suite_failures = sum(1 for r in charger.results if r.verdict == FAIL)
        suite_skipped = sum(1 for r in charger.results if r.verdict == NOT_OBSERVED)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=charger.charge_point_id,
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
                classname=f"ocpp_audit.{charger.charge_point_id}",
                name=_case_name(result),
            )
            if result.verdict == FAIL:
                failure = ET.SubElement(
                    case, "failure", message=result.rule.criterion, type=result.rule.severity
                )
                failure.text = _findings_text(result)
            elif result.verdict == NOT_OBSERVED:
                ET.SubElement(case, "skipped", message="not observed in the capture")
            if result.notes:
                ET.SubElement(case, "system-out").text = "\n".join(result.notes)
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("skipped", str(skipped))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
