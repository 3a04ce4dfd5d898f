"""evcc's OCPP log (evcc-io/evcc, built on lorenzodonini/ocpp-go), as ``evcc`` prints it or as
journald keeps it::

    [ocpp  ] TRACE 2023/04/15 12:31:39 sent JSON message to ABL_10022482: [2,"2879576313","TriggerMessage",{...}]
    [ocpp  ] TRACE 2023/04/15 12:31:40 received JSON message from ABL_10022482: [3,"2879576313",{...}]
    Aug 15 11:13:01 host evcc[507665]: [ocpp ] TRACE 2023/08/15 11:13:01 send ABL_10022482: [2,...]
    Aug 15 11:13:01 host evcc[507665]: [ocpp ] TRACE 2023/08/15 11:13:01 recv ABL_10022482: [3,...]

ocpp-go logs ``sent JSON message to ID: FRAME`` / ``received JSON message from ID: FRAME``; newer evcc
shortens them to ``send ID:`` / ``recv ID:`` (charger/ocpp/cs_log.go). evcc is the central system, so
``sent``/``send`` is ``cs_to_cp``. Its times are local, without a zone: pass ``--timezone``. The
journald prefix (month names in the host's language) is not read: evcc's own time is on the line.

``charge point connected: ID`` / ``charge point disconnected: ID`` (charger/ocpp/cs.go) are the
connection's open and close. An ocpp-go error that quotes a frame (``ocpp message (UNIQUE_ID): CODE -
DESCRIPTION ([2,...])``) counts as that frame, unless the frame before it on that charger was the
same text; the error is noted in the summary.
"""

from __future__ import annotations

import re
from pathlib import Path

from ocpp_audit.capture.schema import Direction
from ocpp_audit.importers.common import CaptureBuilder, LogEntry, Timestamps
from ocpp_audit.importers.lines import TRUNCATED, iter_lines, log_frames

_TAG = r"\[ocpp[ \t]*\][ \t]+[A-Z]+[ \t]+\d{4}/\d{2}/\d{2}[ \t]+\d{2}:\d{2}:\d{2}(?:\.\d+)?[ \t]+"
HEADER = re.compile(r"\[[\w-]+[ \t]*\][ \t]+[A-Z]+[ \t]+\d{4}/\d{2}/\d{2}[ \t]")
LINE = re.compile(
    _TAG
    + r"(?:(?P<verb>sent[ \t]+JSON[ \t]+message[ \t]+to|received[ \t]+JSON[ \t]+message[ \t]+from"
    r"|send|sent|recv)[ \t]+(?P<charge_point_id>\S+?):(?=[ \t])(?P<frame>)"
    r"|(?:unknown[ \t]+)?charge[ \t]+point[ \t]+(?P<event>connected|disconnected)"
    r"(?:,[ \t]*registering)?:[ \t]+(?P<event_charger>\S+)"
    r"|(?:.*?)ocpp[ \t]+message[ \t]+\((?P<error_id>[^)]*)\):[ \t]*(?P<error>.*?)[ \t]*\((?=\[)(?P<quoted>))"
)


def _direction(verb: str) -> Direction:
    return Direction.CS_TO_CP if verb.startswith(("sent", "send")) else Direction.CP_TO_CS


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every frame, and every connection open and close, of an evcc log to ``builder``."""
    summary = builder.summary
    last_frame: dict[str, str] = {}  # charger -> its last frame, to tell a quoted one apart
    charger_of: dict[str, str] = {}  # unique id -> charger, for errors that name no charger
    for found in log_frames(iter_lines(path), LINE, timestamps, summary, header=HEADER):
        match = found.match
        if found.frame is None:
            charge_point_id = match["event_charger"]
            kind = "open" if match["event"] == "connected" else "close"
            builder.add(LogEntry(found.ts, charge_point_id, kind))  # type: ignore[arg-type]
            continue
        parse_error = TRUNCATED if found.truncated else None
        if match["verb"]:
            charge_point_id = match["charge_point_id"]
            direction: Direction | None = _direction(match["verb"])
        else:
            charge_point_id = charger_of.get(match["error_id"])
            if charge_point_id is None and len(last_frame) == 1:
                (charge_point_id,) = last_frame  # the one charger of this log
            direction = None  # inferred from the frame
            if charge_point_id and last_frame.get(charge_point_id) == found.frame:
                summary.note("ocpp-go errors quoting a frame already imported")
                continue
            code = (match["error"] or "error").split(" - ")[0]
            summary.note(f"frames taken from an ocpp-go error line ({code})")
        unique_id = _unique_id(found.frame)
        if charge_point_id and unique_id:
            charger_of[unique_id] = charge_point_id
        if charge_point_id:
            last_frame[charge_point_id] = found.frame
        builder.add(
            LogEntry(
                found.ts,
                charge_point_id,
                direction=direction,
                data=found.frame,
                parse_error=parse_error,
            )
        )


_UNIQUE_ID = re.compile(r'^\[\s*\d+\s*,\s*"((?:[^"\\]|\\.)*)"')


def _unique_id(frame: str) -> str | None:
    match = _UNIQUE_ID.match(frame)
    return match[1] if match else None
