"""Hardening of issue 7: the control API over TLS, the mitmproxy addon's handshake timeout and
pseudonymisation option, and upstream URL credentials kept out of logs and messages."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from pathlib import Path

import pytest

from ocpp_audit.recorder.control import ControlServer
from ocpp_audit.recorder.injection import ChargerRegistry
from tests.conftest import timeout

TOKEN = "s3cret-control-token"


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


# -- the control API -----------------------------------------------------------------------------


def test_control_api_refuses_a_public_address_without_tls(
    certificate: tuple[Path, Path],
) -> None:
    for host in ("0.0.0.0", "192.0.2.1", "::"):
        with pytest.raises(ValueError, match="only with TLS"):
            ControlServer(ChargerRegistry(), TOKEN, host, 0)
    # With a TLS context a public address is accepted (not bound here: tests stay on loopback).
    server = ControlServer(
        ChargerRegistry(), TOKEN, "0.0.0.0", 0, ssl_context=server_context(certificate)
    )
    assert server.url.startswith("https://")


def _get(port: int, cafile: Path | None, token: str | None) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", "/chargers", headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


async def test_control_api_answers_over_tls(certificate: tuple[Path, Path]) -> None:
    server = ControlServer(
        ChargerRegistry(), TOKEN, "127.0.0.1", 0, ssl_context=server_context(certificate)
    )
    await server.start()
    try:
        assert server.url == f"https://127.0.0.1:{server.port}"
        async with asyncio.timeout(timeout(10)):
            status, document = await asyncio.to_thread(_get, server.port, certificate[0], TOKEN)
            assert (status, document) == (200, {"chargers": []})
            status, _ = await asyncio.to_thread(_get, server.port, certificate[0], None)
            assert status == 401
            # A client that does not trust the certificate gets no answer at all.
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.to_thread(_get, server.port, None, TOKEN)
            # Plain HTTP to the TLS port gets nothing back either.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                f"GET /chargers HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            await writer.drain()
            assert b"chargers" not in await reader.read(1000)
            writer.close()
    finally:
        await server.stop()


async def test_recorder_serves_a_non_loopback_control_api_over_tls(
    tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocpp_audit.lab.central_system import CentralSystem
    from ocpp_audit.recorder import control
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService

    # Tests stay on loopback: 127.0.0.1 stands in for a public address here.
    monkeypatch.setattr(control, "is_loopback", lambda host: False)
    cert, key = certificate
    options = RecordOptions(
        capture_dir=tmp_path / "capture",
        standalone=True,
        tls_cert=cert,
        tls_key=key,
        control_host="127.0.0.1",
        control_port=0,
        control_token=TOKEN,
    )
    async with RecorderService(options, CentralSystem()) as service:
        assert service.control is not None
        assert service.control.url.startswith("https://")
        async with asyncio.timeout(timeout(10)):
            status, document = await asyncio.to_thread(_get, service.control.port, cert, TOKEN)
        assert (status, document) == (200, {"chargers": []})


def test_record_needs_tls_for_a_public_control_address(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ocpp_audit.cli.record import record

    args = ["--standalone", "--capture", str(tmp_path / "c"), "--control", "192.0.2.1:0"]
    result = CliRunner().invoke(record, args)
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key" in result.output


# -- credentials in the upstream URL --------------------------------------------------------------

PASSWORD = "hunter2-upstream-password"


def test_redact_url() -> None:
    from ocpp_audit.recorder.relay import redact_url

    assert redact_url(f"ws://user:{PASSWORD}@csms:9000/ocpp") == "ws://***@csms:9000/ocpp"
    assert redact_url(f"wss://{PASSWORD}@[::1]:9000") == "wss://***@[::1]:9000"
    assert redact_url("ws://csms:9000/ocpp?x=1") == "ws://csms:9000/ocpp?x=1"


async def test_upstream_credentials_stay_out_of_logs_and_capture(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import socket

    import websockets

    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.relay import RelayEngine

    with socket.socket() as probe:  # a port nobody listens on: the backend is unreachable
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    rows: list[dict[str, object]] = []
    upstream = f"ws://auditor:{PASSWORD}@127.0.0.1:{dead_port}/ocpp"
    caplog.set_level(logging.DEBUG)
    engine = RelayEngine(RecordOptions(capture_dir=tmp_path, upstream=upstream), rows)  # type: ignore[arg-type]
    await engine.start()
    try:
        async with asyncio.timeout(timeout(10)):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"ws://127.0.0.1:{engine.port}/CP1")
        assert refused.value.response.status_code == 502
    finally:
        await engine.stop()
    assert [row["event"] for row in rows] == ["refused"]
    assert "127.0.0.1" in caplog.text  # the upstream is logged, without its user info
    assert PASSWORD not in caplog.text and "auditor" not in caplog.text
    assert PASSWORD not in repr(rows)

    from click.testing import CliRunner

    from ocpp_audit.cli.record import record

    bad = CliRunner().invoke(record, ["--upstream", f"http://u:{PASSWORD}@csms", "--capture", "c"])
    assert bad.exit_code == 2 and "***@csms" in bad.output and PASSWORD not in bad.output


# -- the mitmproxy addon ------------------------------------------------------------------------


def test_mitmdump_addon_pseudonymises_idtags(tmp_path: Path) -> None:
    """As under ``mitmdump -s mitm/__init__.py --set ocpp_pseudonymise_key=KEY``."""
    from mitmproxy.test import taddons

    from ocpp_audit.recorder.mitm import OcppCapture
    from ocpp_audit.recorder.pseudonymise import IdTagPseudonymiser
    from tests.engines import read_capture
    from tests.test_mitm_addon import charger_flow, hook, receive

    tag, key = "04A2B3C4D5E6F7", "site-a-key"
    capture = OcppCapture()
    with taddons.context(capture) as tctx:
        tctx.configure(capture, capture_dir=str(tmp_path / "cap"), ocpp_pseudonymise_key=key)
        hook(capture, "running")
        flow = charger_flow("/ocpp/CP9")
        hook(capture, "websocket_start", flow)
        call = f'[2,"1","Authorize",{{"idTag":"{tag}"}}]'
        forwarded = receive(capture, flow, call, from_client=True)
        flow.websocket.close_code = 1000
        flow.websocket.closed_by_client = True
        hook(capture, "websocket_end", flow)
        hook(capture, "done")
    assert forwarded.content == call.encode()  # the wire is untouched
    text = repr([row["raw"] for row in read_capture(tmp_path / "cap") if row["event"] == "message"])
    assert tag not in text
    assert IdTagPseudonymiser(key).pseudonym(tag) in text


async def test_mitm_engine_closes_a_stalled_handshake(tmp_path: Path) -> None:
    import websockets

    from ocpp_audit.capture.writer import CaptureWriter
    from ocpp_audit.recorder.mitm_engine import MitmEngine
    from ocpp_audit.recorder.options import RecordOptions
    from tests.engines import PlainBackend

    backend = PlainBackend(echo=True)
    await backend.start()
    options = RecordOptions(capture_dir=tmp_path, upstream=backend.url, engine="mitmproxy")
    with CaptureWriter(tmp_path) as writer:
        engine = MitmEngine(options, writer)
        await engine.start()
        try:
            assert engine._master is not None
            engine._master.options.update(ocpp_handshake_timeout=1)
            async with asyncio.timeout(timeout(15)):
                charger = await websockets.connect(
                    f"ws://127.0.0.1:{engine.port}/ocpp/CP1", subprotocols=["ocpp1.6"]
                )
                reader, stalled = await asyncio.open_connection("127.0.0.1", engine.port)
                stalled.write(b"GET /ocpp/STALLED HTTP/1.1\r\nHost: x\r\n")  # never finished
                await stalled.drain()
                started = asyncio.get_running_loop().time()
                assert await reader.read() == b""  # closed by the recorder
                waited = asyncio.get_running_loop().time() - started
                stalled.close()
                # The charger whose handshake completed is not cut by the same timer.
                await charger.send('[2,"1","Heartbeat",{}]')
                assert await charger.recv() == '[2,"1","Heartbeat",{}]'
                await charger.close()
            assert waited >= 0.5
        finally:
            await engine.stop()
            await backend.stop()
