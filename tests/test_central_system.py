"""The built-in central system, driven by a minimal charger that speaks raw OCPP-J frames."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import ocpp.v16
import pytest
from ocpp.messages import get_validator
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ocpp_audit.lab.central_system import (
    CallErrorReceived,
    CentralSystem,
    CentralSystemConfig,
)
from ocpp_audit.protocol import frames
from ocpp_audit.protocol.constants import ERROR_CODES, OcppVersion
from tests.conftest import timeout

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
NOW = "2024-05-01T10:00:00Z"


class RawCharger:
    """A charger reduced to its wire: sends CALLs, reads answers, answers the central system."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = itertools.count(1)

    async def request(self, action: str, payload: dict[str, Any]) -> frames.Frame:
        unique_id = f"cp-{next(self._ids)}"
        await self.connection.send(frames.Call.create(unique_id, action, payload).serialize())
        answer = await self.receive()
        assert not isinstance(answer, frames.Malformed), answer
        assert answer.unique_id == unique_id
        return answer

    async def result(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = await self.request(action, payload)
        assert isinstance(answer, frames.CallResult), answer
        return answer.payload

    async def receive(self) -> frames.Frame:
        async with asyncio.timeout(timeout(5)):
            return frames.parse(await self.connection.recv())


async def open_charger(
    cs: CentralSystem, path: str = "/ocpp/CP1", subprotocols: list[str] | None = None
) -> RawCharger:
    offered = ["ocpp1.6"] if subprotocols is None else subprotocols
    connection = await connect(cs.url + path, subprotocols=offered or None, open_timeout=timeout(5))
    return RawCharger(connection)


@pytest.fixture
async def cs() -> AsyncIterator[CentralSystem]:
    central_system = CentralSystem()
    await central_system.start()
    yield central_system
    await central_system.stop()


@pytest.fixture
async def charger(cs: CentralSystem) -> AsyncIterator[RawCharger]:
    raw = await open_charger(cs)
    await cs.wait_connected("CP1", timeout=timeout(5))
    yield raw
    await raw.connection.close()


def assert_valid_answer(action: str, payload: dict[str, Any]) -> None:
    """The answer conforms to the OCPP 1.6 JSON schema the ocpp package ships."""
    get_validator(frames.MessageType.CALLRESULT, action, "1.6").validate(payload)


CHARGER_CALLS = [
    ("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "AC-22"}),
    ("Heartbeat", {}),
    ("Authorize", {"idTag": "TAG1"}),
    (
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG1", "meterStart": 100, "timestamp": NOW},
    ),
    ("StopTransaction", {"transactionId": 1, "meterStop": 900, "timestamp": NOW}),
    (
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": NOW,
                    "sampledValue": [{"value": "2e+01", "measurand": "Current.Import"}],
                }
            ],
        },
    ),
    ("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}),
    ("FirmwareStatusNotification", {"status": "Downloading"}),
    ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
    ("DataTransfer", {"vendorId": "com.example", "messageId": "x", "data": "y"}),
]


@pytest.mark.parametrize(("action", "payload"), CHARGER_CALLS, ids=[a for a, _ in CHARGER_CALLS])
async def test_every_answered_action_gets_a_schema_valid_answer(
    charger: RawCharger, action: str, payload: dict[str, Any]
) -> None:
    answer = await charger.result(action, payload)
    assert_valid_answer(action, answer)
    if "currentTime" in answer:
        assert ISO_UTC.match(answer["currentTime"]), answer["currentTime"]


async def test_data_transfer_is_unknown_vendor(charger: RawCharger) -> None:
    answer = await charger.result("DataTransfer", {"vendorId": "com.example"})
    assert answer == {"status": "UnknownVendorId"}


async def test_boot_defaults_accept_with_60_s_heartbeat(charger: RawCharger) -> None:
    answer = await charger.result("BootNotification", dict(CHARGER_CALLS[0][1]))
    assert answer["status"] == "Accepted"
    assert answer["interval"] == 60


@pytest.mark.parametrize("boot_status", ["Pending", "Rejected"])
async def test_boot_status_and_interval_are_configurable(boot_status: str) -> None:
    cs = CentralSystem(CentralSystemConfig(boot_status=boot_status, heartbeat_interval=300))
    await cs.start()
    try:
        charger = await open_charger(cs)
        answer = await charger.result("BootNotification", dict(CHARGER_CALLS[0][1]))
        assert (answer["status"], answer["interval"]) == (boot_status, 300)
        assert cs.state("CP1").boot == CHARGER_CALLS[0][1]
    finally:
        await cs.stop()


def test_config_refuses_unknown_statuses() -> None:
    with pytest.raises(ValueError, match="boot_status"):
        CentralSystemConfig(boot_status="Maybe")
    with pytest.raises(ValueError, match="id_tags"):
        CentralSystemConfig(id_tags={"TAG": "Fine"})


async def test_id_tags_map_decides_authorization_and_unknown_tags_are_invalid() -> None:
    config = CentralSystemConfig(id_tags={"GOOD": "Accepted", "LOST": "Blocked"})
    cs = CentralSystem(config)
    await cs.start()
    try:
        charger = await open_charger(cs)
        statuses = {}
        for id_tag in ("GOOD", "LOST", "NOBODY"):
            answer = await charger.result("Authorize", {"idTag": id_tag})
            statuses[id_tag] = answer["idTagInfo"]["status"]
        assert statuses == {"GOOD": "Accepted", "LOST": "Blocked", "NOBODY": "Invalid"}

        # OCPP 1.6 section 4.8: StartTransaction gets a transactionId even for a refused idTag.
        start = {"connectorId": 1, "idTag": "NOBODY", "meterStart": 0, "timestamp": NOW}
        answer = await charger.result("StartTransaction", start)
        assert answer["idTagInfo"] == {"status": "Invalid"}
        assert isinstance(answer["transactionId"], int)
        stop = {"transactionId": answer["transactionId"], "meterStop": 0, "timestamp": NOW}
        answer = await charger.result("StopTransaction", {**stop, "idTag": "LOST"})
        assert answer == {"idTagInfo": {"status": "Blocked"}}
    finally:
        await cs.stop()


async def test_transaction_ids_are_fresh_across_chargers_and_state_follows(
    cs: CentralSystem,
) -> None:
    first, second = await open_charger(cs, "/CP-A"), await open_charger(cs, "/CP-B")
    ids = []
    for charger, connector_id in ((first, 1), (second, 1), (first, 2)):
        start = {"connectorId": connector_id, "idTag": "T", "meterStart": 5, "timestamp": NOW}
        ids.append((await charger.result("StartTransaction", start))["transactionId"])
    assert ids == sorted(set(ids)), ids

    sample = {"timestamp": NOW, "sampledValue": [{"value": "165333.00"}]}
    meter = {"connectorId": 2, "transactionId": ids[2], "meterValue": [sample]}
    await first.result("MeterValues", meter)
    stop = {
        "transactionId": ids[2],
        "meterStop": 1234,
        "timestamp": NOW,
        "reason": "EVDisconnected",
    }
    await first.result("StopTransaction", stop)

    transactions = cs.state("CP-A").transactions
    assert set(transactions) == {ids[0], ids[2]}
    assert transactions[ids[0]].active
    done = transactions[ids[2]]
    assert (done.connector_id, done.id_tag, done.meter_start) == (2, "T", 5)
    assert (done.meter_stop, done.stop_reason, done.meter_values) == (1234, "EVDisconnected", 1)
    assert not done.active
    assert set(cs.state("CP-B").transactions) == {ids[1]}


async def test_status_notifications_keep_the_last_status_per_connector(
    cs: CentralSystem, charger: RawCharger
) -> None:
    for connector_id, status in ((0, "Available"), (1, "Preparing"), (1, "Charging")):
        payload = {"connectorId": connector_id, "errorCode": "NoError", "status": status}
        await charger.result("StatusNotification", payload)
    state = cs.state("CP1")
    assert (state.status(0), state.status(1), state.status(2)) == ("Available", "Charging", None)


async def test_unknown_action_gets_the_library_not_implemented_error(charger: RawCharger) -> None:
    answer = await charger.request("Reset", {"type": "Hard"})  # a CS-to-CP action
    assert isinstance(answer, frames.CallError)
    assert answer.error_code == "NotImplemented"
    answer = await charger.request("MakeCoffee", {})
    assert isinstance(answer, frames.CallError)
    assert answer.error_code == "NotSupported"


async def test_malformed_call_gets_formation_violation(charger: RawCharger) -> None:
    await charger.connection.send('[2,"bad-1","Heartbeat",[]]')
    answer = await charger.receive()
    assert isinstance(answer, frames.CallError)
    assert (answer.unique_id, answer.error_code) == ("bad-1", "FormationViolation")
    # Not even an array: nothing to answer to; the connection stays usable.
    await charger.connection.send("{oops")
    assert "currentTime" in await charger.result("Heartbeat", {})


async def test_schema_validation_rejects_bad_payloads_unless_switched_off(
    charger: RawCharger,
) -> None:
    bad_boot = {"chargePointVendor": "Acme"}  # chargePointModel is required
    answer = await charger.request("BootNotification", bad_boot)
    assert isinstance(answer, frames.CallError)
    assert answer.error_code in frames.OCPP_ERROR_CODES

    # The library calls this FormatViolation (its OCPP 2.0 name); OCPP-J 1.6 spells it so.
    answer = await charger.request("Heartbeat", {"extra": 1})
    assert isinstance(answer, frames.CallError)
    assert answer.error_code == "FormationViolation"

    cs = CentralSystem(CentralSystemConfig(skip_schema_validation=True))
    await cs.start()
    try:
        lenient = await open_charger(cs)
        assert (await lenient.result("BootNotification", bad_boot))["status"] == "Accepted"
    finally:
        await cs.stop()


async def test_call_round_trip_sends_payload_unchanged(
    cs: CentralSystem, charger: RawCharger
) -> None:
    payload = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 7,
            "chargingSchedule": {"minChargingRate": 6.5},
        },
    }
    task = asyncio.create_task(cs.call("CP1", "SetChargingProfile", payload, timeout=timeout(5)))
    raw = await asyncio.wait_for(charger.connection.recv(), timeout(5))
    frame = frames.parse(raw)
    assert isinstance(frame, frames.Call)
    assert frame.action == "SetChargingProfile"
    assert frame.payload_json == json.dumps(payload, separators=(",", ":"))
    await charger.connection.send(json.dumps([3, frame.unique_id, {"status": "Accepted"}]))
    assert await task == {"status": "Accepted"}


async def test_call_error_is_raised(cs: CentralSystem, charger: RawCharger) -> None:
    task = asyncio.create_task(cs.call("CP1", "Reset", {"type": "Soft"}, timeout=timeout(5)))
    frame = await charger.receive()
    assert isinstance(frame, frames.Call)
    error = frames.CallError.create(frame.unique_id, "NotSupported", "no resets", {"why": "lab"})
    await charger.connection.send(error.serialize())
    with pytest.raises(CallErrorReceived) as raised:
        await task
    assert raised.value.error_code == "NotSupported"
    assert raised.value.error_description == "no resets"
    assert raised.value.error_details == {"why": "lab"}


async def test_call_times_out_and_a_late_answer_is_ignored(
    cs: CentralSystem, charger: RawCharger
) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="ClearCache"):
        await cs.call("CP1", "ClearCache", {}, timeout=0.2)
    assert time.monotonic() - started < timeout(2)
    late = await charger.receive()
    await charger.connection.send(json.dumps([3, late.unique_id, {"status": "Accepted"}]))
    # The lock was released: the next CALL goes out and is answered.
    task = asyncio.create_task(cs.call("CP1", "ClearCache", {}, timeout=timeout(5)))
    frame = await charger.receive()
    assert frame.unique_id != late.unique_id
    await charger.connection.send(json.dumps([3, frame.unique_id, {"status": "Rejected"}]))
    assert await task == {"status": "Rejected"}


async def test_calls_to_one_charger_go_one_at_a_time(
    cs: CentralSystem, charger: RawCharger
) -> None:
    # OCPP-J 1.6 section 4.1.1: at most one CALL outstanding per direction.
    first = asyncio.create_task(cs.call("CP1", "ClearCache", {}, timeout=timeout(5)))
    second = asyncio.create_task(cs.call("CP1", "ClearCache", {}, timeout=timeout(5)))
    frame = await charger.receive()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await charger.connection.recv()
    await charger.connection.send(json.dumps([3, frame.unique_id, {"status": "Accepted"}]))
    frame = await charger.receive()
    await charger.connection.send(json.dumps([3, frame.unique_id, {"status": "Rejected"}]))
    assert (await first, await second) == ({"status": "Accepted"}, {"status": "Rejected"})


async def test_call_with_a_malformed_answer_fails_at_once(
    cs: CentralSystem, charger: RawCharger
) -> None:
    task = asyncio.create_task(cs.call("CP1", "ClearCache", {}, timeout=timeout(5)))
    frame = await charger.receive()
    await charger.connection.send(json.dumps([3, frame.unique_id, "Accepted"]))
    with pytest.raises(ValueError, match="malformed answer"):
        await task


async def test_call_to_a_charger_not_connected_fails_at_once(cs: CentralSystem) -> None:
    with pytest.raises(LookupError, match="CP-NONE"):
        await cs.call("CP-NONE", "ClearCache", {})


async def test_call_fails_when_the_charger_disconnects(
    cs: CentralSystem, charger: RawCharger
) -> None:
    task = asyncio.create_task(cs.call("CP1", "ClearCache", {}, timeout=timeout(5)))
    await charger.receive()
    await charger.connection.close()
    with pytest.raises(ConnectionError):
        await task


def status(connector_id: int, value: str) -> dict[str, Any]:
    return {"connectorId": connector_id, "errorCode": "NoError", "status": value}


async def test_wait_for_message_honours_after_and_predicate(
    cs: CentralSystem, charger: RawCharger
) -> None:
    await charger.result("StatusNotification", status(1, "Available"))
    # Already in the log, from position 0.
    found = await cs.wait_for_message("CP1", "StatusNotification", timeout=timeout(1))
    assert found["status"] == "Available"

    mark = cs.mark()
    waiter = asyncio.create_task(
        cs.wait_for_message(
            "CP1",
            "StatusNotification",
            after=mark,
            predicate=lambda payload: payload["status"] == "Charging",
            timeout=timeout(5),
        )
    )
    await charger.result("StatusNotification", status(1, "Preparing"))
    await charger.result("Heartbeat", {})
    assert not waiter.done()
    await charger.result("StatusNotification", status(1, "Charging"))
    assert (await waiter)["status"] == "Charging"

    # Messages before the mark do not count.
    with pytest.raises(TimeoutError):
        await cs.wait_for_message("CP1", "StatusNotification", after=cs.mark(), timeout=0.2)
    # Other chargers' messages do not count either.
    other = await open_charger(cs, "/CP2")
    mark = cs.mark()
    await other.result("StatusNotification", status(1, "Faulted"))
    with pytest.raises(TimeoutError):
        await cs.wait_for_message("CP1", "StatusNotification", after=mark, timeout=0.2)
    assert [entry.action for entry in cs.received("CP2")] == ["StatusNotification"]


async def test_wait_for_message_returns_with_the_state_applied(
    cs: CentralSystem, charger: RawCharger
) -> None:
    mark = cs.mark()
    waiter = asyncio.create_task(
        cs.wait_for_message("CP1", "StartTransaction", after=mark, timeout=timeout(5))
    )
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": NOW}
    await charger.connection.send(frames.Call.create("s1", "StartTransaction", start).serialize())
    assert (await waiter)["idTag"] == "T"
    assert [t.id_tag for t in cs.state("CP1").transactions.values()] == ["T"]


async def test_percent_encoded_id_in_a_deep_path(cs: CentralSystem) -> None:
    charger = await open_charger(cs, "/ocpp/1.6/site%2F7/CP%20%C3%A9-01/")
    await cs.wait_connected("CP é-01", timeout=timeout(5))
    assert cs.connected() == ["CP é-01"]
    await charger.result("Heartbeat", {})
    assert cs.received()[-1].charge_point_id == "CP é-01"
    task = asyncio.create_task(cs.call("CP é-01", "ClearCache", {}, timeout=timeout(5)))
    frame = await charger.receive()
    await charger.connection.send(json.dumps([3, frame.unique_id, {"status": "Accepted"}]))
    assert await task == {"status": "Accepted"}


async def test_subprotocol_chosen_when_offered_and_optional(cs: CentralSystem) -> None:
    # The first offered version it speaks, in the charger's order of preference.
    offered = await open_charger(cs, "/CP-A", ["ocpp2.1", "ocpp1.6", "ocpp2.0.1"])
    assert offered.connection.subprotocol == "ocpp1.6"
    newer = await open_charger(cs, "/CP-C", ["ocpp2.0.1", "ocpp1.6"])
    assert newer.connection.subprotocol == "ocpp2.0.1"
    bare = await open_charger(cs, "/CP-B", [])
    assert bare.connection.subprotocol is None
    assert "currentTime" in await bare.result("Heartbeat", {})


async def test_it_answers_ocpp201_calls_with_201_payloads(cs: CentralSystem) -> None:
    charger = await open_charger(cs, "/CP-201", ["ocpp2.0.1"])
    boot = await charger.result(
        "BootNotification",
        {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"},
    )
    assert boot["status"] == "Accepted" and boot["interval"] > 0
    started = {
        "eventType": "Started",
        "timestamp": "2024-05-01T10:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "TX-1"},
        "idToken": {"idToken": "TAG", "type": "ISO14443"},
    }
    assert await charger.result("TransactionEvent", started) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    assert cs.state("CP-201").transactions_201["TX-1"]["events"] == 1
    status = {"timestamp": "2024-05-01T10:00:00Z", "connectorStatus": "Occupied", "evseId": 1,
              "connectorId": 1}  # fmt: skip
    assert await charger.result("StatusNotification", status) == {}
    # a 1.6 payload on a 2.0.1 connection breaks the 2.0.1 schema: a CALLERROR with a 2.0.1 code
    await charger.connection.send(json.dumps([2, "x", "StatusNotification", {"connectorId": 1}]))
    answer = json.loads(await charger.connection.recv())
    assert answer[0] == 4 and answer[2] in ERROR_CODES[OcppVersion.V201]


async def test_a_url_without_charge_point_id_is_refused(cs: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(cs.url + "/", subprotocols=["ocpp1.6"], open_timeout=timeout(5))
    assert refused.value.response.status_code == 404


async def test_wait_connected_times_out(cs: CentralSystem) -> None:
    with pytest.raises(TimeoutError):
        await cs.wait_connected("CP-LATE", timeout=0.1)


async def test_reconnect_replaces_the_old_connection(cs: CentralSystem) -> None:
    old = await open_charger(cs)
    await cs.wait_connected("CP1", timeout=timeout(5))
    new = await open_charger(cs)
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout(5)):
            await old.connection.recv()
    assert cs.connected() == ["CP1"]
    assert "currentTime" in await new.result("Heartbeat", {})


async def test_stop_closes_chargers_promptly() -> None:
    cs = CentralSystem()
    await cs.start()
    chargers = [await open_charger(cs, f"/CP{n}") for n in range(3)]
    started = time.monotonic()
    await cs.stop()
    assert time.monotonic() - started < timeout(3)
    for charger in chargers:
        with pytest.raises(ConnectionClosed):
            await charger.connection.recv()
        assert charger.connection.close_code == 1001
    assert cs.connected() == []


class LibraryCharger(ocpp.v16.ChargePoint):
    """A charger written with the ocpp library, as the simulator may be."""

    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str
    ) -> call_result.ChangeAvailability:
        self.availability = (connector_id, type)
        return call_result.ChangeAvailability(status="Accepted")


async def test_a_charger_built_on_the_ocpp_library_talks_both_ways(cs: CentralSystem) -> None:
    async with connect(cs.url + "/LIB-1", subprotocols=["ocpp1.6"]) as connection:
        charger = LibraryCharger("LIB-1", connection, response_timeout=timeout(5))
        serving = asyncio.create_task(charger.start())
        try:
            # The library client validates our answers against the OCPP 1.6 schemas.
            boot = await charger.call(
                call.BootNotification(charge_point_model="M", charge_point_vendor="V")
            )
            assert boot.status == "Accepted"
            start = await charger.call(
                call.StartTransaction(connector_id=1, id_tag="T", meter_start=0, timestamp=NOW)
            )
            assert start.id_tag_info["status"] == "Accepted"
            answer = await cs.call(
                "LIB-1",
                "ChangeAvailability",
                {"connectorId": 1, "type": "Inoperative"},
                timeout=timeout(5),
            )
            assert answer == {"status": "Accepted"}
            assert charger.availability == (1, "Inoperative")
        finally:
            serving.cancel()


async def test_the_log_of_received_calls_is_bounded_in_bytes(
    cs: CentralSystem, charger: RawCharger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: a charger sending large CALLs must not fill the central system's memory; the log
    keeps the newest CALLs whose payloads fit the byte bound, and positions stay consecutive."""
    import ocpp_audit.lab.central_system as central_system

    monkeypatch.setattr(central_system, "MAX_LOGGED_BYTES", 1024 * 1024)
    first = cs.mark()
    for number in range(8):
        answer = await charger.result(
            "DataTransfer", {"vendorId": "x", "messageId": str(number), "data": "A" * 300_000}
        )
        assert answer == {"status": "UnknownVendorId"}
    kept = cs.received("CP1", "DataTransfer")
    assert [entry.payload["messageId"] for entry in kept] == ["5", "6", "7"]
    assert [entry.position for entry in kept] == [first + 5, first + 6, first + 7]
    assert cs.mark() == first + 8
    # A wait from a position that is gone finds the oldest kept; from the mark, the next one.
    found = await cs.wait_for_message("CP1", "DataTransfer", after=first, timeout=timeout(1))
    assert found["messageId"] == "5"
