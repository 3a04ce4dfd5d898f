"""Like the reference test report: per charger a table of #, Function, Acceptance Criteria, Result."""

from __future__ import annotations

from ocpp_audit.analyser.model import Report, result_notes
from ocpp_audit.analyser.render.common import function_number, result_word, summary


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
        out.append(summary(charger))
        out.append("")
        out.append("| # | Function | Acceptance Criteria | Result |")
        out.append("| --- | --- | --- | --- |")
        for result in charger.results:
            verdict = result_word(result)
            notes = result_notes(result)
            cell = verdict + (": " + "; ".join(notes) if notes else "")
            out.append(
                f"| {function_number(result)} | {_md_cell(result.rule.title)} "
                f"| {_md_cell(result.rule.criterion)} | {_md_cell(cell)} |"
            )
        out.append("")
    return "\n".join(out)
