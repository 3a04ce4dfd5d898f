"""Active mode, for both engines: CALLs injected through the control API, on loopback.

A SimulatedCharger (or a raw websockets charger, when the test must control the answers) connects
through a RecorderService, in front of the built-in CentralSystem or a plain websockets backend.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ocpp_audit.lab.simulator import SimulatedCharger
from ocpp_audit.recorder.control import (
    TOKEN_FILE_NAME,
    ControlClient,
    ControlServer,
    is_loopback,
)
from ocpp_audit.recorder.injection import INJECTED_ID_PREFIX
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout
from tests.engines import PlainBackend, RecorderFactory, recv, stop_and_read

# The server-initiated commands of the acceptance script (functions 3-7 and 10-16), in an order the
# simulator can follow without a person: the firmware update is scheduled an hour ahead and the hard
# reset comes last, since it reboots the charger.
ACCEPTANCE_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("TriggerMessage", {"requestedMessage": "StatusNotification"}),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}),
    ("ChangeAvailability", {"connectorId": 1, "type": "Operative"}),
    ("GetConfiguration", {}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}),
    ("RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG-1"}),
    ("RemoteStopTransaction", {"transactionId": 987654}),
    (
        "UpdateFirmware",
        {"location": "http://example.invalid/fw.bin", "retrieveDate": "2099-01-01T00:00:00Z"},
    ),
    (
        "GetDiagnostics",
        {"location": "ftp://example.invalid/", "startTime": "2024-01-01T00:00:00Z"},
    ),
    ("ClearCache", {}),
    ("Reset", {"type": "Soft"}),
]


def client_for(service: RecorderService, token: str | None = None) -> ControlClient:
    assert service.control is not None
    return ControlClient(service.control.url, token if token is not None else service.control.token)


async def in_thread(function: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with asyncio.timeout(timeout(30)):
        return await asyncio.to_thread(function, *args, **kwargs)


async def wait_listed(client: ControlClient, charge_point_id: str) -> dict[str, Any]:
    async with asyncio.timeout(timeout(10)):
        while True:
            status, document = await in_thread(client.chargers)
            assert status == 200, document
            for charger in document["chargers"]:
                if charger["charge_point_id"] == charge_point_id:
                    return charger
            await asyncio.sleep(0.05)


@pytest.fixture
async def controlled_cs(recording: RecorderFactory) -> AsyncIterator[RecorderService]:
    """A recorder with the control API, in front of the built-in central system."""
    async with recording(standalone=True, control_host="127.0.0.1", control_port=0) as service:
        yield service


@pytest.fixture
async def controlled_plain(
    recording: RecorderFactory, plain_backend: PlainBackend
) -> AsyncIterator[tuple[RecorderService, PlainBackend]]:
    async with recording(
        upstream=plain_backend.url, control_host="127.0.0.1", control_port=0
    ) as service:
        yield service, plain_backend


async def charger_connect(service: RecorderService, charge_point_id: str) -> ClientConnection:
    return await connect(
        f"{service.url}/{charge_point_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        ping_interval=None,
        open_timeout=timeout(10),
    )


async def recv_json(websocket: ClientConnection, seconds: float = 5) -> list[Any]:
    return json.loads(await recv(websocket, seconds))


async def test_each_server_initiated_command_is_injected_answered_and_kept_from_the_backend(
    controlled_cs: RecorderService,
) -> None:
    service = controlled_cs
    assert service.central_system is not None
    charger = SimulatedCharger("CP-INJ", service.url, connectors=1)
    await charger.start()
    try:
        client = client_for(service)
        listed = await wait_listed(client, "CP-INJ")
        assert listed["subprotocol"] == "ocpp1.6"
        assert listed["connected_since"].endswith("Z")
        for action, payload in ACCEPTANCE_COMMANDS:
            status, answer = await in_thread(client.call, "CP-INJ", action, payload, timeout(10))
            assert status == 200, (action, answer)
            assert answer["message_type"] == 3, (action, answer)
            assert answer["unique_id"].startswith(INJECTED_ID_PREFIX)
            assert answer["action"] == action
            if action not in ("GetConfiguration", "GetDiagnostics", "UpdateFirmware"):
                assert "status" in answer["payload"], (action, answer)
        assert answer["payload"] == {"status": "Accepted"}  # the soft reset
    finally:
        await charger.stop()
    rows = await stop_and_read(service)
    injected = [row for row in rows if row["event"] == "message" and row["injected"]]
    calls = [row for row in injected if row["message_type"] == 2]
    answers = [row for row in injected if row["message_type"] == 3]
    assert [row["action"] for row in calls] == [action for action, _ in ACCEPTANCE_COMMANDS]
    assert all(row["direction"] == "cs_to_cp" for row in calls)
    assert all(row["unique_id"].startswith(INJECTED_ID_PREFIX) for row in calls)
    assert sorted(row["unique_id"] for row in answers) == sorted(row["unique_id"] for row in calls)
    assert all(row["direction"] == "cp_to_cs" for row in answers)


async def test_backend_never_sees_the_answer_and_a_backend_call_is_held_then_delivered(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, backend = controlled_plain
    charger = await charger_connect(service, "CP-HOLD")
    upstream = await backend.wait_connection()
    client = client_for(service)
    await wait_listed(client, "CP-HOLD")

    injection = asyncio.ensure_future(
        in_thread(client.call, "CP-HOLD", "ClearCache", {}, timeout(10))
    )
    call = await recv_json(charger)
    assert call[0] == 2 and call[2] == "ClearCache" and call[1].startswith(INJECTED_ID_PREFIX)

    # The backend sends its own CALL while ours is pending: it is held, not forwarded.
    backend_call = '[2,"backend-1","Reset",{"type":"Soft"}]'
    await upstream.websocket.send(backend_call)
    listed = await wait_listed(client, "CP-HOLD")
    async with asyncio.timeout(timeout(5)):
        while listed["held_backend_calls"] != 1:
            await asyncio.sleep(0.02)
            listed = await wait_listed(client, "CP-HOLD")
    assert any(p["injected"] for p in listed["pending_calls"])
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await charger.recv()

    # The charger answers ours: the answer stays with the recorder, the held CALL follows.
    await charger.send(json.dumps([3, call[1], {"status": "Accepted"}]))
    status, answer = await injection
    assert status == 200 and answer["payload"] == {"status": "Accepted"}
    assert await recv_json(charger) == json.loads(backend_call)
    await charger.send('[3,"backend-1",{"status":"Accepted"}]')
    await charger.send('[2,"h1","Heartbeat",{}]')
    received = await upstream.wait_received(2)
    assert received == ['[3,"backend-1",{"status":"Accepted"}]', '[2,"h1","Heartbeat",{}]']
    await charger.close()

    rows = await stop_and_read(service)
    by_id = {(row["unique_id"], row["message_type"]): row for row in rows if row["unique_id"]}
    assert by_id[(call[1], 2)]["injected"] and by_id[(call[1], 3)]["injected"]
    assert not by_id[("backend-1", 2)]["injected"] and not by_id[("backend-1", 3)]["injected"]
    assert by_id[("backend-1", 3)]["action"] == "Reset"


async def test_an_injection_waits_for_an_unanswered_backend_call(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, backend = controlled_plain
    charger = await charger_connect(service, "CP-WAIT")
    upstream = await backend.wait_connection()
    client = client_for(service)
    await wait_listed(client, "CP-WAIT")
    await upstream.websocket.send('[2,"backend-2","ClearCache",{}]')
    assert (await recv_json(charger))[1] == "backend-2"

    injection = asyncio.ensure_future(
        in_thread(client.call, "CP-WAIT", "GetConfiguration", {}, timeout(10))
    )
    with pytest.raises(TimeoutError):  # nothing sent while the backend's CALL is unanswered
        async with asyncio.timeout(0.4):
            await charger.recv()
    await charger.send('[3,"backend-2",{"status":"Accepted"}]')
    call = await recv_json(charger)
    assert call[2] == "GetConfiguration"
    await charger.send(json.dumps([4, call[1], "NotSupported", "no", {}]))
    status, answer = await injection
    assert status == 200
    assert answer["message_type"] == 4 and answer["error_code"] == "NotSupported"
    assert await upstream.wait_received(1) == ['[3,"backend-2",{"status":"Accepted"}]']
    await charger.close()


async def test_a_malformed_answer_to_an_injection_comes_back_as_the_charger_sent_it(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, backend = controlled_plain
    charger = await charger_connect(service, "CP-ODD")
    upstream = await backend.wait_connection()
    client = client_for(service)
    await wait_listed(client, "CP-ODD")
    injection = asyncio.ensure_future(
        in_thread(client.call, "CP-ODD", "ClearCache", {}, timeout(10))
    )
    call = await recv_json(charger)
    # Readable type and unique id, so it still answers our CALL; the payload is not an object.
    malformed = f'[3, "{call[1]}", ["Accepted"]]'
    await charger.send(malformed)
    status, answer = await injection
    assert status == 200
    assert answer["raw"] == malformed  # the text as sent, not its repr
    assert answer["message_type"] == 3
    assert answer["malformed"] == "CALLRESULT payload is not a JSON object"
    await charger.send('[2,"h1","Heartbeat",{}]')
    assert await upstream.wait_received(1) == ['[2,"h1","Heartbeat",{}]']  # ours stayed here
    await charger.close()


async def test_after_an_injection_times_out_the_next_goes_and_the_late_answer_stays_here(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, backend = controlled_plain
    charger = await charger_connect(service, "CP-LATE")
    upstream = await backend.wait_connection()
    client = client_for(service)
    await wait_listed(client, "CP-LATE")
    status, answer = await in_thread(client.call, "CP-LATE", "ClearCache", {}, 0.3)
    assert status == 504
    late = await recv_json(charger)
    # OCPP-J 1.6 section 4.1.1: a CALL that "timed out" no longer holds back the next one.
    injection = asyncio.ensure_future(
        in_thread(client.call, "CP-LATE", "GetConfiguration", {}, timeout(10))
    )
    second = await recv_json(charger)
    assert second[2] == "GetConfiguration"
    await charger.send(json.dumps([3, late[1], {"status": "Accepted"}]))  # too late
    await charger.send(json.dumps([3, second[1], {"configurationKey": []}]))
    status, answer = await injection
    assert status == 200 and answer["payload"] == {"configurationKey": []}
    await charger.send('[2,"h1","Heartbeat",{}]')
    # Neither answer reaches the backend, which never asked.
    assert await upstream.wait_received(1) == ['[2,"h1","Heartbeat",{}]']
    await charger.close()
    rows = await stop_and_read(service)
    late_answer = next(r for r in rows if r["unique_id"] == late[1] and r["message_type"] == 3)
    assert late_answer["injected"] and late_answer["action"] == "ClearCache"


async def test_a_disconnect_fails_the_pending_injection_at_once(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, _backend = controlled_plain
    charger = await charger_connect(service, "CP-GONE")
    client = client_for(service)
    await wait_listed(client, "CP-GONE")
    injection = asyncio.ensure_future(in_thread(client.call, "CP-GONE", "ClearCache", {}, 60))
    await recv_json(charger)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await charger.close()
    status, answer = await injection
    assert status == 502
    assert "CP-GONE disconnected" in answer["error"]
    assert loop.time() - started < timeout(10)  # not the 60 s of the call's timeout


async def test_unknown_charger_invalid_payload_and_timeout(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, _backend = controlled_plain
    client = client_for(service)
    status, answer = await in_thread(client.call, "NOBODY", "ClearCache", {}, 5)
    assert status == 404 and "NOBODY" in answer["error"]

    charger = await charger_connect(service, "CP-BAD")
    await wait_listed(client, "CP-BAD")
    status, answer = await in_thread(client.call, "CP-BAD", "Reset", {"type": "Sideways"}, 5)
    assert status == 400 and "Sideways" in answer["error"]
    status, answer = await in_thread(client.call, "CP-BAD", "NoSuchAction", {}, 5)
    assert status == 400 and "not an OCPP 1.6 action" in answer["error"]
    with pytest.raises(TimeoutError):  # nothing was sent
        async with asyncio.timeout(0.3):
            await charger.recv()

    status, answer = await in_thread(client.call, "CP-BAD", "ClearCache", {}, 0.3)
    assert status == 504 and "no answer" in answer["error"]
    await recv_json(charger)  # it was sent, never answered
    await charger.close()


async def test_requests_without_or_with_a_wrong_token_are_refused(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, _backend = controlled_plain
    charger = await charger_connect(service, "CP-TOK")
    await wait_listed(client_for(service), "CP-TOK")
    for token in ("", "wrong", service.control.token + "x"):  # type: ignore[union-attr]
        client = client_for(service, token)
        assert (await in_thread(client.chargers))[0] == 401
        status, _ = await in_thread(client.call, "CP-TOK", "ClearCache", {}, 5)
        assert status == 401
    with pytest.raises(TimeoutError):  # nothing was sent
        async with asyncio.timeout(0.3):
            await charger.recv()
    await charger.close()


async def test_generated_token_file_is_owner_only_and_removed_at_stop(
    controlled_plain: tuple[RecorderService, PlainBackend],
) -> None:
    service, _backend = controlled_plain
    token_file = service.control_token_file
    assert token_file is not None and token_file.name == TOKEN_FILE_NAME
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == service.control.token  # type: ignore[union-attr]
    await service.__aexit__(None, None, None)
    assert not token_file.exists()


def test_the_control_api_refuses_a_non_loopback_address() -> None:
    from ocpp_audit.recorder.injection import ChargerRegistry

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    with pytest.raises(ValueError, match="loopback"):
        ControlServer(ChargerRegistry(), "token", "0.0.0.0", 0)


async def test_injection_validates_against_the_chargers_ocpp_version(
    controlled_cs: RecorderService,
) -> None:
    """A 2.0.1 station gets 2.0.1 payloads: the recorder checks them with the 2.0.1 schemas."""
    from ocpp_audit.lab.simulator import SimulatedCharger201

    charger = SimulatedCharger201("CP-INJ201", controlled_cs.url, connectors=1)
    await charger.start()
    try:
        client = client_for(controlled_cs)
        listed = await wait_listed(client, "CP-INJ201")
        assert (listed["subprotocol"], listed["ocpp_version"]) == ("ocpp2.0.1", "2.0.1")
        status, answer = await in_thread(
            client.call,
            "CP-INJ201",
            "ChangeAvailability",
            {"operationalStatus": "Inoperative", "evse": {"id": 1}},
            timeout(10),
        )
        assert status == 200 and answer["payload"] == {"status": "Accepted"}, answer
        # the 1.6 shape of the same command is refused before anything is sent
        status, answer = await in_thread(
            client.call,
            "CP-INJ201",
            "ChangeAvailability",
            {"connectorId": 1, "type": "Inoperative"},
            timeout(10),
        )
        assert status == 400 and "ChangeAvailabilityRequest" in answer["error"], answer
    finally:
        await charger.stop()
