"""Flow files saved by mitmproxy (``mitmdump -w FILE``, or File > Save in mitmweb).

Read with mitmproxy's own ``FlowReader`` (imported only for this format). Each WebSocket flow is one
connection: an ``open`` row at the handshake (path, subprotocols, client address, Basic-auth user,
TLS), every message with its timestamp and direction (``from_client``: ``cp_to_cs``), and a
``close`` row with the close code and the side that closed, when the flow ended. Flows that are
not WebSockets (plain HTTP) are counted as skipped.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ocpp_audit.capture.connection import charge_point_id_from_path
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.importers.common import CaptureBuilder, ImportFileError, LogEntry, Timestamps

# RFC 6455 7.1.5: 1006 when the connection closed without a close frame.
ABNORMAL_CLOSURE = 1006


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _address(address: tuple | None) -> str | None:
    if not address:
        return None
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every WebSocket flow of a mitmproxy flow file to ``builder``."""
    try:
        from mitmproxy import http, io
        from mitmproxy.exceptions import FlowReadException
    except ImportError as error:  # an optional extra
        raise ImportFileError(
            f"--format mitmproxy needs the mitmproxy extra: pip install 'ocpp-audit[mitmproxy]' "
            f"({error})"
        ) from None

    summary = builder.summary
    with path.open("rb") as stream:
        try:
            for flow in io.FlowReader(stream).stream():
                if not isinstance(flow, http.HTTPFlow) or flow.websocket is None:
                    summary.skip("flow that is not a WebSocket")
                    continue
                _add_flow(flow, builder)
        except FlowReadException as error:
            raise ImportFileError(f"{path}: not a mitmproxy flow file ({error})") from None


def _add_flow(flow: object, builder: CaptureBuilder) -> None:
    request, response, websocket = flow.request, flow.response, flow.websocket  # type: ignore[attr-defined]
    charge_point_id = charge_point_id_from_path(request.path)
    opened_at = response.timestamp_end if response and response.timestamp_end else None
    opened_at = opened_at or request.timestamp_start
    key = flow.id  # type: ignore[attr-defined]
    chosen = response.headers.get("sec-websocket-protocol") if response else None
    offered = ",".join(request.headers.get_all("sec-websocket-protocol"))
    builder.add(
        LogEntry(
            _us(opened_at),
            charge_point_id,
            "open",
            connection_key=key,
            path=request.path,
            subprotocols_offered=[p.strip() for p in offered.split(",") if p.strip()],
            subprotocol=chosen or None,
            remote_address=_address(flow.client_conn.peername),  # type: ignore[attr-defined]
            authorization=request.headers.get("authorization"),
            tls=bool(flow.client_conn.tls_established),  # type: ignore[attr-defined]
        )
    )
    last = opened_at
    for message in websocket.messages:
        data: str | bytes = message.content
        if message.is_text:
            with contextlib.suppress(UnicodeDecodeError):
                data = message.content.decode("utf-8")
        last = max(last, message.timestamp)
        builder.add(
            LogEntry(
                _us(message.timestamp),
                charge_point_id,
                direction=Direction.CP_TO_CS if message.from_client else Direction.CS_TO_CP,
                data=data,
                connection_key=key,
            )
        )
    if websocket.timestamp_end is not None or websocket.close_code is not None:
        closed_by = None
        if websocket.closed_by_client is not None:
            closed_by = ClosedBy.CHARGER if websocket.closed_by_client else ClosedBy.BACKEND
        builder.add(
            LogEntry(
                _us(websocket.timestamp_end or last),
                charge_point_id,
                "close",
                connection_key=key,
                close_code=websocket.close_code or ABNORMAL_CLOSURE,
                close_reason=websocket.close_reason or None,
                closed_by=closed_by,
            )
        )
