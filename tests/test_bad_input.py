"""Bad input (issue 7): forwarded as the backend would have received it, recorded, never a crash.

Each test runs once per engine (relay, mitmproxy) through ``tests.engines``. Frame size limits (a
16 MiB frame passes, a larger one closes with 1009 and is recorded) are tested in
``test_engines_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.conftest import timeout
from tests.engines import PlainBackend, messages, stop_and_read

DEEP = 20_000  # levels of nesting: beyond Python's recursion limit for a naive parser

BAD_FRAMES: list[str | bytes] = [
    '[2,"m1","Heartbeat",{}',  # malformed JSON
    '[2,"m2","Heartbeat"]',  # wrong array length (a CALL has 4 elements)
    '[2,"m3","Heartbeat",{},{}]',
    '[7,"m4",{}]',  # unknown message type
    '{"not":"an array"}',
    "",
    "[" * DEEP + "]" * DEEP,  # deeply nested, valid JSON
    '[2,"m5","DataTransfer",' + '{"a":' * DEEP + "1" + "}" * DEEP + "]",
    b"\x00\x01\x02\xff",  # binary frame
    b'[2,"m6","Heartbeat",{}]',  # OCPP-J in a binary frame (OCPP-J 1.6 section 4: text only)
]


async def test_bad_frames_are_forwarded_unchanged_and_recorded(recorder_plain):
    service, backend = recorder_plain
    async with connect(
        service.url + "/ocpp/CP-BAD", subprotocols=["ocpp1.6"], ping_interval=None
    ) as charger:
        upstream = await backend.wait_connection()
        for frame in BAD_FRAMES:
            await charger.send(frame)
        received = await upstream.wait_received(len(BAD_FRAMES))
        # The connection still works both ways afterwards.
        await charger.send('[2,"ok","Heartbeat",{}]')
        await upstream.wait_received(len(BAD_FRAMES) + 1)
        await upstream.websocket.send('[3,"ok",{"currentTime":"2026-01-01T00:00:00Z"}]')
        async with asyncio.timeout(timeout(5)):
            assert await charger.recv() == '[3,"ok",{"currentTime":"2026-01-01T00:00:00Z"}]'
    assert received[: len(BAD_FRAMES)] == BAD_FRAMES  # as sent, text as text, binary as binary
    rows = await stop_and_read(service)
    assert messages(rows, "cp_to_cs") == [*BAD_FRAMES, '[2,"ok","Heartbeat",{}]']
    recorded = [r for r in rows if r["event"] == "message" and r["direction"] == "cp_to_cs"]
    assert all(row["parse_error"] for row in recorded[: len(BAD_FRAMES)])
    assert recorded[-1]["parse_error"] is None and recorded[-1]["action"] == "Heartbeat"


async def _raw_charger(
    url: str,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ClientProtocol]:
    """A WebSocket client on a bare socket: the handshake through websockets' sans-I/O protocol."""
    uri = parse_uri(url)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    protocol = ClientProtocol(uri, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    protocol.send_request(protocol.connect())
    writer.write(b"".join(protocol.data_to_send()))
    async with asyncio.timeout(timeout(10)):
        while protocol.state is State.CONNECTING:
            data = await reader.read(65536)
            assert data, "connection closed during the handshake"
            protocol.receive_data(data)
    assert protocol.handshake_exc is None, protocol.handshake_exc
    return reader, writer, protocol


async def test_text_frame_with_invalid_utf8_closes_1007_and_is_recorded(
    recorder_plain, engine_name
):
    service, backend = recorder_plain
    reader, writer, protocol = await _raw_charger(service.url + "/ocpp/CP-UTF8")
    try:
        upstream = await backend.wait_connection()
        # A text frame with invalid UTF-8: websockets frames (and masks) the bytes as they are.
        protocol.send_text(b'[2,"u1","DataTransfer",{"data":"\xff\xfe"}]')
        writer.write(b"".join(protocol.data_to_send()))
        await writer.drain()
        async with asyncio.timeout(timeout(10)):
            while protocol.close_rcvd is None:
                data = await reader.read(65536)
                if not data:
                    break
                protocol.receive_data(data)
        writer.write(b"".join(protocol.data_to_send()))  # our answer to the close frame ...
        writer.close()  # ... and the TCP close a client makes after it (RFC 6455 7.1.1)
        # RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that
        # the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the
        # WebSocket Connection_" - with 1007 (7.4.1: "data within a message that was not
        # consistent with the type of the message").
        assert protocol.close_rcvd is not None and protocol.close_rcvd.code == 1007
        await upstream.wait_closed(seconds=10)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    # The recorder keeps serving.
    async with connect(service.url + "/ocpp/CP-NEXT", subprotocols=["ocpp1.6"]) as charger:
        await charger.send('[2,"h1","Heartbeat",{}]')
        await (await backend.wait_connection(1)).wait_received(1)
    rows = await stop_and_read(service)
    closes = [r for r in rows if r["event"] == "close" and r["charge_point_id"] == "CP-UTF8"]
    assert [row["close_code"] for row in closes] == [1007]
    # The recorder sent the 1007; the mitmproxy addon counts the charger's bad frame as the cause.
    assert closes[0]["closed_by"] == ("recorder" if engine_name == "relay" else "charger")
    assert messages([r for r in rows if r["charge_point_id"] == "CP-UTF8"], "cp_to_cs") == []


STALLED = 2_000  # connections from 127.0.0.1 that never finish their handshake


async def test_stalled_handshakes_from_one_address_do_not_stop_other_chargers(
    recording, engine_name
):
    backend = PlainBackend(echo=True)
    await backend.start()
    stalled: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        async with recording(upstream=backend.url, open_timeout=1.0) as service:
            host, port = service.url.removeprefix("ws://").rsplit(":", 1)

            async def stall(index: int) -> None:
                reader, writer = await asyncio.open_connection(host, int(port))
                # Half a request: the blank line that ends the headers never comes.
                writer.write(f"GET /ocpp/STALL{index} HTTP/1.1\r\nHost: x\r\n".encode())
                stalled.append((reader, writer))

            async with asyncio.timeout(timeout(30)):
                for start in range(0, STALLED, 100):  # 100 at a time: within the listen backlog
                    await asyncio.gather(*(stall(i) for i in range(start, start + 100)))
            async with connect(
                service.url + "/ocpp/CP-OK",
                subprotocols=["ocpp1.6"],
                open_timeout=timeout(10),
                ping_interval=None,
            ) as charger:
                await charger.send('[2,"h1","Heartbeat",{}]')
                async with asyncio.timeout(timeout(5)):
                    assert await charger.recv() == '[2,"h1","Heartbeat",{}]'
            if engine_name == "relay":
                # websockets' open_timeout (options.open_timeout + 5 s) ends a handshake that
                # never completes; mitmproxy has no such limit of its own (see the report).
                reader, _ = stalled[0]
                async with asyncio.timeout(timeout(20)):
                    assert await reader.read() is not None
                assert reader.at_eof()
            rows = await stop_and_read(service)
    finally:
        for _, writer in stalled:
            writer.close()
        await backend.stop()
    assert [r["charge_point_id"] for r in rows if r["event"] == "open"] == ["CP-OK"]
    assert {r["charge_point_id"] for r in rows} == {"CP-OK"}
