"""Charger text made safe per output (ocpp_audit.display): property tests with hostile strings."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from ocpp_audit.display import for_markdown, for_terminal, for_xml

# Escape sequences and markup a charger may send, mixed with any text at all (surrogates included).
HOSTILE_PIECES = [
    "\x1b[2J",
    "\x1b[H",
    "\x1b]0;owned\x07",
    "\x1b[32mALL PASS\x1b[0m",
    "\x1b]52;c;ZWNobyBvd25lZA==\x07",
    "\x9b31m",  # C1 CSI
    "\u202eevil",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "\n## Injected heading\n",
    "| PASS | PASS |",
    "`code`",
    "[link](javascript:alert(1))",
    "&amp;",
    "\x00\x01\x0b\x0c\ufffe\uffff",
    "\ud800",
    "\r\n",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=20)), max_size=8
).map("".join)

TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@given(hostile_text)
def test_terminal_text_has_no_control_character(text: str) -> None:
    shown = for_terminal(text)
    assert not TERMINAL_UNSAFE.search(shown)
    shown.encode("utf-8")  # no unpaired surrogate left to crash a writer


def test_terminal_text_keeps_plain_text_and_shows_escapes() -> None:
    assert for_terminal("Vendor GmbH, Modell Ü-22") == "Vendor GmbH, Modell Ü-22"
    assert for_terminal("\x1b[32mALL PASS\x1b[0m") == "\\x1b[32mALL PASS\\x1b[0m"
    assert for_terminal("a\nb\u202e") == "a\\x0ab\\u202e"


@given(hostile_text, hostile_text)
@settings(max_examples=200)
def test_xml_text_always_parses_strictly(text: str, attribute: str) -> None:
    element = ET.Element("testcase", name=for_xml(attribute))
    element.text = for_xml(text)
    document = ET.tostring(element, encoding="unicode")
    parsed = ET.fromstring(document)  # expat: a strict XML 1.0 parser
    assert parsed.tag == "testcase"


def test_xml_text_shows_forbidden_characters() -> None:
    assert for_xml("a\x01b\tc\ufffe") == "a\\x01b\tc\\ufffe"


_md = MarkdownIt("commonmark").enable("table")


@given(hostile_text)
@settings(max_examples=200)
def test_markdown_cell_stays_one_inline_text(text: str) -> None:
    cell = for_markdown(text)
    table = f"| id | detail |\n| --- | --- |\n| CP1 | {cell} |\n| CP2 | ok |\n"
    tokens = _md.parse(table)
    kinds = [token.type for token in tokens]
    assert kinds.count("tr_open") == 3  # header and two rows: the charger's text made none
    assert kinds.count("td_open") == 4  # two cells a row: its "|" split no cell
    assert "heading_open" not in kinds and "html_inline" not in kinds and "html_block" not in kinds
    assert "link_open" not in kinds and "code_inline" not in kinds
    html = _md.render(table)
    assert "<img" not in html and "<script" not in html


def test_markdown_prose_gets_no_heading_from_a_charger() -> None:
    vendor = for_markdown("x\n## Injected heading")
    rendered = _md.render(f"Vendor: {vendor}\n")
    assert "<h2>" not in rendered
    assert "Injected heading" in rendered


def test_log_lines_are_terminal_safe_and_frames_shown_by_size() -> None:
    import logging

    from ocpp_audit.display import SafeLogFilter

    def shown(msg: str, *args: object) -> str:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, msg, args, None)
        SafeLogFilter().filter(record)
        return record.getMessage()

    evil = "CP\x1b[2J\x1b]0;owned\x07\n2026-01-01 INFO forged line"
    assert shown("%s: connected", evil) == (
        "CP\\x1b[2J\\x1b]0;owned\\x07\\x0a2026-01-01 INFO forged line: connected"
    )
    frame = '[2,"1","Authorize",{"idTag":"04A2B3C4"}]'
    assert shown("%s: send %s", "CP1", frame) == f"CP1: send <frame, {len(frame)} characters>"
