"""End to end, for every engine: charger -> recorder -> backend on loopback, and what the capture holds.

Each test runs once per engine (``engine_name`` is parametrised over relay and mitmproxy).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

# The shared fixtures (recording, recorder_plain, recorder_cs, ...), parametrised over the engines.
from tests.conftest import timeout
from tests.engines import PlainBackend, messages, recv, stop_and_read

BIG = 32 * 1024 * 1024


def charger_connect(url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("subprotocols", ["ocpp1.6"])
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", BIG)
    kwargs.setdefault("open_timeout", timeout(10))
    return connect(url, **kwargs)


async def test_every_frame_arrives_unchanged_and_is_recorded_once_in_order(recorder_plain):
    service, backend = recorder_plain
    from_charger: list[str | bytes] = [
        '[2,"b1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"X1"}]',
        '[2, "h1", "Heartbeat", {}]',  # spaces kept as sent
        '[3,"cs1",{"status":"Accepted"}]',
        '[2,"m1","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z",'
        '"sampledValue":[{"value":"165333.00"},{"value":"2e+01"}]}]}]',
        "[2,'not json'",  # malformed: forwarded and recorded with a parse error
        b"\x00\x01binary\xff",  # binary: forwarded as binary
        '[2,"u1","DataTransfer",{"vendorId":"ACME","data":"h\\u00e9llo \u00e9"}]',
    ]
    from_backend: list[str | bytes] = [
        '[3,"b1",{"status":"Accepted","currentTime":"2024-01-01T00:00:00.000Z","interval":60}]',
        '[2,"cs1","ChangeAvailability",{"connectorId":1,"type":"Inoperative"}]',
        '[3,"h1",{"currentTime":"2024-01-01T00:00:01Z"}]',
        '[4,"m1","InternalError","oops",{}]',
        b"\xfe\xed",
    ]
    received_by_charger: list[str | bytes] = []
    async with charger_connect(service.url + "/ocpp/CP001") as charger:
        upstream = await backend.wait_connection()
        # Interleave the two directions.
        for index in range(max(len(from_charger), len(from_backend))):
            if index < len(from_charger):
                await charger.send(from_charger[index])
            if index < len(from_backend):
                await upstream.websocket.send(from_backend[index])
                received_by_charger.append(await recv(charger))
        received_by_backend = list(await upstream.wait_received(len(from_charger)))
        await charger.close()
        await upstream.wait_closed()

    assert received_by_backend == from_charger  # byte-identical, text as text, binary as binary
    assert received_by_charger == from_backend
    assert [type(m) for m in received_by_backend] == [type(m) for m in from_charger]

    rows = await stop_and_read(service)
    assert messages(rows, "cp_to_cs") == from_charger  # once each, in order
    assert messages(rows, "cs_to_cp") == from_backend
    by_raw = {row["raw"]: row for row in rows if row["event"] == "message" and row["raw"]}
    assert by_raw[from_charger[0]]["action"] == "BootNotification"
    assert by_raw[from_backend[0]]["action"] == "BootNotification"  # resolved from its CALL
    assert by_raw[from_charger[2]]["action"] == "ChangeAvailability"
    assert by_raw[from_backend[3]]["action"] == "MeterValues"
    assert by_raw[from_backend[3]]["error_code"] == "InternalError"
    assert by_raw[from_charger[4]]["parse_error"]
    assert by_raw[from_charger[0]]["parse_error"] is None
    assert {row["charge_point_id"] for row in rows} == {"CP001"}
    events = [row["event"] for row in sorted(rows, key=lambda row: row["seq"])]
    assert events[0] == "open" and events[-1] == "close"
    assert events.count("open") == 1 and events.count("close") == 1
    seqs = sorted(row["seq"] for row in rows)
    assert seqs == list(range(len(rows)))
    opened = next(row for row in rows if row["event"] == "open")
    assert opened["path"] == "/ocpp/CP001"
    assert opened["subprotocol"] == "ocpp1.6"
    assert opened["tls"] is False
    closed = next(row for row in rows if row["event"] == "close")
    assert (closed["close_code"], closed["closed_by"]) == (1000, "charger")


async def test_built_in_central_system_through_the_recorder(recorder_cs):
    service = recorder_cs
    central_system = service.central_system
    assert central_system is not None
    boot = '[2,"1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"X1"}]'
    async with charger_connect(service.url + "/CP002") as charger:
        await charger.send(boot)
        boot_answer = json.loads(await recv(charger))
        assert boot_answer[0] == 3 and boot_answer[2]["status"] == "Accepted"
        await central_system.wait_connected("CP002", timeout=timeout(5))

        async def answer_change_availability() -> str:
            call = json.loads(await recv(charger))
            assert call[2] == "ChangeAvailability"
            answer = json.dumps([3, call[1], {"status": "Accepted"}])
            await charger.send(answer)
            return answer

        answering = asyncio.create_task(answer_change_availability())
        result = await central_system.call(
            "CP002", "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, timeout=5
        )
        assert result == {"status": "Accepted"}
        await answering
        await charger.send('[2,"2","Heartbeat",{}]')
        assert json.loads(await recv(charger))[1] == "2"

    rows = await stop_and_read(service)
    sent = messages(rows, "cp_to_cs")
    assert sent[0] == boot and len(sent) == 3
    actions = [
        (row["direction"], row["message_type"], row["action"])
        for row in sorted(rows, key=lambda row: row["seq"])
        if row["event"] == "message"
    ]
    assert actions == [
        ("cp_to_cs", 2, "BootNotification"),
        ("cs_to_cp", 3, "BootNotification"),
        ("cs_to_cp", 2, "ChangeAvailability"),
        ("cp_to_cs", 3, "ChangeAvailability"),
        ("cp_to_cs", 2, "Heartbeat"),
        ("cs_to_cp", 3, "Heartbeat"),
    ]


@pytest.mark.parametrize(
    ("offered", "supported", "chosen"),
    [
        (["ocpp2.0.1", "ocpp1.6"], ["ocpp1.6"], "ocpp1.6"),
        (["ocpp1.6"], [], None),  # a backend that picks none: the charger gets none
    ],
)
async def test_charger_gets_the_subprotocol_the_backend_chose(
    recording, offered, supported, chosen
):
    backend = PlainBackend(subprotocols=supported)
    await backend.start()
    try:
        async with recording(upstream=backend.url) as service:
            async with charger_connect(service.url + "/CP003", subprotocols=offered) as charger:
                assert charger.subprotocol == chosen
                upstream = await backend.wait_connection()
                assert upstream.subprotocol == chosen
                offered_header = upstream.headers.get("Sec-WebSocket-Protocol")
                assert [part.strip() for part in offered_header.split(",")] == offered
            rows = await stop_and_read(service)
    finally:
        await backend.stop()
    opened = next(row for row in rows if row["event"] == "open")
    assert opened["subprotocol"] == chosen
    assert opened["subprotocols_offered"] == ",".join(offered)


async def test_authorization_reaches_backend_and_password_is_nowhere_in_capture(recorder_plain):
    service, backend = recorder_plain
    password = "s3cr3t-Pa55word-xyzzy"
    credentials = base64.b64encode(f"CP004:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}", "X-Site": "depot-7"}
    async with charger_connect(service.url + "/CP004", additional_headers=headers) as charger:
        upstream = await backend.wait_connection()
        await charger.send('[2,"1","Heartbeat",{}]')
        await upstream.wait_received(1)
    assert upstream.headers["Authorization"] == f"Basic {credentials}"
    assert upstream.headers["X-Site"] == "depot-7"
    capture_dir: Path = service.options.capture_dir
    rows = await stop_and_read(service)
    opened = next(row for row in rows if row["event"] == "open")
    assert opened["auth_user"] == "CP004"
    files = [path for path in capture_dir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".parquet" for path in files)
    for path in files:
        content = path.read_bytes()
        assert password.encode() not in content, path
        assert credentials.encode() not in content, path


async def test_backend_refusal_reaches_the_charger_with_its_status(recording):
    backend = PlainBackend(
        refuse=(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="ocpp"'}, "who are you\n")
    )
    await backend.start()
    try:
        async with recording(upstream=backend.url) as service:
            with pytest.raises(InvalidStatus) as refused:
                async with charger_connect(service.url + "/CP005"):
                    pass
            rows = await stop_and_read(service)
    finally:
        await backend.stop()
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="ocpp"'
    assert response.body == b"who are you\n"
    (row,) = [row for row in rows if row["event"] == "refused"]
    assert (row["charge_point_id"], row["http_status"]) == ("CP005", 401)
    assert not [row for row in rows if row["event"] == "open"]


async def test_unreachable_backend_gives_502(recording):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with recording(upstream=f"ws://127.0.0.1:{port}") as service:
        with pytest.raises(InvalidStatus) as refused:
            async with charger_connect(service.url + "/CP006"):
                pass
        rows = await stop_and_read(service)
    assert refused.value.response.status_code == 502
    (row,) = [row for row in rows if row["event"] == "refused"]
    assert (row["charge_point_id"], row["http_status"]) == ("CP006", 502)


async def test_charger_close_code_and_reason_reach_the_backend(recorder_plain):
    service, backend = recorder_plain
    async with charger_connect(service.url + "/CP007") as charger:
        upstream = await backend.wait_connection()
        await charger.close(4001, "charger going to sleep")
        await upstream.wait_closed()
    assert (upstream.close_code, upstream.close_reason) == (4001, "charger going to sleep")
    rows = await stop_and_read(service)
    (closed,) = [row for row in rows if row["event"] == "close"]
    assert (closed["close_code"], closed["close_reason"], closed["closed_by"]) == (
        4001,
        "charger going to sleep",
        "charger",
    )


async def test_backend_close_code_and_reason_reach_the_charger(recorder_plain):
    service, backend = recorder_plain
    async with charger_connect(service.url + "/CP008") as charger:
        upstream = await backend.wait_connection()
        await upstream.websocket.close(4003, "unknown charger")
        with pytest.raises(ConnectionClosed):
            await recv(charger)
        assert (charger.close_code, charger.close_reason) == (4003, "unknown charger")
    rows = await stop_and_read(service)
    (closed,) = [row for row in rows if row["event"] == "close"]
    assert (closed["close_code"], closed["closed_by"]) == (4003, "backend")


async def test_stopping_the_recorder_closes_chargers_with_1001(recorder_plain):
    service, backend = recorder_plain
    async with charger_connect(service.url + "/CP009") as charger:
        upstream = await backend.wait_connection()
        rows = await stop_and_read(service)
        with pytest.raises(ConnectionClosed):
            await recv(charger)
        assert charger.close_code == 1001  # going away: the charger reconnects
    await upstream.wait_closed()
    assert upstream.close_code == 1001
    (closed,) = [row for row in rows if row["event"] == "close"]
    assert (closed["close_code"], closed["closed_by"]) == (1001, "recorder")


async def test_an_idle_charger_is_not_cut_off(recording, plain_backend, engine_name, monkeypatch):
    fields: dict[str, Any] = {"upstream": plain_backend.url}
    idle = 3.0
    if engine_name == "mitmproxy":
        # mitmproxy cuts a connection idle for 600 s (TCP_TIMEOUT in 11, the tcp_timeout option in
        # 12). Shorten it to 1 s: the engine must lift it, else this charger is cut in its silence.
        from tests.mitm_versions import shorten_mitmproxys_idle_cut_off

        shorten_mitmproxys_idle_cut_off(monkeypatch, 1)
    async with recording(**fields) as service:
        async with charger_connect(service.url + "/CP010") as charger:  # no pings at all
            upstream = await plain_backend.wait_connection()
            await asyncio.sleep(idle)
            await charger.send('[2,"1","Heartbeat",{}]')
            assert await upstream.wait_received(1) == ['[2,"1","Heartbeat",{}]']
            await upstream.websocket.send('[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]')
            assert await recv(charger) == '[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]'
        rows = await stop_and_read(service)
    (closed,) = [row for row in rows if row["event"] == "close"]
    assert closed["closed_by"] == "charger"


async def test_frames_up_to_the_limit_pass_and_larger_ones_close_with_1009(recording):
    backend = PlainBackend(echo=True)
    await backend.start()
    limit = 256 * 1024
    try:
        async with recording(upstream=backend.url, max_frame_bytes=limit) as service:
            big = '[2,"1","DataTransfer",{"vendorId":"ACME","data":"' + "x" * (limit - 100) + '"}]'
            async with charger_connect(service.url + "/CP011") as charger:
                await charger.send(big)
                assert await recv(charger) == big
                await charger.send(big + " " * 200)  # over the limit
                with pytest.raises(ConnectionClosed):
                    await recv(charger)
                assert charger.close_code == 1009
            rows = await stop_and_read(service)
    finally:
        await backend.stop()
    assert messages(rows, "cp_to_cs") == [big]
    (closed,) = [row for row in rows if row["event"] == "close"]
    assert closed["close_code"] == 1009


async def test_a_16_mib_frame_passes(recorder_plain):
    service, backend = recorder_plain
    frame = '[2,"1","DataTransfer",{"vendorId":"ACME","data":"' + "y" * (16 * 1024 * 1024 - 60)
    frame += '"}]'
    assert len(frame) <= 16 * 1024 * 1024
    async with charger_connect(service.url + "/CP012") as charger:
        upstream = await backend.wait_connection()
        await charger.send(frame)
        received = await upstream.wait_received(1, seconds=20)
    assert received[0] == frame


async def test_simulated_charger_session_with_an_offline_gap(recorder_cs):
    """Simulator -> recorder -> built-in central system; counted from both ends."""
    from ocpp_audit.lab.simulator.charger import SimulatedCharger

    service = recorder_cs
    central_system = service.central_system
    assert central_system is not None
    charger = SimulatedCharger("SIM1", service.url, connectors=1)
    async with asyncio.timeout(timeout(30)):
        await charger.start()
        await charger.plug_in(1)
        await charger.swipe("TAG1", 1)
        await charger.lose_network()
        await charger.unplug(1)  # stops the transaction while offline: queued
        await charger.restore_network()
        await charger.wait_ready(timeout(10))
        await charger.stop()
    calls_received = central_system.mark()  # CALLs the central system received, in all
    rows = await stop_and_read(service)
    message_rows = [row for row in rows if row["event"] == "message"]
    charger_calls = [row for row in message_rows if row["direction"] == "cp_to_cs"]
    charger_calls = [row for row in charger_calls if row["message_type"] == 2]
    assert len(charger_calls) == calls_received
    answered = {row["unique_id"] for row in message_rows if row["direction"] == "cs_to_cp"}
    assert {row["unique_id"] for row in charger_calls} <= answered
    actions = [row["action"] for row in charger_calls]
    assert actions[0] == "BootNotification"
    assert {"StartTransaction", "StopTransaction", "StatusNotification"} <= set(actions)
    assert actions.index("StopTransaction") > actions.index("StartTransaction")
    connections = {row["connection_id"] for row in rows}
    assert len(connections) == 2  # the offline gap: two connections
    assert sum(row["event"] == "open" for row in rows) == 2
    assert sum(row["event"] == "close" for row in rows) == 2


@pytest.mark.parametrize("backend_accepts", [True, False])
async def test_compression_follows_the_backends_choice(recording, engine_name, backend_accepts):
    """RFC 7692 negotiates permessage-deflate per hop; with the relay the charger's hop gets what the
    backend chose, so a backend that declines means no compression work in the recorder either.
    The mitmproxy engine inflates a whole message before its frame limit can see it, so it passes no
    offer on (a deflate bomb would cost it gigabytes): no hop compresses."""
    received: list[str] = []
    offered: list[str | None] = []

    async def handler(websocket) -> None:
        offered.append(websocket.request.headers.get("Sec-WebSocket-Extensions"))
        async for message in websocket:
            received.append(message)
            await websocket.send(message)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["ocpp1.6"],
        compression="deflate" if backend_accepts else None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with (
            recording(upstream=f"ws://127.0.0.1:{port}") as service,
            connect(
                f"{service.url}/ocpp/CP-DEFLATE", subprotocols=["ocpp1.6"], compression="deflate"
            ) as charger,
        ):
            extensions = charger.response.headers.get("Sec-WebSocket-Extensions")
            frame = '[2,"1","Heartbeat",{}]'
            await charger.send(frame)
            async with asyncio.timeout(timeout(5)):
                assert await charger.recv() == frame
    assert received == [frame]
    if engine_name == "mitmproxy":
        assert offered == [None] and extensions is None
    elif backend_accepts:
        assert offered[0] is not None and "permessage-deflate" in offered[0]
        assert extensions is not None and "permessage-deflate" in extensions
    else:
        assert extensions is None
