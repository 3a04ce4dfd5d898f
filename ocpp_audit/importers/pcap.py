"""Packet captures (pcap, pcapng) of plaintext ``ws://`` OCPP, as tcpdump or Wireshark write them.

Read with dpkt (a small pure-Python packet library; the ``pcap`` extra). Each TCP stream is one
connection: its segments are put back in order (retransmissions dropped, gaps counted), the HTTP
upgrade is read (path -> charge point id, subprotocols offered and chosen, Basic-auth user), then
every WebSocket frame is parsed with the ``websockets`` library's sans-I/O frame parser: client
frames unmasked, permessage-deflate undone when it was negotiated, fragments joined into one
message. Times are the capture's: a message's is that of the segment that completed it. The stream
gives the ``open`` row (at the 101 answer; a ``refused`` row with the HTTP status when the
backend answered otherwise) and the ``close`` row (at the first close frame, with its
code and the side that sent it; at the FIN or RST with code 1006 when there was none).

Encrypted ``wss://`` streams cannot be read from a capture: they are counted, and the summary says
to record them with ``ocpp-audit record`` in front of the backend instead.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ocpp_audit.capture.connection import charge_point_id_from_path
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.importers.common import CaptureBuilder, ImportFileError, LogEntry, Timestamps

# RFC 6455 7.1.5: 1006 when the connection closed without a close frame.
ABNORMAL_CLOSURE = 1006
# Out-of-order bytes held per direction while waiting for a missing segment.
MAX_PENDING_BYTES = 64 * 1024 * 1024
TLS_HINT = (
    "TLS (wss://) streams, not readable from a capture: record them with `ocpp-audit record` "
    "in front of the backend"
)


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _packets(path: Path) -> Iterator[tuple[float, int, bytes]]:
    """(time, link type, bytes) of each packet of a pcap or pcapng file."""
    try:
        import dpkt
    except ImportError:
        raise ImportFileError("reading pcap needs dpkt: pip install 'ocpp-audit[pcap]'") from None

    with path.open("rb") as stream:
        magic = stream.read(4)
        stream.seek(0)
        try:
            reader = (
                dpkt.pcapng.Reader(stream)
                if magic == b"\x0a\x0d\x0d\x0a"
                else dpkt.pcap.Reader(stream)
            )
        except (ValueError, dpkt.dpkt.Error) as error:
            raise ImportFileError(f"{path}: not a pcap or pcapng file ({error})") from None
        link = reader.datalink()
        try:
            for ts, data in reader:
                yield float(ts), link, data
        except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError):
            return  # a capture cut off mid-packet: what was read stands


def _ip(link: int, data: bytes) -> object | None:
    """The IPv4/IPv6 packet inside a link-layer frame, or None."""
    import dpkt

    try:
        if link == dpkt.pcap.DLT_EN10MB:
            frame = dpkt.ethernet.Ethernet(data)
            packet = frame.data
        elif link == dpkt.pcap.DLT_LINUX_SLL:
            packet = dpkt.sll.SLL(data).data
        elif link == 276:  # DLT_LINUX_SLL2
            packet = dpkt.sll2.SLL2(data).data
        elif link in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            packet = dpkt.loopback.Loopback(data).data
        elif link in (dpkt.pcap.DLT_RAW, 12, 14, 101, 228, 229):  # raw IP (LINKTYPE_RAW is 101)
            packet = dpkt.ip6.IP6(data) if data[:1] and data[0] >> 4 == 6 else dpkt.ip.IP(data)
        else:
            return None
    except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, IndexError):
        return None
    return packet if isinstance(packet, dpkt.ip.IP | dpkt.ip6.IP6) else None


def _address(packet: object, port: int, *, source: bool) -> str:
    family = socket.AF_INET6 if len(packet.src) == 16 else socket.AF_INET  # type: ignore[attr-defined]
    host = socket.inet_ntop(family, packet.src if source else packet.dst)  # type: ignore[attr-defined]
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


class _Side:
    """One direction of a TCP stream: segments back in order, fed to a parser."""

    def __init__(self, stream: _Stream, from_client: bool) -> None:
        from websockets.streams import StreamReader

        self.stream = stream
        self.from_client = from_client
        self.next_seq: int | None = None
        self.held: dict[int, bytes] = {}
        self.held_bytes = 0
        self.reader = StreamReader()
        self.parser: Generator[None, None, None] | None = None
        self.broken = False  # a gap or a parse error: nothing more can be read
        self.message: list[bytes] = []  # fragments of a message in progress
        self.message_text = False

    def start(self, seq: int) -> None:
        self.next_seq = seq

    def segment(self, ts: float, seq: int, data: bytes) -> None:
        if self.broken or not data:
            return
        if self.next_seq is None:
            self.stream.unreadable = "TCP streams whose start is not in the capture"
            return
        # sequence numbers wrap at 2**32; compare relative to the next expected byte
        offset = (seq - self.next_seq) % (1 << 32)
        if offset >= 1 << 31:  # (partly) old data: a retransmission
            overlap = (self.next_seq - seq) % (1 << 32)
            if overlap >= len(data):
                return
            data, seq, offset = data[overlap:], self.next_seq, 0
        if offset:
            if seq not in self.held:
                self.held[seq] = data
                self.held_bytes += len(data)
            if self.held_bytes > MAX_PENDING_BYTES:
                self.gap()
            return
        self.feed(ts, data)
        while self.next_seq in self.held:
            data = self.held.pop(self.next_seq)
            self.held_bytes -= len(data)
            self.feed(ts, data)

    def feed(self, ts: float, data: bytes) -> None:
        assert self.next_seq is not None
        self.next_seq = (self.next_seq + len(data)) % (1 << 32)
        self.stream.now = ts
        self.reader.feed_data(data)
        self.run()

    def run(self) -> None:
        if self.parser is None or self.broken:
            return
        try:
            next(self.parser)
        except StopIteration:
            self.parser = None
        except EOFError:
            self.parser = None
        except Exception:  # the peer speaks something else than HTTP/WebSocket from here on
            if self.stream.opened:
                self.stream.builder.summary.skip("TCP streams that stop being WebSocket")
            else:
                self.stream.unreadable = "TCP streams that are not HTTP/WebSocket"
            self.broken = True
            self.parser = None

    def gap(self) -> None:
        """Bytes missing for good: the frames after them cannot be found."""
        if self.held and not self.broken:
            self.stream.builder.summary.skip("TCP streams with bytes missing from the capture")
        self.broken = True
        self.held.clear()
        self.held_bytes = 0


@dataclass
class _Stream:
    builder: CaptureBuilder
    key: tuple[object, ...]
    client_address: str
    client: _Side = field(init=False)
    server: _Side = field(init=False)
    now: float = 0.0
    charge_point_id: str | None = None
    opened: bool = False
    closed: bool = False
    unreadable: str | None = None
    request: object = None  # the charger's HTTP upgrade request, once read
    extensions: dict[bool, list[object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = _Side(self, from_client=True)
        self.server = _Side(self, from_client=False)
        self.client.parser = self._client_parser()
        self.server.parser = self._server_parser()
        next(self.client.parser)
        next(self.server.parser)

    # -- parsers: generator-based, fed by _Side.feed ------------------------------------
    def _client_parser(self) -> Generator[None, None, None]:
        from websockets.http11 import Request

        reader = self.client.reader
        yield
        first = yield from reader.read_exact(1)
        if first[:1] == b"\x16":  # a TLS handshake record
            self.unreadable = TLS_HINT
            return
        reader.buffer[:0] = first
        request = yield from Request.parse(reader.read_line)
        self.request = request
        self.charge_point_id = charge_point_id_from_path(request.path)
        while not self.opened:
            if self.closed or self.server.parser is None:
                return
            yield
        yield from self._frames(self.client)

    def _server_parser(self) -> Generator[None, None, None]:
        from websockets.http11 import Response

        reader = self.server.reader
        yield
        first = yield from reader.read_exact(1)
        if self.unreadable or first[:1] == b"\x16":
            self.unreadable = self.unreadable or TLS_HINT
            return
        reader.buffer[:0] = first
        response = yield from Response.parse(
            reader.read_line, reader.read_exact, reader.read_to_eof
        )
        request = self.request
        if request is None:
            self.unreadable = "TCP streams that are not WebSocket"
            return
        if response.status_code != 101:  # the backend said no: a refused row, as the relay writes
            offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
            self._add(
                LogEntry(
                    0,
                    self.charge_point_id,
                    "refused",
                    path=request.path,
                    subprotocols_offered=[p.strip() for p in offered.split(",") if p.strip()],
                    remote_address=self.client_address,
                    authorization=request.headers.get("Authorization"),
                    http_status=response.status_code,
                    close_reason=response.reason_phrase,
                )
            )
            self.closed = True
            return
        self._open(request, response)
        self.client.run()  # frames the charger sent right after its request
        yield from self._frames(self.server)

    def _frames(self, side: _Side) -> Generator[None, None, None]:
        from websockets.frames import Frame, Opcode

        while True:
            frame = yield from Frame.parse(
                side.reader.read_exact,
                mask=side.from_client,
                max_size=None,
                extensions=self.extensions.get(side.from_client, []),
            )
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                side.message = [frame.data]
                side.message_text = frame.opcode is Opcode.TEXT
            elif frame.opcode is Opcode.CONT:
                side.message.append(frame.data)
            elif frame.opcode is Opcode.CLOSE:
                self._close_frame(frame.data, side)
                continue
            else:
                self.builder.summary.note("WebSocket ping/pong frames (not OCPP, not imported)")
                continue
            if frame.fin:
                self._message(side, b"".join(side.message), side.message_text)
                side.message = []

    # -- rows -------------------------------------------------------------------------
    def _open(self, request: object, response: object) -> None:
        from websockets.extensions.permessage_deflate import PerMessageDeflate
        from websockets.headers import parse_extension

        self.opened = True
        headers, answer = request.headers, response.headers  # type: ignore[attr-defined]
        offered = ",".join(headers.get_all("Sec-WebSocket-Protocol"))
        for value in answer.get_all("Sec-WebSocket-Extensions"):
            for name, params in parse_extension(value):
                if name != "permessage-deflate":
                    continue
                options = dict(params)
                for from_client, prefix in ((True, "client"), (False, "server")):
                    bits = options.get(f"{prefix}_max_window_bits")
                    other = "server" if prefix == "client" else "client"
                    self.extensions[from_client] = [
                        PerMessageDeflate(
                            f"{prefix}_no_context_takeover" in options,
                            f"{other}_no_context_takeover" in options,
                            int(bits) if bits else 15,
                            15,
                        )
                    ]
        self._add(
            LogEntry(
                0,
                self.charge_point_id,
                "open",
                path=request.path,  # type: ignore[attr-defined]
                subprotocols_offered=[p.strip() for p in offered.split(",") if p.strip()],
                subprotocol=answer.get("Sec-WebSocket-Protocol"),
                remote_address=self.client_address,
                authorization=headers.get("Authorization"),
            )
        )

    def _message(self, side: _Side, payload: bytes, text: bool) -> None:
        data: str | bytes = payload
        if text:
            with contextlib.suppress(UnicodeDecodeError):
                data = payload.decode("utf-8")
        direction = Direction.CP_TO_CS if side.from_client else Direction.CS_TO_CP
        self._add(LogEntry(0, self.charge_point_id, direction=direction, data=data))

    def _close_frame(self, data: bytes, side: _Side) -> None:
        from websockets.frames import Close

        if self.closed:
            return
        try:
            close = Close.parse(data)
            code, reason = close.code, close.reason or None
        except Exception:
            code, reason = ABNORMAL_CLOSURE, None
        self._close(code, reason, ClosedBy.CHARGER if side.from_client else ClosedBy.BACKEND)

    def _close(self, code: int, reason: str | None, closed_by: ClosedBy | None) -> None:
        if self.closed or not self.opened:
            return
        self.closed = True
        self._add(
            LogEntry(
                0, self.charge_point_id, "close",
                close_code=code, close_reason=reason, closed_by=closed_by,
            )
        )  # fmt: skip

    def _add(self, entry: LogEntry) -> None:
        entry.ts = _us(self.now)
        entry.connection_key = self.key
        self.builder.add(entry)

    def end(self, ts: float, closed_by: ClosedBy | None) -> None:
        """FIN or RST, or the end of the capture (closed_by None, no close row)."""
        self.now = ts
        for side in (self.client, self.server):
            if side.held:
                side.gap()
        if closed_by is not None:
            self._close(ABNORMAL_CLOSURE, None, closed_by)


def read(path: Path, builder: CaptureBuilder, timestamps: Timestamps) -> None:
    """Add every WebSocket connection of a pcap or pcapng file to ``builder``."""
    import dpkt

    summary = builder.summary
    streams: dict[tuple[object, ...], _Stream] = {}
    packets = 0
    for ts, link, data in _packets(path):
        packets += 1
        packet = _ip(link, data)
        if packet is None or not isinstance(packet.data, dpkt.tcp.TCP):  # type: ignore[attr-defined]
            summary.skip("packets that are not TCP over IP")
            continue
        segment = packet.data  # type: ignore[attr-defined]
        ends = (packet.src, segment.sport), (packet.dst, segment.dport)  # type: ignore[attr-defined]
        key = (str(path), *sorted(ends))
        stream = streams.get(key)
        syn, ack = segment.flags & dpkt.tcp.TH_SYN, segment.flags & dpkt.tcp.TH_ACK
        if stream is None or (syn and not ack and stream.closed):
            if not (syn and not ack):
                if stream is None:
                    stream = _Stream(builder, key, _address(packet, segment.sport, source=True))
                    stream.unreadable = "TCP streams whose start is not in the capture"
                    streams[key] = stream
                continue
            stream = _Stream(builder, (*key, packets), _address(packet, segment.sport, source=True))
            streams[key] = stream
        from_client = stream.client_address == _address(packet, segment.sport, source=True)
        side = stream.client if from_client else stream.server
        if syn:
            side.start((segment.seq + 1) % (1 << 32))
            continue
        side.segment(ts, segment.seq, bytes(segment.data))
        if segment.flags & (dpkt.tcp.TH_RST | dpkt.tcp.TH_FIN):
            # without a close frame before it: RFC 6455 7.1.5's 1006, closed by who ended TCP
            stream.end(ts, ClosedBy.CHARGER if from_client else ClosedBy.BACKEND)
    for stream in streams.values():
        if stream.unreadable:
            summary.skip(stream.unreadable)
        elif not stream.opened and not stream.closed:
            summary.skip("TCP streams with no complete WebSocket handshake")
        stream.end(stream.now, None)
    if not packets:
        summary.note(f"{path.name}: no packets")
