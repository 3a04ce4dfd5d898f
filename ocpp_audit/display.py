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

import datetime
import json
import logging
import re

__all__ = [
    "LOGGABLE_HEADERS",
    "SafeLogFilter",
    "for_markdown",
    "for_terminal",
    "for_xml",
    "visible_escape",
    "wire_logger",
]

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


# At DEBUG, websockets logs every handshake header ("> %s: %s") and every frame ("> %s"). Values of
# headers outside this list (Authorization, cookies, API keys under any name) are logged as
# <redacted>, and frames by type and size only: no credential, and no idTag, in the logs (the
# capture is where frames are kept, pseudonymised if asked).
LOGGABLE_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "user-agent",
        "server",
        "date",
        "content-length",
        "content-type",
        "sec-websocket-key",
        "sec-websocket-accept",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)


class _RedactWire(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in ("> %s: %s", "< %s: %s") and isinstance(record.args, tuple):
            name = str(record.args[0])
            if name.lower() not in LOGGABLE_HEADERS:
                record.args = (name, "<redacted>")
        elif record.msg in ("> %s", "< %s") and isinstance(record.args, tuple):
            frame = record.args[0]
            opcode, data = getattr(frame, "opcode", None), getattr(frame, "data", None)
            if opcode is not None and data is not None:  # a websockets Frame
                record.args = (f"{getattr(opcode, 'name', opcode)} [{len(data)} bytes]",)
        return True


def wire_logger(name: str) -> logging.Logger:
    """The logger to give ``websockets`` (``serve``/``connect`` ``logger=``): its DEBUG lines keep
    header names and frame sizes, never a credential or a frame's content."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _RedactWire) for f in logger.filters):
        logger.addFilter(_RedactWire())
    return logger


# The ``ocpp`` library logs every frame it sends and receives at INFO, and the request it failed on
# at ERROR: message text that may hold idTags. Those lines keep their shape, with the frame's size.
_OCPP_LIBRARY_FRAME_LINES = frozenset(
    {
        "%s: send %s",
        "%s: receive message %s",
        "Error while handling request '%s'",
        "Ignoring response with unknown unique id: %s",
        "Received a CALLError: %s'",
    }
)


class SafeLogFilter(logging.Filter):
    """For the handlers that print logs: frames the ``ocpp`` library logs shown by size only, and
    every message made terminal-safe (a charge point id is the charger's text: an escape sequence in
    it must not reach the auditor's terminal as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _OCPP_LIBRARY_FRAME_LINES and isinstance(record.args, tuple):
            *kept, frame = record.args
            record.args = (*kept, f"<frame, {len(str(frame))} characters>")
        message = record.getMessage()
        safe = for_terminal(message)  # a newline too: a charger's id must not forge a log line
        if safe != message:
            record.msg, record.args = safe, ()
        return True


class JsonLogFormatter(logging.Formatter):
    """``--log-format json``: one JSON object per line for log collectors (Loki, Elasticsearch,
    CloudWatch): ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (the message, already
    made safe by SafeLogFilter), ``charge_point_id`` when the line is about one charger, and
    ``exception`` with the traceback text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        document: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        charge_point_id = getattr(record, "charge_point_id", None)
        if charge_point_id is not None:
            document["charge_point_id"] = for_terminal(str(charge_point_id))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)
