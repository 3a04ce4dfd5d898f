"""Reading text logs line by line: each frame is the balanced JSON array after its format's marker.

Shared by the text-log importers (ocpp-log, SteVe, evcc, MicroOcpp, libocpp). The contract:

- Lines are read one at a time; a line longer than :data:`MAX_LINE_CHARS` is cut there and the
  rest of it is counted, never held in memory.
- A frame starts at its marker and ends where its JSON brackets balance (string-aware). Text after
  it on the line (a terminal border, padding) is not part of it and is counted.
- A frame pretty-printed over several lines is joined until it balances, at most
  :data:`MAX_FRAME_LINES` lines and :data:`MAX_FRAME_CHARS` characters. A frame that never
  balances (the log cut it off, or the cap is reached) is imported as it stands, marked
  ``truncated in the log``, and counted; the next log line is never glued to it.
- Every line that yields nothing is counted in the summary with its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ocpp_audit.importers.common import TIMESTAMP, ImportSummary, Timestamps

MAX_LINE_CHARS = 16 * 1024 * 1024
MAX_FRAME_LINES = 10_000
MAX_FRAME_CHARS = 16 * 1024 * 1024
TRUNCATED = "truncated in the log"

# A log line starts with its time within its first few fields ("[INFO ] 2024-03-05 14:02:11,123",
# "2024-03-05T14:02:11.123Z INFO", evcc's "[ocpp  ] TRACE 2023/04/15 12:31:39"); anything else
# continues the line before it.
# A quote before the time means a JSON string holding one: a line of a pretty-printed frame.
LOG_HEADER = re.compile(r'^[^"]{0,60}?\d{4}[-/]\d{2}[-/]\d{2}(?:T|[ \t]+)\d{2}:\d{2}:\d{2}')

_DECODER = json.JSONDecoder()
_STRUCTURE = re.compile(r'["\[\]{}]')
_IN_STRING = re.compile(r'["\\]')


def spaced(pattern: str) -> str:
    """A regex source where each literal space matches any run of spaces or tabs (logs pasted from
    a web page have tabs between fields)."""
    return pattern.replace(" ", r"[ \t]+")


def iter_lines(path: Path) -> Iterator[tuple[str, bool]]:
    """(line without its end, whether it was cut at MAX_LINE_CHARS) for each line of a file;
    undecodable bytes are replaced, never fatal."""
    with path.open(encoding="utf-8", errors="replace", newline=None) as stream:
        while True:
            line = stream.readline(MAX_LINE_CHARS)
            if not line:
                return
            if line.endswith("\n"):
                yield line[:-1], False
                continue
            if len(line) < MAX_LINE_CHARS:  # the last line, without an end
                yield line, False
                return
            # an over-long line: keep its head, read the rest away in bounded pieces
            rest = stream.readline(MAX_LINE_CHARS)
            while rest and not rest.endswith("\n"):
                rest = stream.readline(MAX_LINE_CHARS)
            yield line, True


class Brackets:
    """String-aware JSON bracket depth, fed piece by piece; linear in the text fed."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def feed(self, text: str, start: int = 0) -> int | None:
        """Index just after the bracket that closes the outermost one, or None if still open."""
        position = start
        length = len(text)
        while position < length:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                    position += 1
                    continue
                match = _IN_STRING.search(text, position)
                if match is None:
                    return None
                position = match.end()
                if match.group() == "\\":
                    self.escaped = True
                else:
                    self.in_string = False
                continue
            match = _STRUCTURE.search(text, position)
            if match is None:
                return None
            position = match.end()
            char = match.group()
            if char == '"':
                self.in_string = True
            elif char in "[{":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    return position
        return None


def frame_end(text: str, start: int) -> int | None:
    """Where the JSON value starting at ``text[start]`` ends, or None if it does not close on this
    text. Valid JSON takes the C decoder's fast path."""
    try:
        return _DECODER.raw_decode(text, start)[1]
    except ValueError:
        return Brackets().feed(text, start)


@dataclass
class Found:
    """One frame or connection line of a log."""

    ts: int
    match: re.Match[str]
    frame: str | None  # None: a line about the connection
    truncated: bool = False


class _Pending:
    """A frame whose brackets are still open at the end of its line."""

    def __init__(self, ts: int, match: re.Match[str], head: str) -> None:
        self.ts, self.match = ts, match
        self.parts = [head]
        self.chars = len(head)
        self.brackets = Brackets()
        self.brackets.feed(head)

    def feed(self, line: str) -> int | None:
        self.parts.append(line)
        self.chars += len(line) + 1
        return self.brackets.feed(line)

    def full(self) -> bool:
        return len(self.parts) >= MAX_FRAME_LINES or self.chars >= MAX_FRAME_CHARS

    def found(self, last: str | None = None, *, truncated: bool) -> Found:
        if last is not None:
            self.parts[-1] = last
        return Found(self.ts, self.match, "\n".join(self.parts), truncated)


def log_frames(
    lines: Iterable[tuple[str, bool]],
    message: re.Pattern[str],
    timestamps: Timestamps,
    summary: ImportSummary,
    *,
    header: re.Pattern[str] = LOG_HEADER,
    untimed: bool = False,
) -> Iterator[Found]:
    """Each frame line and connection line of a log, in order.

    ``message`` is searched in each record's first line (a line where ``header`` is found); it has an
    empty group ``frame`` (or ``quoted``) where the frame starts (a match without either is a line
    about the connection). Its time is the first timestamp before the frame; with ``untimed``, a line without one is
    placed 1 µs after the line before it (logs that print no time, like a charger's console),
    otherwise it is counted as skipped.
    """
    pending: _Pending | None = None
    after = "other"  # what the current record is: "frame", "connection" or "other"
    last_ts: int | None = None
    for line, cut in lines:
        line = line.rstrip("\r")
        is_header = header.search(line) is not None or (untimed and message.search(line))
        if pending is not None:
            if not is_header:
                end = pending.feed(line)
                if cut:
                    summary.skip(f"rest of a line longer than {MAX_LINE_CHARS} characters")
                if end is not None:
                    _trailing(line[end:], summary, pending.match)
                    yield pending.found(line[:end], truncated=False)
                    pending = None
                    continue
                if not cut and not pending.full():
                    continue
                if pending.full():
                    summary.note(
                        f"frames cut at {MAX_FRAME_LINES} lines or {MAX_FRAME_CHARS} characters"
                    )
            summary.note(f"frames {TRUNCATED}, imported as malformed")
            yield pending.found(truncated=True)
            pending = None
            if not is_header:
                continue
        if not is_header:
            _skip_continuation(line, after, message, summary)
            continue
        if cut:
            summary.skip(f"rest of a line longer than {MAX_LINE_CHARS} characters")
        match = message.search(line)
        if match is None:
            summary.skip("blank line" if not line.strip() else "not an OCPP frame line")
            after = "other"
            continue
        start = _frame_start(match)
        stamp = TIMESTAMP.search(line, 0, match.end() if start is None else start)
        ts = timestamps.parse_match(stamp) if stamp is not None else None
        if stamp is not None and ts is None:
            summary.skip("frame line with an impossible time")
            after = "other"
            continue
        if ts is not None:
            last_ts = ts
        elif untimed:
            ts = last_ts = (last_ts if last_ts is not None else -1) + 1
            summary.note(
                "frames without a time in the log, placed 1 µs after the line before "
                "(from 1970-01-01 when no line before has a time)"
            )
        else:
            summary.skip("frame line without a timestamp")
            after = "other"
            continue
        if start is None:
            after = "connection"
            yield Found(ts, match, None)
            continue
        after = "frame"
        while start < len(line) and line[start] in " \t":
            start += 1
        if start >= len(line):
            summary.skip("frame line with an empty frame")
            continue
        if line[start] not in "[{":
            # not JSON at all: what the log shows is the frame, malformed
            yield Found(ts, match, line[start:].rstrip())
            continue
        end = frame_end(line, start)
        if end is not None:
            _trailing(line[end:], summary, match)
            yield Found(ts, match, line[start:end])
        elif cut:
            summary.note(f"frames {TRUNCATED}, imported as malformed")
            yield Found(ts, match, line[start:], truncated=True)
        else:
            pending = _Pending(ts, match, line[start:])
    if pending is not None:
        summary.note(f"frames {TRUNCATED}, imported as malformed")
        yield pending.found(truncated=True)


def _frame_start(match: re.Match[str]) -> int | None:
    """Where the frame starts: the end of the group ``frame`` (or ``quoted``: a frame an error line
    quotes), None when neither took part (a line about the connection)."""
    groups = match.groupdict()
    for name in ("frame", "quoted"):
        if groups.get(name) is not None:
            return match.end(name)
    return None


def _trailing(text: str, summary: ImportSummary, match: re.Match[str]) -> None:
    text = text.strip()
    if text and not (text == ")" and match.groupdict().get("quoted") is not None):
        summary.note("text after a frame on its line, not part of it")


def _skip_continuation(
    line: str, after: str, message: re.Pattern[str], summary: ImportSummary
) -> None:
    if not line.strip():
        summary.skip("blank line")
    elif message.search(line):
        summary.skip("frame line without a timestamp")
    elif after == "frame":
        summary.skip("line after a frame, not part of it")
    elif after == "connection":
        summary.skip("line after a connection line")
    else:
        summary.skip("not an OCPP frame line")
