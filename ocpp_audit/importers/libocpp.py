"""EVerest libocpp's message log (EVerest/libocpp), the charger's side of the connection.

libocpp's ``MessageLogging`` (lib/ocpp/common/ocpp_logging.cpp, ``write_log_to_file``) writes each
entry as a header line, the message, and a blank line::

    << ts << ": " << origin + ">" + target << " " << (ChargePoint or SYS: message_type) << " "
    << (CentralSystem: message_type) << "\n" << json_str << "\n\n"

with ``ts`` from ``DateTime().to_rfc3339()`` (``%FT%TZ`` at milliseconds, UTC), origin
``ChargePoint``, ``CentralSystem`` or ``SYS``. So ``ocpp.log`` reads::

    2024-03-05T13:02:11.123Z: ChargePoint>CentralSystem BootNotification
    [
      2,
      ...
    ]

    2024-03-05T13:02:11.456Z: CentralSystem>ChargePoint  BootNotificationResponse
    ...

In ``ocpp.log`` the message is ``json::parse(...).dump(2)``: re-serialised by nlohmann::json with
its keys sorted, not the bytes of the wire (said so in the summary). With ``log_raw`` libocpp also
writes ``ocpp_raw.log``, where ``raw()`` puts the frame as it was sent or received in the
header's message_type place (``TS: ChargePoint>CentralSystem [2,...] ``, then two blank lines);
that file is byte-exact, import it when you have it. ``SYS`` lines ``Connected`` /
``Disconnected`` (lib/ocpp/common/websocket/websocket.cpp) are the connection's open and close;
other ``SYS`` lines (``Connecting``, ``Reconnecting``, ...) are counted. The log names no charger:
give it with ``--charger``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import CaptureBuilder, LogEntry, Timestamps
from ocpp_audit.importers.lines import (
    MAX_FRAME_CHARS,
    MAX_FRAME_LINES,
    TRUNCATED,
    Brackets,
    frame_end,
    iter_lines,
)

HEADER = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?):[ \t]+"
    r"(?P<origin>ChargePoint|CentralSystem|SYS)>(?P<target>\w*)(?P<rest>.*)$"
)
DIRECTIONS = {"ChargePoint": Direction.CP_TO_CS, "CentralSystem": Direction.CS_TO_CP}
REFORMATTED = (
    "frames as libocpp re-serialised them (ocpp.log), not the wire bytes: use ocpp_raw.log"
)


class _Entry:
    def __init__(self, ts: int, origin: str) -> None:
        self.ts, self.origin = ts, origin
        self.parts: list[str] = []
        self.brackets: Brackets | None = None
        self.chars = 0


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame, and every connection open and close, of a libocpp message log."""
    summary = builder.summary

    def add(entry: _Entry, frame: str, *, truncated: bool) -> None:
        if "\n" in frame:
            summary.note(REFORMATTED)
        builder.add(
            LogEntry(
                entry.ts,
                None,
                direction=DIRECTIONS[entry.origin],
                data=frame,
                parse_error=TRUNCATED if truncated else None,
            )
        )

    def cut_off(entry: _Entry) -> None:
        summary.note(f"frames {TRUNCATED}, imported as malformed")
        add(entry, "\n".join(entry.parts), truncated=True)

    waiting: _Entry | None = None  # a message header whose frame is on the lines below
    for line, cut in iter_lines(path):
        line = line.rstrip("\r")
        if cut:
            summary.skip("rest of a line longer than the line limit")
        header = HEADER.match(line)
        if header is not None:
            if waiting is not None and waiting.brackets is not None:
                cut_off(waiting)
            elif waiting is not None:
                summary.skip("message header with no message below it")
            waiting = None
            stamp = timestamps.parse(header["ts"])
            if stamp is None:
                summary.skip("libocpp line with an unreadable time")
                continue
            origin, rest = header["origin"], header["rest"].strip()
            if origin == "SYS":
                if rest in ("Connected", "Disconnected"):
                    kind = "open" if rest == "Connected" else "close"
                    builder.add(LogEntry(stamp, None, kind))  # type: ignore[arg-type]
                else:
                    summary.skip("libocpp SYS line that is not a connection change")
                continue
            entry = _Entry(stamp, origin)
            if rest[:1] in ("[", "{"):  # ocpp_raw.log: the frame is on the header line
                start = line.index(rest[0], header.start("rest"))
                end = frame_end(line, start)
                if end is None:
                    entry.parts = [line[start:]]
                    cut_off(entry)
                else:
                    if line[end:].strip():
                        summary.note("text after a frame on its line, not part of it")
                    add(entry, line[start:end], truncated=False)
                continue
            waiting = entry
            continue
        if waiting is None:
            summary.skip("blank line" if not line.strip() else "not an OCPP frame line")
            continue
        if waiting.brackets is None:
            if not line.strip():
                summary.skip("blank line")
                continue
            if line.lstrip()[:1] not in ("[", "{"):
                # ocpp_raw.log's empty message part, or text that is not JSON: take it as it is
                add(waiting, line, truncated=False)
                waiting = None
                continue
            waiting.brackets = Brackets()
        waiting.parts.append(line)
        waiting.chars += len(line) + 1
        end = waiting.brackets.feed(line)
        if end is not None:
            if line[end:].strip():
                summary.note("text after a frame on its line, not part of it")
            waiting.parts[-1] = line[:end]
            add(waiting, "\n".join(waiting.parts), truncated=False)
            waiting = None
        elif cut or len(waiting.parts) >= MAX_FRAME_LINES or waiting.chars >= MAX_FRAME_CHARS:
            cut_off(waiting)
            waiting = None
    if waiting is not None and waiting.brackets is not None:
        cut_off(waiting)
    elif waiting is not None:
        summary.skip("message header with no message below it")
