"""The capture's columns: the one place that names them, their Arrow types and meanings.

A capture is a folder of Parquet parts, hive-partitioned by UTC date::

    <capture>/frames/date=YYYY-MM-DD/part-<time>-<recorder>-<n>.parquet

one row per event, sorted by charger then ``ts`` within a part. The writer, the analyser's views, the docs and the
tests all read the column list from here. ``SCHEMA_VERSION`` is stored in every part's key-value
metadata; a reader refuses a major version it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

from ocpp_audit import __version__
from ocpp_audit.protocol.constants import Direction  # noqa: F401 (the capture's direction column)

# 1.1: ``ocpp_version``; 1.2: ``backend`` (mirrors); 1.3: ``answers_seq`` and ``reused_id`` (the
# recorder's pairing of CALLs and answers); 1.4: ``schema_error`` (each payload's schema verdict,
# judged as the part is sealed). A minor version adds columns only; a part of an older minor lacks
# them, and readers take them as null there (``Column.since``).
SCHEMA_VERSION = "1.4"
SCHEMA_MAJOR = 1

# Key-value metadata keys in each Parquet part.
META_SCHEMA_VERSION = b"ocpp_audit.schema_version"
META_PRODUCT_VERSION = b"ocpp_audit.product_version"
# Which checker gave the part's schema_error verdicts (protocol.schema_validation.checker_fingerprint).
META_SCHEMA_CHECK = b"ocpp_audit.schema_check"

FRAMES_DIR = "frames"
UPLOADS_DIR = "diagnostics"  # files chargers uploaded (recorder endpoints): never read as parts
PARTITION_KEY = "date"


class Event(StrEnum):
    """What a row records."""

    OPEN = "open"  # a charger's WebSocket connection was set up end to end
    MESSAGE = "message"  # one WebSocket message, either direction
    CLOSE = "close"  # the connection ended
    PING = "ping"  # a WebSocket ping the engine saw
    PONG = "pong"
    REFUSED = "refused"  # the handshake failed: the backend refused it or could not be reached
    GAP = "gap"  # frames forwarded but not recorded (write failure); count in ``detail``
    # A file arrived on a built-in endpoint (diagnostics); name and size in ``detail``.
    UPLOAD = "upload"


class ClosedBy(StrEnum):
    CHARGER = "charger"
    BACKEND = "backend"
    RECORDER = "recorder"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    meaning: str
    # The schema minor version that added the column: parts of an older minor lack it, and the
    # analyser reads it as null there (or derives it, see capture/parts.py).
    since: str = "1.0"


COLUMNS: tuple[Column, ...] = (
    Column("event", pa.string(), "open, message, close, ping, pong, refused, gap or upload"),
    Column("ts", pa.timestamp("us", tz="UTC"), "recorder's clock when the event happened (UTC)"),
    Column("connection_id", pa.string(), "one WebSocket connection of one charger, unique"),
    Column("charge_point_id", pa.string(), "last non-empty path segment of the URL, decoded"),
    Column(
        "direction", pa.string(), "cp_to_cs (charger to backend) or cs_to_cp; null on open/close"
    ),
    Column("seq", pa.int64(), "order of the event within its connection, from 0"),
    Column("raw", pa.string(), "the text frame exactly as received"),
    Column("raw_binary", pa.binary(), "a binary frame exactly as received (raw is null then)"),
    Column(
        "message_type",
        pa.int8(),
        "2 CALL, 3 CALLRESULT, 4 CALLERROR, 5 CALLRESULTERROR, 6 SEND (2.1); null if unreadable",
    ),
    Column("unique_id", pa.string(), "the OCPP-J unique id"),
    Column("action", pa.string(), "CALL action; for answers, the action of the CALL answered"),
    Column("payload", pa.string(), "payload (or CALLERROR details) as JSON text, as on the wire"),
    Column("error_code", pa.string(), "CALLERROR errorCode"),
    Column("error_description", pa.string(), "CALLERROR errorDescription"),
    Column("parse_error", pa.string(), "why the frame is not valid OCPP-J; null when well formed"),
    Column("injected", pa.bool_(), "sent by ocpp-audit (active mode), or a charger's answer to it"),
    Column("path", pa.string(), "open/refused: request path and query of the charger's URL"),
    Column("subprotocols_offered", pa.string(), "open/refused: Sec-WebSocket-Protocol offered"),
    Column("subprotocol", pa.string(), "open: the subprotocol the backend chose, null for none"),
    Column("remote_address", pa.string(), "open/refused: charger's address, host:port"),
    Column("auth_user", pa.string(), "open/refused: Basic-auth user name (never the password)"),
    Column("tls", pa.bool_(), "open/refused: the charger connected with TLS (wss)"),
    Column("http_status", pa.int32(), "refused: HTTP status given to the charger (401, 502, ...)"),
    Column("close_code", pa.int32(), "close: WebSocket close code"),
    Column("close_reason", pa.string(), "close: WebSocket close reason"),
    Column("closed_by", pa.string(), "close: charger, backend or recorder"),
    Column("detail", pa.string(), "other event data as JSON text (gap count, upload name/size)"),
    Column(
        "ocpp_version",
        pa.string(),
        "1.6, 2.0.1 or 2.1, from the connection's negotiated subprotocol; null for none",
        since="1.1",
    ),
    Column(
        "backend",
        pa.string(),
        "null for the primary backend (the one the charger talks to); a mirror's name for the "
        "rows of its read-only copy of the connection",
        since="1.2",
    ),
    # The recorder pairs each answer with its CALL as it forwards them (its table of CALLs in
    # flight), so that an analysis joins on it instead of sorting every message to pair them again.
    Column(
        "answers_seq",
        pa.int64(),
        "CALLRESULT/CALLERROR: the seq of the CALL it answers (same connection); -1 when it "
        "answers no CALL in flight; null on other rows and in parts before schema 1.3",
        since="1.3",
    ),
    Column(
        "reused_id",
        pa.bool_(),
        "CALL: its unique id was already in flight the same way (that earlier CALL unanswered); "
        "null on other rows and in parts before schema 1.3",
        since="1.3",
    ),
    # Judged once, as the part is sealed, so that an analysis reads verdicts instead of validating
    # every payload again (the protocol-schema rule; ocpp_audit/protocol/schema_validation.py).
    Column(
        "schema_error",
        pa.string(),
        "message rows the protocol-schema rule judges: '' when the payload is valid against its "
        "OCPP JSON schema, else why not; null on other rows, in parts before schema 1.4, and "
        "where the part was sealed without judging",
        since="1.4",
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)


def arrow_schema() -> pa.Schema:
    """The Arrow schema of a Parquet part, with the version metadata."""
    return pa.schema(
        [pa.field(column.name, column.type) for column in COLUMNS],
        metadata={
            META_SCHEMA_VERSION: SCHEMA_VERSION.encode(),
            META_PRODUCT_VERSION: __version__.encode(),
        },
    )


def empty_row() -> dict[str, object]:
    """A row with every column present and null, to fill in."""
    return dict.fromkeys(COLUMN_NAMES)


def schema_major(version: str) -> int | None:
    """The major number of a stored schema version, or None when it is not a version string."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None
