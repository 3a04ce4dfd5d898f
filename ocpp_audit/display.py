"""Text that came from the wire, made safe for each output an auditor reads.

A charger controls every byte of its frames and of its URL: its charge point id, vendor strings,
idTags, error descriptions and DataTransfer data reach the verdict table, ``query``'s table, logs,
Markdown, JUnit and HTML reports. The capture keeps them exactly as received; only their rendering
changes here, one function per output, so that a charger's string is always shown as the inert text
it is:

- :func:`for_terminal`: control characters (C0, DEL, C1: ESC, BEL, CSI, OSC ...), Unicode
  direction overrides and unpaired surrogates become visible escapes (``\\x1b``, ``\\u202e``), so an
  escape sequence never clears the screen, sets the title, paints a green "ALL PASS" or writes to
  the clipboard (OSC 52);
- :func:`for_markdown`: one inline text: HTML and Markdown syntax escaped, ``|`` kept inside its
  table cell, line breaks shown as ``\\n``, never a new heading;
- :func:`for_xml`: the characters XML 1.0 forbids (section 2.2, ``Char``) shown as visible escapes,
  so the file always parses with a strict parser (ElementTree escapes ``&``, ``<`` and ``>``).

HTML escaping stays with the HTML report's template engine (``textContent`` in the browser); JSON
output needs nothing (``json.dumps`` escapes every control character).
"""

from __future__ import annotations

import re

__all__ = ["for_markdown", "for_terminal", "for_xml", "visible_escape"]

# C0 controls, DEL, C1 controls; the Unicode bidirectional overrides and isolates (Trojan Source,
# CVE-2021-42574), the line and paragraph separators, BOM/zero-width no-break space; and unpaired
# surrogates (text decoded with errors="surrogateescape", or from a "\ud800" JSON escape).
_TERMINAL_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
    "\ud800-\udfff]"
)
# XML 1.0 section 2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Characters with a meaning in CommonMark or GitHub Flavored Markdown (tables, strikethrough),
# escaped with a backslash (CommonMark 2.4: "Any ASCII punctuation character may be backslash-
# escaped"); & < > become entities, so no HTML tag or entity of the charger's is ever parsed.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def visible_escape(char: str) -> str:
    """``\\x1b`` for ESC, ``\\u202e`` for RIGHT-TO-LEFT OVERRIDE: the Python escape of one
    character, which reads the same in every output and is never interpreted."""
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _escape_match(match: re.Match[str]) -> str:
    return visible_escape(match.group())


def for_terminal(text: str) -> str:
    """``text`` as a terminal shows it without interpreting anything in it."""
    return _TERMINAL_UNSAFE.sub(_escape_match, text)


def for_markdown(text: str) -> str:
    """``text`` as one inline Markdown text (a table cell or a line of prose)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", for_terminal(text))
    return "".join(_HTML_ENTITIES.get(char, char) for char in escaped)


def for_xml(text: str) -> str:
    """``text`` with every character XML 1.0 forbids shown as a visible escape."""
    return _XML_FORBIDDEN.sub(_escape_match, text)
