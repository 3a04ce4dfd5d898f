"""The relay engine on its own: URL and header rules, failure policies, isolation, TLS, abrupt drops.

The end-to-end behaviour shared with the mitmproxy engine is in test_engines_e2e.py.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ocpp_audit.capture.writer import CaptureWriteError
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.relay import RelayEngine, end_to_end_headers, upstream_url
from tests.conftest import timeout
from tests.engines import PlainBackend, recv


class RowList(list):
    """A row sink that keeps rows in memory; ``fail_on`` makes the n-th message row raise."""

    def __init__(self, fail_on: int | None = None, error: type[Exception] = CaptureWriteError):
        super().__init__()
        self.fail_on = fail_on
        self.error = error
        self.message_rows = 0

    def append(self, row: dict[str, Any]) -> None:  # type: ignore[override]
        if row["event"] == "message":
            self.message_rows += 1
            if self.fail_on is not None and self.message_rows >= self.fail_on:
                raise self.error("disk full (test)")
        super().append(row)


@pytest.fixture
async def backend():
    backend = PlainBackend(echo=True)
    await backend.start()
    yield backend
    await backend.stop()


async def start_relay(sink: Any, tmp_path: Path, **fields: Any) -> RelayEngine:
    engine = RelayEngine(RecordOptions(capture_dir=tmp_path, **fields), sink)
    await engine.start()
    return engine


@pytest.mark.parametrize(
    ("upstream", "request_path", "expected"),
    [
        ("ws://csms:9000", "/ocpp/CP001", "ws://csms:9000/ocpp/CP001"),
        ("ws://csms:9000/", "/ocpp/CP001", "ws://csms:9000/ocpp/CP001"),
        ("ws://csms:9000/base", "/ocpp/CP001", "ws://csms:9000/base/ocpp/CP001"),
        ("wss://csms/base/", "/CP%20001?token=a", "wss://csms/base/CP%20001?token=a"),
        ("ws://csms/base?tenant=7", "/CP1?x=1", "ws://csms/base/CP1?tenant=7&x=1"),
    ],
)
def test_upstream_url_appends_the_chargers_path_and_query(upstream, request_path, expected):
    assert upstream_url(upstream, request_path) == expected


def test_end_to_end_headers_leave_hop_by_hop_and_websocket_ones_behind():
    headers = Headers(
        [
            ("Host", "recorder:9000"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade, X-Hop"),
            ("X-Hop", "drop me"),
            ("Sec-WebSocket-Key", "abc"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "ocpp1.6"),
            ("Proxy-Authorization", "Basic cHJveHk="),
            ("Keep-Alive", "timeout=5"),
            ("Authorization", "Basic Q1AxOnB3"),
            ("User-Agent", "charger/1.0"),
            ("X-Site", "depot-7"),
            ("X-Site", "second"),
        ]
    )
    assert end_to_end_headers(headers) == [
        ("Authorization", "Basic Q1AxOnB3"),
        ("User-Agent", "charger/1.0"),
        ("X-Site", "depot-7"),
        ("X-Site", "second"),
    ]


async def test_base_path_query_and_user_agent_reach_the_backend(backend, tmp_path):
    engine = await start_relay(RowList(), tmp_path, upstream=backend.url + "/base")
    try:
        async with connect(
            f"ws://127.0.0.1:{engine.port}/ocpp/CP%2F1?token=x",
            subprotocols=["ocpp1.6"],
            user_agent_header="ACME-charger/2.3",
        ):
            upstream = await backend.wait_connection()
    finally:
        await engine.stop()
    assert upstream.path == "/base/ocpp/CP%2F1?token=x"
    assert upstream.headers["User-Agent"] == "ACME-charger/2.3"  # the charger's, not ours
    assert "websockets" not in upstream.headers.get("User-Agent", "")


async def test_write_error_with_policy_close_closes_both_hops_with_1011(backend, tmp_path):
    sink = RowList(fail_on=2)  # the second message cannot be journalled
    engine = await start_relay(sink, tmp_path, upstream=backend.url, on_write_error="close")
    try:
        async with connect(f"ws://127.0.0.1:{engine.port}/CP1", subprotocols=["ocpp1.6"]) as cp:
            upstream = await backend.wait_connection()
            await cp.send('[2,"1","Heartbeat",{}]')  # journalled, forwarded, echoed back
            # The echo cannot be journalled: it is held back and both hops close.
            with pytest.raises(ConnectionClosed):
                await recv(cp)
            assert cp.close_code == 1011
        await upstream.wait_closed()
    finally:
        await engine.stop()
    assert upstream.close_code == 1011
    assert upstream.received == ['[2,"1","Heartbeat",{}]']
    assert [row["event"] for row in sink] == ["open", "message", "close"]
    assert (sink[-1]["close_code"], sink[-1]["closed_by"]) == (1011, "recorder")


async def test_a_recording_bug_does_not_break_the_connection(backend, tmp_path):
    sink = RowList(fail_on=1, error=RuntimeError)
    engine = await start_relay(sink, tmp_path, upstream=backend.url)
    try:
        async with connect(f"ws://127.0.0.1:{engine.port}/CP1", subprotocols=["ocpp1.6"]) as cp:
            for index in range(3):
                await cp.send(f'[2,"{index}","Heartbeat",{{}}]')
                assert await recv(cp) == f'[2,"{index}","Heartbeat",{{}}]'
    finally:
        await engine.stop()
    assert [row["event"] for row in sink] == ["open", "close"]


async def test_one_chargers_trouble_leaves_the_others_alone(backend, tmp_path):
    sink = RowList()
    engine = await start_relay(sink, tmp_path, upstream=backend.url, max_frame_bytes=1024)
    url = f"ws://127.0.0.1:{engine.port}"
    try:
        async with (
            connect(url + "/GOOD", subprotocols=["ocpp1.6"]) as good,
            connect(url + "/BAD", subprotocols=["ocpp1.6"], max_size=None) as bad,
        ):
            await bad.send("x" * 4096)  # too big: only this charger is closed (1009)
            with pytest.raises(ConnectionClosed):
                await recv(bad)
            assert bad.close_code == 1009
            # Not a WebSocket handshake at all: answered, and the server goes on.
            reader, writer = await asyncio.open_connection("127.0.0.1", engine.port)
            writer.write(b"GET /PLAIN HTTP/1.1\r\nHost: x\r\n\r\n")
            status_line = await asyncio.wait_for(reader.readline(), timeout(5))
            assert status_line.startswith(b"HTTP/1.1 4")
            writer.close()
            await good.send('[2,"1","Heartbeat",{}]')
            assert await recv(good) == '[2,"1","Heartbeat",{}]'
    finally:
        await engine.stop()
    closes = {row["charge_point_id"]: row for row in sink if row["event"] == "close"}
    assert (closes["BAD"]["close_code"], closes["BAD"]["closed_by"]) == (1009, "recorder")
    assert closes["GOOD"]["closed_by"] == "charger"


async def test_a_charger_that_drops_is_dropped_upstream_too(backend, tmp_path):
    sink = RowList()
    engine = await start_relay(sink, tmp_path, upstream=backend.url)
    try:
        charger = await connect(f"ws://127.0.0.1:{engine.port}/CP1", subprotocols=["ocpp1.6"])
        upstream = await backend.wait_connection()
        charger.transport.abort()  # the network goes: no close frame
        await upstream.wait_closed()
    finally:
        await engine.stop()
    assert upstream.close_code == 1006  # the backend sees what it would have seen directly
    (closed,) = [row for row in sink if row["event"] == "close"]
    assert (closed["close_code"], closed["closed_by"]) == (1006, "charger")


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
async def wss_backend(certificate):
    cert_path, key_path = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)

    async def echo(websocket: Any) -> None:
        async for message in websocket:
            await websocket.send(message)

    server = await serve(echo, "127.0.0.1", 0, ssl=context, subprotocols=["ocpp1.6"])
    yield f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("trust", "reaches_backend"),
    [("ca", True), ("default", False), ("insecure", True)],
)
async def test_wss_both_hops_with_upstream_verification(
    certificate, wss_backend, tmp_path, trust, reaches_backend
):
    cert_path, key_path = certificate
    fields: dict[str, Any] = {"upstream": wss_backend, "tls_cert": cert_path, "tls_key": key_path}
    if trust == "ca":
        fields["upstream_ca"] = cert_path
    elif trust == "insecure":
        fields["insecure_upstream"] = True
    sink = RowList()
    engine = await start_relay(sink, tmp_path, **fields)
    charger_tls = ssl.create_default_context(cafile=str(cert_path))
    try:
        url = f"wss://127.0.0.1:{engine.port}/CPTLS"
        if reaches_backend:
            async with connect(url, ssl=charger_tls, subprotocols=["ocpp1.6"]) as charger:
                await charger.send('[2,"1","Heartbeat",{}]')
                assert await recv(charger) == '[2,"1","Heartbeat",{}]'
        else:
            # The backend's certificate is not trusted by default: the charger gets 502.
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, ssl=charger_tls, subprotocols=["ocpp1.6"]):
                    pass
            assert refused.value.response.status_code == 502
    finally:
        await engine.stop()
    first = sink[0]
    assert first["event"] == ("open" if reaches_backend else "refused")
    assert first["tls"] is True
