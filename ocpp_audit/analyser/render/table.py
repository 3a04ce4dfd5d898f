"""Plain text for a terminal: per charger the acceptance script's layout, and a fleet summary.

- ``table``: per charger the script's columns (#, function, result, notes), then the totals (one
  line per verdict) and the chargers that failed, so a 200-charger run ends with what matters.
- ``summary``: one row per charger (its verdict counts and the functions it failed), then the
  same totals: the fleet view.

Both fit the terminal's width (``COLUMNS``, else the terminal, else 80 columns). Where the notes
would get fewer than ``MIN_NOTES_WIDTH`` columns beside the function, each result's notes go on
the lines below it, indented, instead of in a column.
"""

from __future__ import annotations

import shutil
import textwrap

from ocpp_audit.analyser.model import (
    FAIL,
    NOT_OBSERVED,
    PASS,
    RESULT_WORDS,
    ChargerReport,
    Report,
    result_notes,
)
from ocpp_audit.analyser.render.common import function_number, result_word, summary
from ocpp_audit.display import for_terminal

MAX_TITLE_WIDTH = 40
MIN_NOTES_WIDTH = 36
NOTES_INDENT = 6  # notes on their own lines start under the function's title
MAX_FAILED_LISTED = 50  # chargers named in the closing summary; the rest are counted


def terminal_width() -> int:
    """The width to fit: ``COLUMNS`` or the terminal's, 80 when neither is known."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def render_table(report: Report, width: int | None = None) -> str:
    if not report.chargers:
        return "No chargers in the capture: nothing judged.\n"
    width = width or terminal_width()
    tables = [_table_for(charger, width).rstrip("\n") for charger in report.chargers]
    return "\n\n".join(tables) + "\n\n" + totals(report, width)


def render_summary(report: Report, width: int | None = None) -> str:
    """One row per charger: counts and failed functions; then the totals."""
    if not report.chargers:
        return "No chargers in the capture: nothing judged.\n"
    width = width or terminal_width()
    words = [RESULT_WORDS[v] for v in (PASS, FAIL, NOT_OBSERVED)]
    id_width = max(len("Charger"), *(len(for_terminal(c.charge_point_id)) for c in report.chargers))
    id_width = min(id_width, max(12, width // 3))
    fixed = id_width + sum(len(word) + 2 for word in words) + 2
    failed_width = max(20, width - fixed)
    header = "  ".join(["Charger".ljust(id_width), *words, "Failed"])
    rule = "  ".join(["-" * id_width, *("-" * len(word) for word in words), "-" * len("Failed")])
    out = [header, rule]
    for charger in report.chargers:
        counts = _counts([charger])
        failed = ", ".join(_failed_names(charger)) or "-"
        cells = [
            _clip(for_terminal(charger.charge_point_id), id_width).ljust(id_width),
            *(str(counts[v]).rjust(len(RESULT_WORDS[v])) for v in (PASS, FAIL, NOT_OBSERVED)),
        ]
        lines = textwrap.wrap(failed, failed_width) or [""]
        out.append("  ".join([*cells, lines[0]]).rstrip())
        pad = " " * (len("  ".join(cells)) + 2)
        out.extend(pad + line for line in lines[1:])
    return "\n".join(out) + "\n\n" + totals(report, width)


def totals(report: Report, width: int = 80) -> str:
    """The closing lines: one per verdict with its count, then the chargers that failed."""
    counts = _counts(report.chargers)
    judged = sum(counts.values())
    n = len(report.chargers)
    out = [f"{n} charger{'s' if n != 1 else ''}, {judged} verdicts:"]
    label_width = max(len(word) for word in RESULT_WORDS.values())
    number_width = len(str(judged))
    for verdict in (PASS, FAIL, NOT_OBSERVED):
        out.append(
            f"  {RESULT_WORDS[verdict].ljust(label_width)}  {counts[verdict]:>{number_width}}"
        )
    failed = [c for c in report.chargers if any(r.verdict == FAIL for r in c.results)]
    if failed:
        shown = failed[:MAX_FAILED_LISTED]
        listing = "; ".join(
            f"{for_terminal(c.charge_point_id)} ({', '.join(_failed_names(c))})" for c in shown
        )
        if len(failed) > len(shown):
            listing += f"; and {len(failed) - len(shown)} more"
        out.extend(
            textwrap.wrap(
                f"Failed: {listing}", width, subsequent_indent="  ", break_on_hyphens=False
            )
        )
    else:
        out.append("No charger failed a criterion.")
    return "\n".join(out) + "\n"


def written(report: Report) -> str:
    """One line for stderr after a report went to a file: chargers and verdict counts."""
    counts = _counts(report.chargers)
    n = len(report.chargers)
    verdicts = ", ".join(f"{counts[v]} {RESULT_WORDS[v]}" for v in (PASS, FAIL, NOT_OBSERVED))
    return f"{n} charger{'s' if n != 1 else ''}: {verdicts}"


def _counts(chargers: list[ChargerReport]) -> dict[str, int]:
    counts = dict.fromkeys((PASS, FAIL, NOT_OBSERVED), 0)
    for charger in chargers:
        for result in charger.results:
            counts[result.verdict] += 1
    return counts


def _failed_names(charger: ChargerReport) -> list[str]:
    names = []
    for result in charger.results:
        if result.verdict != FAIL:
            continue
        number = function_number(result)
        names.append(f"{number} {result.rule.id}" if number else result.rule.id)
    return names


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table_for(charger: ChargerReport, width: int) -> str:
    results = [*charger.functions, *charger.checks]
    numbers = [function_number(r) for r in results]
    words = [result_word(r) for r in results]
    number_width = max([1, *map(len, numbers)])
    word_width = max([len("Result"), *map(len, words)])
    natural_title = max(len("Function"), *(len(r.rule.title) + 2 for r in results))
    title_width = min(MAX_TITLE_WIDTH, natural_title)
    notes_width = width - (number_width + title_width + word_width + 6)
    side_by_side = notes_width >= MIN_NOTES_WIDTH
    if not side_by_side:
        # Notes below each result: the title may use what the three columns leave.
        title_width = max(12, min(natural_title, 56, width - number_width - word_width - 4))
        notes_width = width - NOTES_INDENT

    rows: list[tuple[str, list[str], str, list[str]]] = []
    for result, number, word in zip(results, numbers, words, strict=True):
        indent = "" if result.rule.function is not None else "  "
        names = textwrap.wrap(
            for_terminal(result.rule.title), title_width - len(indent), subsequent_indent="  "
        ) or [""]
        notes: list[str] = []
        for note in result_notes(result):  # a charger's text, escapes shown (not obeyed)
            notes.extend(textwrap.wrap(for_terminal(note), notes_width) or [""])
        rows.append((number, [indent + n for n in names], word, notes))

    widths = (number_width, title_width, word_width)

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
        identity = "  ".join(
            f"{label}: {for_terminal(value)}" for label, value in charger.identity.items()
        )
        out.extend(textwrap.wrap(identity, width, subsequent_indent="  "))
    out.append("")
    headers = ("#", "Function", "Result", "Notes" if side_by_side else "")
    out.append(line(headers))
    out.append(line(("-" * widths[0], "-" * widths[1], "-" * widths[2], "-" * len(headers[3]))))
    first_check = len(charger.functions)
    for index, (number, names, word, notes) in enumerate(rows):
        if index == first_check:
            out.append(line(("", "Protocol checks", "", "")))
        if side_by_side:
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
        else:
            for offset, name in enumerate(names):
                out.append(
                    line((number if offset == 0 else "", name, word if offset == 0 else "", ""))
                )
            out.extend(" " * NOTES_INDENT + note for note in notes)
    return "\n".join(out) + "\n"
