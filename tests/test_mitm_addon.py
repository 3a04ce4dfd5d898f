"""The mitmproxy addon, hooks driven directly (no network), and mitmproxy's idle cut-off on a socket."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import websockets
from mitmproxy import exceptions, http
from mitmproxy.addonmanager import traverse
from mitmproxy.proxy import server as mitm_server
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from ocpp_audit.capture.writer import CaptureWriteError, CaptureWriter
from ocpp_audit.recorder.mitm import OcppCapture
from ocpp_audit.recorder.mitm.idle_timeout import NO_IDLE_TIMEOUT_S
from ocpp_audit.recorder.mitm_engine import MitmEngine, reverse_mode
from ocpp_audit.recorder.options import RecordOptions
from tests.conftest import timeout
from tests.mitm_versions import idle_cut_off

PASSWORD = "s3cret-Pa55"


class ListSink:
    """Rows in memory; ``fail`` makes append raise as the writer does under policy "close"."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.fail = False

    def append(self, row: dict[str, object]) -> None:
        if self.fail:
            raise CaptureWriteError("disk full")
        self.rows.append(row)


def hook(addon: object, name: str, *args: object) -> None:
    """Run hook ``name`` on ``addon`` and its children in order, as mitmproxy's addon manager does."""
    for each in traverse([addon]):
        function = getattr(each, name, None)
        if function is not None:
            function(*args)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def addon(sink: ListSink) -> Iterator[OcppCapture]:
    capture = OcppCapture(sink)
    yield capture
    hook(capture, "done")  # puts mitmproxy's TCP_TIMEOUT back


def charger_flow(
    path: str = "/ocpp/CP%201", *, password: str = PASSWORD, subprotocol: str | None = "ocpp1.6"
) -> http.HTTPFlow:
    """A WebSocket flow as mitmproxy has it after the 101, with no messages yet."""
    flow = tflow.twebsocketflow(messages=False)
    flow.request.path = path
    flow.request.headers["Sec-WebSocket-Protocol"] = "ocpp1.6, ocpp2.0.1"
    credentials = base64.b64encode(f"CP 1:{password}".encode()).decode()
    flow.request.headers["Authorization"] = f"Basic {credentials}"
    assert flow.response is not None
    if subprotocol:
        flow.response.headers["Sec-WebSocket-Protocol"] = subprotocol
    flow.websocket.close_code = None
    flow.websocket.closed_by_client = None
    flow.client_conn.timestamp_tls_setup = None  # plain ws (tflow's client did TLS)
    return flow


def receive(
    addon: OcppCapture, flow: http.HTTPFlow, content: str | bytes, *, from_client: bool
) -> WebSocketMessage:
    """What mitmproxy's WebSocket layer does for one message: append it, run the hook."""
    assert flow.websocket is not None
    if isinstance(content, str):
        message = WebSocketMessage(Opcode.TEXT, from_client, content.encode())
    else:
        message = WebSocketMessage(Opcode.BINARY, from_client, content)
    flow.websocket.messages.append(message)
    hook(addon, "websocket_message", flow)
    return message


def test_open_messages_close_rows(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow()
        hook(addon, "requestheaders", flow)
        hook(addon, "websocket_start", flow)
        call = '[2, "19223201", "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": 1.50}]'
        receive(addon, flow, call, from_client=True)
        result = '[3,"19223201",{"status":"Accepted","currentTime":"2024-01-01T00:00:00Z","interval":300}]'
        receive(addon, flow, result, from_client=False)
        receive(addon, flow, b"\x00\xffbinary", from_client=True)
        receive(addon, flow, '[2,"7","Heartbeat",{}', from_client=True)  # malformed: no ]
        error = '[4,"19223202","NotImplemented","no",{}]'
        receive(addon, flow, '[2,"19223202","DataTransfer",{"vendorId":"x"}]', from_client=False)
        receive(addon, flow, error, from_client=True)
        flow.websocket.close_code = 1000
        flow.websocket.close_reason = "bye"
        flow.websocket.closed_by_client = True
        hook(addon, "websocket_end", flow)

    events = [row["event"] for row in sink.rows]
    assert events == ["open"] + ["message"] * 6 + ["close"]
    assert [row["seq"] for row in sink.rows] == list(range(8))
    assert len({row["connection_id"] for row in sink.rows}) == 1
    assert {row["charge_point_id"] for row in sink.rows} == {"CP 1"}  # percent-decoded

    opened = sink.rows[0]
    assert opened["path"] == "/ocpp/CP%201"
    assert opened["subprotocols_offered"] == "ocpp1.6,ocpp2.0.1"
    assert opened["subprotocol"] == "ocpp1.6"
    assert opened["remote_address"] == "127.0.0.1:22"
    assert opened["auth_user"] == "CP 1"
    assert opened["tls"] is False

    boot, answer, binary, malformed, data_transfer, call_error = sink.rows[1:7]
    assert boot["raw"] == call  # exactly as on the wire: spaces and 1.50 kept
    assert (boot["direction"], boot["message_type"], boot["action"]) == (
        "cp_to_cs",
        2,
        "BootNotification",
    )
    assert answer["direction"] == "cs_to_cp"
    assert (answer["message_type"], answer["action"]) == (3, "BootNotification")  # resolved
    assert binary["raw_binary"] == b"\x00\xffbinary" and binary.get("raw") is None
    assert malformed["raw"] == '[2,"7","Heartbeat",{}' and malformed["parse_error"]
    assert data_transfer["direction"] == "cs_to_cp"
    assert (call_error["message_type"], call_error["action"]) == (4, "DataTransfer")
    assert call_error["error_code"] == "NotImplemented"

    closed = sink.rows[-1]
    assert (closed["close_code"], closed["close_reason"], closed["closed_by"]) == (
        1000,
        "bye",
        "charger",
    )
    assert flow.id not in addon.recording.recorders


def test_message_timestamps_are_arrival_times(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow()
        hook(addon, "websocket_start", flow)
        message = receive(addon, flow, '[2,"1","Heartbeat",{}]', from_client=True)
    assert sink.rows[1]["ts"] == int(message.timestamp * 1_000_000)


def test_messages_list_is_trimmed_after_each_write(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow()
        hook(addon, "websocket_start", flow)
        assert flow.websocket is not None
        for n in range(50):
            receive(addon, flow, f'[2,"{n}","Heartbeat",{{}}]', from_client=True)
            # only the latest stays, for addons that read messages[-1] after ours
            assert [m.content for m in flow.websocket.messages] == [
                f'[2,"{n}","Heartbeat",{{}}]'.encode()
            ]
        hook(addon, "websocket_end", flow)
        assert flow.websocket.messages == []
    assert len(sink.rows) == 52


def test_password_is_never_recorded(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow()
        hook(addon, "websocket_start", flow)
        receive(addon, flow, '[2,"1","Heartbeat",{}]', from_client=True)
        hook(addon, "websocket_end", flow)
        refused = charger_flow()
        assert refused.response is not None
        refused.websocket = None
        refused.response.status_code = 401
        hook(addon, "response", refused)
    encoded = base64.b64encode(f"CP 1:{PASSWORD}".encode()).decode()
    text = json.dumps(sink.rows, default=repr)
    assert PASSWORD not in text and encoded not in text
    assert [row["auth_user"] for row in sink.rows if row["event"] in ("open", "refused")] == [
        "CP 1"
    ] * 2


def test_backend_refusal_is_recorded_with_its_status(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow("/ocpp/CP7")
        assert flow.response is not None
        flow.websocket = None  # mitmproxy sets it only for a 101
        flow.response.status_code = 401
        flow.response.reason = "Unauthorized"
        hook(addon, "response", flow)
        # an ordinary HTTP request (not a WebSocket upgrade) is not a charger: no row
        plain = tflow.tflow(resp=True)
        hook(addon, "response", plain)
    assert len(sink.rows) == 1
    row = sink.rows[0]
    assert (row["event"], row["http_status"], row["charge_point_id"]) == ("refused", 401, "CP7")
    assert json.loads(str(row["detail"])) == {"reason": "Unauthorized"}


def test_unreachable_backend_is_recorded_as_502(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow("/ocpp/CP8")
        flow.websocket = None
        flow.response = None
        flow.error = tflow.terr("Connection refused")
        hook(addon, "error", flow)
    [row] = sink.rows
    assert (row["event"], row["http_status"], row["charge_point_id"]) == ("refused", 502, "CP8")
    assert "Connection refused" in str(row["detail"])


def test_connection_killed_without_websocket_end_still_gets_a_close_row(
    addon: OcppCapture, sink: ListSink
) -> None:
    with taddons.context(addon):
        flow = charger_flow()
        hook(addon, "websocket_start", flow)
        hook(addon, "client_disconnected", flow.client_conn)
        hook(addon, "websocket_end", flow)  # a late end hook does not add a second close
    assert [row["event"] for row in sink.rows] == ["open", "close"]
    assert sink.rows[1]["close_code"] == 1006


def test_upstream_path_is_prepended_and_the_charger_path_recorded(
    addon: OcppCapture, sink: ListSink
) -> None:
    with taddons.context(addon) as tctx:
        tctx.configure(addon, ocpp_upstream_path="/base/")
        flow = charger_flow("/ocpp/CP1?x=1")
        hook(addon, "requestheaders", flow)
        assert flow.request.path == "/base/ocpp/CP1?x=1"
        hook(addon, "websocket_start", flow)
    assert sink.rows[0]["path"] == "/ocpp/CP1?x=1"
    assert sink.rows[0]["charge_point_id"] == "CP1"


def test_write_error_under_close_policy_drops_and_kills(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon):
        flow = charger_flow()
        hook(addon, "websocket_start", flow)
        sink.fail = True
        message = receive(addon, flow, '[2,"1","Heartbeat",{}]', from_client=True)
    assert message.dropped  # not recorded, so not forwarded
    assert flow.error is not None and flow.error.msg == "Connection killed."


def test_a_frame_over_the_limit_is_not_forwarded(addon: OcppCapture, sink: ListSink) -> None:
    with taddons.context(addon) as tctx:
        tctx.configure(addon, ocpp_max_frame_bytes=64)
        flow = charger_flow()
        hook(addon, "websocket_start", flow)
        fits = receive(addon, flow, '[2,"1","Heartbeat",{}]', from_client=True)
        too_big = receive(
            addon, flow, '[2,"2","DataTransfer",{"data":"' + "x" * 64 + '"}]', from_client=True
        )
    assert not fits.dropped and too_big.dropped
    assert [row["event"] for row in sink.rows] == ["open", "message"]  # the big one is not recorded
    # no live proxy to send a 1009 through here, so the flow is killed instead
    assert flow.error is not None and flow.error.msg == "Connection killed."


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("ocpp_idle_timeout", -1),
        ("ocpp_max_frame_bytes", -1),
        ("capture_rotate_seconds", 0),
        ("capture_rotate_bytes", -5),
        ("ocpp_upstream_path", "base"),
        ("capture_on_write_error", "ignore"),
    ],
)
def test_bad_options_are_refused(addon: OcppCapture, option: str, value: object) -> None:
    with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError):
        tctx.configure(addon, **{option: value})


def test_capture_dir_must_be_a_folder(addon: OcppCapture, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with (
        taddons.context(addon) as tctx,
        pytest.raises(exceptions.OptionsError, match="not a folder"),
    ):
        tctx.configure(addon, capture_dir=str(not_a_folder))


def test_idle_timeout_option_sets_mitmproxys_cut_off() -> None:
    original = getattr(mitm_server, "TCP_TIMEOUT", None)  # mitmproxy 11's module constant
    capture = OcppCapture(ListSink())
    with taddons.context(capture) as tctx:
        assert idle_cut_off(tctx.options) == NO_IDLE_TIMEOUT_S  # lifted by default
        tctx.configure(capture, ocpp_idle_timeout=42)
        assert idle_cut_off(tctx.options) == 42
        hook(capture, "done")
    assert original == getattr(mitm_server, "TCP_TIMEOUT", None)


def test_standalone_addon_opens_and_seals_its_own_capture(tmp_path: Path) -> None:
    """As under ``mitmdump -s mitm/__init__.py --set capture_dir=DIR``: writer made in running()."""
    capture = OcppCapture()
    with taddons.context(capture) as tctx:
        tctx.configure(capture, capture_dir=str(tmp_path / "cap"))
        hook(capture, "running")
        flow = charger_flow("/ocpp/CP9")
        hook(capture, "websocket_start", flow)
        receive(capture, flow, '[2,"1","Heartbeat",{}]', from_client=True)
        flow.websocket.close_code = 1000
        flow.websocket.closed_by_client = False
        hook(capture, "websocket_end", flow)
        hook(capture, "done")
    rows = duckdb.sql(
        f"select event, charge_point_id, action, closed_by from read_parquet('{tmp_path}/cap/**/*.parquet', "
        "hive_partitioning = true) order by seq"
    ).fetchall()
    assert rows == [
        ("open", "CP9", None, None),
        ("message", "CP9", "Heartbeat", None),
        ("close", "CP9", None, "backend"),
    ]


def test_reverse_mode_from_upstream_url() -> None:
    assert reverse_mode("ws://csms:9000") == ("reverse:http://csms:9000", "")
    assert reverse_mode("wss://csms.example.com/base/") == (
        "reverse:https://csms.example.com",
        "/base",
    )
    with pytest.raises(ValueError):
        reverse_mode("ftp://csms")


# -- mitmproxy's idle cut-off, on a real socket ---------------------------------------------------


async def idle_charger(engine: MitmEngine, backend_url: str, idle_s: float) -> int | None:
    """Connect a charger, stay silent for ``idle_s``; the close code if the proxy cut it, else None."""
    async with websockets.connect(
        f"ws://127.0.0.1:{engine.port}/ocpp/IDLE", subprotocols=["ocpp1.6"], ping_interval=None
    ) as charger:
        try:
            async with asyncio.timeout(idle_s):
                await charger.wait_closed()
        except TimeoutError:
            await charger.send('[2,"1","Heartbeat",{}]')  # still relayed after the silence
            assert await asyncio.wait_for(charger.recv(), timeout(5)) == '[2,"1","Heartbeat",{}]'
            return None
        return charger.close_code


async def test_idle_cut_off_shortened_cuts_and_lifted_does_not(tmp_path: Path) -> None:
    async def echo(websocket: websockets.ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    backend = await websockets.serve(
        echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ping_interval=None
    )
    backend_url = f"ws://127.0.0.1:{backend.sockets[0].getsockname()[1]}"
    options = RecordOptions(capture_dir=tmp_path, upstream=backend_url, engine="mitmproxy")
    with CaptureWriter(tmp_path) as writer:
        engine = MitmEngine(options, writer)
        await engine.start()
        try:
            assert engine._master is not None
            # Shortened to 1 s: mitmproxy cuts the silent charger (no close frame: 1006).
            engine._master.options.update(ocpp_idle_timeout=1)
            assert await idle_charger(engine, backend_url, timeout(3)) == 1006
            # Lifted (the default): the same silence is nothing, and the live connection's
            # watchdog carries the lifted value (600 s could not be waited for here).
            engine._master.options.update(ocpp_idle_timeout=0)
            watched = asyncio.create_task(idle_charger(engine, backend_url, timeout(2)))
            await asyncio.sleep(timeout(0.5))
            assert engine._proxyserver is not None
            [handler] = engine._proxyserver.connections.values()
            assert handler.timeout_watchdog.timeout == NO_IDLE_TIMEOUT_S
            assert await watched is None
        finally:
            await engine.stop()
            backend.close()
    closes = duckdb.sql(
        f"select close_code, closed_by from read_parquet('{tmp_path}/**/*.parquet', hive_partitioning = true) "
        "where event = 'close' order by ts"
    ).fetchall()
    # mitmproxy's cut looks like a dropped TCP connection; the second charger closed normally.
    assert closes == [(1006, "charger"), (1000, "charger")]


# -- under mitmdump -s, as the README documents ----------------------------------------------------


async def test_mitmdump_script_records_a_charger(tmp_path: Path) -> None:
    """``mitmdump -s ocpp_audit/recorder/mitm/__init__.py --set capture_dir=DIR``, a real process."""
    import ocpp_audit.recorder.mitm as script

    async def echo(websocket: websockets.ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    backend = await websockets.serve(
        echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ping_interval=None
    )
    backend_port = backend.sockets[0].getsockname()[1]
    mitmdump = Path(sys.executable).parent / "mitmdump"
    process = await asyncio.create_subprocess_exec(
        str(mitmdump),
        "-s",
        script.__file__,
        "--mode",
        f"reverse:http://127.0.0.1:{backend_port}",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        "0",
        "--set",
        f"capture_dir={tmp_path / 'cap'}",
        "--set",
        "connection_strategy=lazy",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(timeout(30)):
            while not (
                match := re.search(rb"listening at .*:(\d+)", await process.stdout.readline())
            ):
                pass
        port = int(match.group(1))
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ocpp/CP7", subprotocols=["ocpp1.6"], ping_interval=None
        ) as charger:
            await charger.send('[2,"1","Heartbeat",{}]')
            assert await asyncio.wait_for(charger.recv(), timeout(5)) == '[2,"1","Heartbeat",{}]'
        process.send_signal(signal.SIGINT)  # mitmdump's done hook seals the capture
        async with asyncio.timeout(timeout(20)):
            await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        backend.close()
    rows = duckdb.sql(
        f"select event, charge_point_id, direction, closed_by from read_parquet('{tmp_path}/cap/**/*.parquet', "
        "hive_partitioning = true) order by seq"
    ).fetchall()
    assert rows == [
        ("open", "CP7", None, None),
        ("message", "CP7", "cp_to_cs", None),
        ("message", "CP7", "cs_to_cp", None),
        ("close", "CP7", None, "charger"),
    ]
