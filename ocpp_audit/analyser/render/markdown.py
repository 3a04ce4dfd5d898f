"""Like the reference test report: per charger a table of #, Function, Acceptance Criteria, Result."""

from __future__ import annotations

from ocpp_audit.analyser.model import Report, result_notes
from ocpp_audit.analyser.render.common import function_number, result_word, summary
from ocpp_audit.display import for_markdown


def _md_cell(text: str) -> str:
    """A rule's own text (title, criterion): its Markdown kept, on one line, inside its cell."""
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(report: Report) -> str:
    out = ["# Acceptance report", ""]
    if not report.chargers:
        out.append("No chargers in the capture: nothing judged.")
        return "\n".join(out) + "\n"
    for charger in report.chargers:
        out.append(f"## Charger {for_markdown(charger.charge_point_id)}")
        out.append("")
        for label, value in charger.identity.items():
            out.append(f"- {label}: {for_markdown(value)}")
        if charger.identity:
            out.append("")
        out.append(summary(charger))
        out.append("")
        out.append("| # | Function | Acceptance Criteria | Result |")
        out.append("| --- | --- | --- | --- |")
        for result in charger.results:
            verdict = result_word(result)
            # Notes quote the charger (idTags, error texts, vendor strings): one inline text each.
            notes = [for_markdown(note) for note in result_notes(result)]
            cell = verdict + (": " + "; ".join(notes) if notes else "")
            out.append(
                f"| {function_number(result)} | {_md_cell(result.rule.title)} "
                f"| {_md_cell(result.rule.criterion)} | {cell} |"
            )
        out.append("")
    return "\n".join(out)
