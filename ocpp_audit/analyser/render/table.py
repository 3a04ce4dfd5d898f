"""Per charger the acceptance script's layout (#, function, result, notes), plain text."""

from __future__ import annotations

import textwrap

from ocpp_audit.analyser.model import ChargerReport, Report, result_notes
from ocpp_audit.analyser.render.common import function_number, result_word, summary
from ocpp_audit.display import for_terminal

_NOTES_WIDTH = 56
_TITLE_WIDTH = 40


def render_table(report: Report) -> str:
    if not report.chargers:
        return "No chargers in the capture: nothing judged.\n"
    return "\n\n".join(_table_for(charger).rstrip("\n") for charger in report.chargers) + "\n"


def _table_for(charger: ChargerReport) -> str:
    rows: list[tuple[str, list[str], str, list[str]]] = []
    for result in [*charger.functions, *charger.checks]:
        indent = "" if result.rule.function is not None else "  "
        names = textwrap.wrap(
            for_terminal(result.rule.title), _TITLE_WIDTH, subsequent_indent="  "
        ) or [""]
        notes: list[str] = []
        for note in result_notes(result):  # a charger's text, escapes shown (not obeyed)
            notes.extend(textwrap.wrap(for_terminal(note), _NOTES_WIDTH) or [""])
        rows.append(
            (function_number(result), [indent + n for n in names], result_word(result), notes)
        )
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

    out = [f"Charger {for_terminal(charger.charge_point_id)}  ({summary(charger)})"]
    if charger.identity:
        out.append(
            "  ".join(
                f"{label}: {for_terminal(value)}" for label, value in charger.identity.items()
            )
        )
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
