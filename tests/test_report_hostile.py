"""Reports of captures whose chargers send hostile strings, in every format.

A charger controls its charge point id, its vendor strings, the idTags it presents, its error
descriptions and its DataTransfer data, and the rules quote them in their details. Whatever they
hold (escape sequences, HTML, Markdown, characters XML forbids, very long text), each format still
holds together: JUnit parses with a strict XML parser, JSON parses, the Markdown tables keep one row
per rule, the terminal table carries no raw control character, and every format shows the verdicts
the rules produced. The capture itself keeps the strings as received (the JSON report shows them).
"""

from __future__ import annotations

import json
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from ocpp_audit.analyser.engine import analyse
from ocpp_audit.analyser.model import FAIL, NOT_OBSERVED, Report
from ocpp_audit.analyser.render import FORMATS, render
from ocpp_audit.analyser.render.common import function_number, result_word, summary
from ocpp_audit.capture.schema import Direction
from ocpp_audit.display import for_terminal
from tests.capture_builder import CaptureBuilder

HOSTILE_PIECES = [
    "\x1b[2J",
    "\x1b]0;owned\x07",
    "\x1b[32mALL PASS\x1b[0m",
    "\x9b31m",  # C1 CSI
    "\u202eevil",
    "<script>alert(1)</script>",
    "<!-- ",
    "\n## Injected heading\n",
    "\n| 99 | Forged | row | PASS |\n",
    "| PASS |",
    "`code`",
    "**bold** _em_ ~~x~~",
    "[link](javascript:alert(1))",
    "&amp; &#0; ]]>",
    "\x01\x08\x0b\x0c\x1f\x7f\ufffe",
    "\r\n\t",
    "Ü-22 ✓",
    "x" * 300,
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(st.characters(codec="utf-8"), max_size=12)),
    min_size=1,
    max_size=5,
).map("".join)

# ESC, BEL, every other C0 control but the table's own newline, DEL and the C1 controls.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def hostile_capture(capture_dir: Path, cp_id: str, vendor: str, id_tag: str, text: str) -> None:
    capture = CaptureBuilder()
    for charge_point_id in ("CP-plain", cp_id):
        cp = capture.charger(charge_point_id)
        cp.connect()
        cp.boot(vendor=vendor, model=text, serial=text, firmware=vendor)
        cp.status(0, "Available")
        cp.status(1, "Faulted", "OtherError", info=text, vendor_error_code=vendor)
        cp.wait(30).authorize(id_tag)
        cp.authorize(id_tag + "-blocked", status="Blocked")
        cp.cp("DataTransfer", {"vendorId": vendor, "messageId": text, "data": text}, {})
        unique_id = cp.call(Direction.CS_TO_CP, "GetConfiguration", {"key": [text]})
        cp.wait(0.05).error(Direction.CP_TO_CS, unique_id, "InternalError", description=text)
        cp.cs(
            "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Rejected"}
        )
        cp.wait(60).heartbeat()
    capture.write(capture_dir)


def assert_json(report: Report, text: str) -> None:
    document = json.loads(text)
    shown = {
        (charger["charge_point_id"], result["rule"]): result["verdict"]
        for charger in document["chargers"]
        for result in [*charger["functions"], *charger["checks"]]
    }
    assert shown == report.verdicts()


def assert_junit(report: Report, text: str) -> None:
    root = ET.fromstring(text)  # expat: strict XML 1.0
    suites = root.findall("testsuite")
    assert len(suites) == len(report.chargers)
    for suite, charger in zip(suites, report.chargers, strict=True):
        cases = suite.findall("testcase")
        assert len(cases) == len(charger.results)
        for case, result in zip(cases, charger.results, strict=True):
            assert case.get("name", "").endswith(f"[{result.rule.id}]")
            assert (case.find("failure") is not None) == (result.verdict == FAIL)
            assert (case.find("skipped") is not None) == (result.verdict == NOT_OBSERVED)


def assert_markdown(report: Report, text: str) -> None:
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables: list[list[list[str]]] = []
    headings = [t for t in tokens if t.type == "heading_open"]
    assert [t.tag for t in headings] == ["h1"] + ["h2"] * len(report.chargers)
    rows: list[list[str]] | None = None
    cells: list[str] | None = None
    in_body = False
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            rows = []
            tables.append(rows)
        elif token.type == "tbody_open":
            in_body = True
        elif token.type == "tbody_close":
            in_body = False
        elif token.type == "tr_open" and in_body:
            cells = []
            assert rows is not None
            rows.append(cells)
        elif token.type == "td_open" and cells is not None:
            cells.append(tokens[index + 1].content)
    assert len(tables) == len(report.chargers)
    for rows_of_table, charger in zip(tables, report.chargers, strict=True):
        assert len(rows_of_table) == len(charger.results)
        for cells_of_row, result in zip(rows_of_table, charger.results, strict=True):
            assert len(cells_of_row) == 4
            assert cells_of_row[0] == function_number(result)
            assert cells_of_row[3].startswith(result_word(result))


def assert_table(report: Report, text: str) -> None:
    assert not RAW_CONTROL.search(text)
    lines = text.splitlines()
    for charger in report.chargers:
        heading = f"Charger {for_terminal(charger.charge_point_id)}  ({summary(charger)})"
        assert heading in lines
        start = lines.index(heading)
        for result in charger.results:
            indent = "" if result.rule.function is not None else "  "
            # The title's first line (its width follows the terminal's), then the verdict.
            title = indent + result.rule.title[:12]
            number = re.escape(function_number(result))
            verdict_line = re.compile(
                rf"^ *{number} +{re.escape(title)}.* +{re.escape(result_word(result))}(  |$)"
            )
            assert any(verdict_line.match(line) for line in lines[start:]), result.rule.id


CHECKS = {
    "json": assert_json,
    "junit": assert_junit,
    "markdown": assert_markdown,
    "table": assert_table,
}


@given(cp_id=hostile_text, vendor=hostile_text, id_tag=hostile_text, text=hostile_text)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_hostile_charger_text_in_every_format(
    cp_id: str, vendor: str, id_tag: str, text: str
) -> None:
    with tempfile.TemporaryDirectory() as work:
        capture_dir = Path(work) / "capture"
        hostile_capture(capture_dir, cp_id, vendor, id_tag, text)
        report = analyse([capture_dir])
        # The capture keeps the charger's id as received.
        assert [c.charge_point_id for c in report.chargers] == sorted({"CP-plain", cp_id})
        for (
            fmt
        ) in FORMATS:  # html too: it renders (its template escapes, tested in test_html_report)
            shown = render(report, fmt)
            if fmt in CHECKS:
                CHECKS[fmt](report, shown)
