"""The charger simulator against the real built-in central system (and a raw backend), on loopback.

Each profile's fault must be visible on the wire; the good profile's behaviour is what OCPP 1.6
asks. Chargers run concurrently where a test compares two profiles, to keep the file fast.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import http.server
import itertools
import json
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aioftp
import pytest
from websockets.asyncio.server import ServerConnection, serve

from ocpp_audit.lab.central_system import CentralSystem, CentralSystemConfig
from ocpp_audit.lab.simulator import PROFILES, ChargerTiming, SimulatedCharger
from ocpp_audit.protocol import frames
from tests.conftest import timeout

VALID = "VALID-TAG"

FAST = dict(
    heartbeat_interval=60,
    meter_value_sample_interval=1,
    connection_timeout=1,
    reboot_delay=0.1,
    reconnect_delay=0.2,
    transfer_step=0.05,
)


@pytest.fixture
async def central_system() -> AsyncIterator[CentralSystem]:
    cs = CentralSystem(CentralSystemConfig(heartbeat_interval=1, id_tags={VALID: "Accepted"}))
    await cs.start()
    yield cs
    await cs.stop()


@pytest.fixture
async def make_charger(
    central_system: CentralSystem,
) -> AsyncIterator[Callable[..., SimulatedCharger]]:
    chargers: list[SimulatedCharger] = []

    def make(charge_point_id: str, profile: str = "good", **timing: Any) -> SimulatedCharger:
        charger = SimulatedCharger(
            charge_point_id,
            central_system.url,
            profile=profile,
            timing=ChargerTiming(**{**FAST, **timing}),
        )
        chargers.append(charger)
        return charger

    yield make
    await asyncio.gather(*(c.stop() for c in chargers))


def received(cs: CentralSystem, charge_point_id: str, action: str | None = None) -> list[Any]:
    return cs.received(charge_point_id, action)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_boot_carries_identity_then_status_for_every_connector(central_system, make_charger):
    good, no_serial = make_charger("CP-GOOD"), make_charger("CP-NOSERIAL", "no-serial")
    await asyncio.gather(good.start(), no_serial.start())

    boot = received(central_system, "CP-GOOD", "BootNotification")[0].payload
    for key in (
        "chargePointVendor",
        "chargePointModel",
        "chargePointSerialNumber",
        "iccid",
        "firmwareVersion",
    ):
        assert boot[key], key
    statuses = [e.payload for e in received(central_system, "CP-GOOD", "StatusNotification")]
    assert sorted(s["connectorId"] for s in statuses) == [0, 1, 2]
    assert {s["status"] for s in statuses} == {"Available"}
    # OCPP 1.6 section 4.2: nothing before the BootNotification
    assert received(central_system, "CP-GOOD")[0].action == "BootNotification"

    faulty = received(central_system, "CP-NOSERIAL", "BootNotification")[0].payload
    assert "chargePointSerialNumber" not in faulty and "iccid" not in faulty
    assert faulty["chargePointVendor"] and faulty["firmwareVersion"]


async def test_heartbeat_at_backend_interval_and_slow_profile_three_times_slower(
    central_system, make_charger
):
    good, slow = make_charger("CP-HB"), make_charger("CP-SLOW", "slow-heartbeat")
    await asyncio.gather(good.start(), slow.start())
    assert good.heartbeat_interval == 1  # from the BootNotification answer
    await asyncio.sleep(timeout(3.6))

    def beats(cp: str) -> list[float]:
        boot = received(central_system, cp, "BootNotification")[0].received_at
        return [e.received_at - boot for e in received(central_system, cp, "Heartbeat")]

    good_beats, slow_beats = beats("CP-HB"), beats("CP-SLOW")
    assert len(good_beats) >= 3
    gaps = [b - a for a, b in zip([0.0, *good_beats], good_beats, strict=False)]
    assert all(0.8 < gap < 1.5 for gap in gaps), gaps
    assert len(slow_beats) == 1 and 2.7 < slow_beats[0] < 3.6, slow_beats

    # TriggerMessage(Heartbeat) is answered at once, even by the slow one (OCPP 1.6 section 5.17)
    mark = central_system.mark()
    answer = await central_system.call(
        "CP-SLOW", "TriggerMessage", {"requestedMessage": "Heartbeat"}
    )
    assert answer == {"status": "Accepted"}
    await central_system.wait_for_message("CP-SLOW", "Heartbeat", after=mark, timeout=timeout(1))


async def test_configuration_store_and_change_configuration(central_system, make_charger):
    good, rejecting = make_charger("CP-CFG"), make_charger("CP-REJ", "rejects-change-configuration")
    await asyncio.gather(good.start(), rejecting.start())
    cs = central_system

    everything = await cs.call("CP-CFG", "GetConfiguration", {})
    keys = {item["key"]: item for item in everything["configurationKey"]}
    assert len(keys) >= 35
    assert keys["HeartbeatInterval"]["value"] == "1" and not keys["HeartbeatInterval"]["readonly"]
    assert keys["NumberOfConnectors"] == {
        "key": "NumberOfConnectors",
        "readonly": True,
        "value": "2",
    }
    some = await cs.call(
        "CP-CFG", "GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]}
    )
    assert [i["key"] for i in some["configurationKey"]] == ["MeterValueSampleInterval"]
    assert some["unknownKey"] == ["Nope"]

    async def change(cp: str, key: str, value: str) -> str:
        return (await cs.call(cp, "ChangeConfiguration", {"key": key, "value": value}))["status"]

    assert await change("CP-CFG", "NumberOfConnectors", "4") == "Rejected"  # read-only
    assert await change("CP-CFG", "NoSuchKey", "1") == "NotSupported"
    assert await change("CP-CFG", "HeartbeatInterval", "soon") == "Rejected"
    assert await change("CP-REJ", "HeartbeatInterval", "2") == "Rejected"
    assert rejecting.heartbeat_interval == 1

    # HeartbeatInterval takes effect at once: from 1 s to 3 s
    assert await change("CP-CFG", "HeartbeatInterval", "3") == "Accepted"
    mark = cs.mark()
    await asyncio.sleep(timeout(2.2))
    assert not cs.received("CP-CFG", "Heartbeat", after=mark)
    await cs.wait_for_message("CP-CFG", "Heartbeat", after=mark, timeout=timeout(2))


async def test_meter_values_every_interval_and_sparse_profile(
    central_system, make_charger, monkeypatch
):
    # the profile's multiplier, without its 7 s floor (kept short for the test)
    sparse_profile = dataclasses.replace(PROFILES["sparse-meter-values"], meter_interval_floor_s=0)
    monkeypatch.setitem(PROFILES, "sparse-meter-values", sparse_profile)
    good, sparse = make_charger("CP-MV"), make_charger("CP-SPARSE", "sparse-meter-values")
    await asyncio.gather(good.start(), sparse.start())

    async def session(charger: SimulatedCharger) -> None:
        await charger.plug_in(1)
        await charger.swipe(VALID, 1)
        await asyncio.sleep(timeout(4.5))
        await charger.swipe(VALID, 1)

    await asyncio.gather(session(good), session(sparse))

    def samples(cp: str) -> list[dict[str, Any]]:
        return [e.payload for e in received(central_system, cp, "MeterValues")]

    good_mv = samples("CP-MV")
    contexts = [m["meterValue"][0]["sampledValue"][0]["context"] for m in good_mv]
    assert contexts[0] == "Transaction.Begin" and contexts.count("Sample.Periodic") >= 3
    stamps = [ts(m["meterValue"][0]["timestamp"]) for m in good_mv]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert all(0.8 < gap < 1.5 for gap in gaps), gaps
    values = good_mv[1]["meterValue"][0]["sampledValue"]
    phases = {(v["measurand"], v.get("phase")) for v in values}
    assert ("Energy.Active.Import.Register", None) in phases
    assert ("Power.Active.Import", None) in phases
    assert {("Current.Import", p) for p in ("L1", "L2", "L3")} <= phases
    assert {("Voltage", p) for p in ("L1-N", "L2-N", "L3-N")} <= phases
    assert all(m["transactionId"] == good_mv[0]["transactionId"] > 0 for m in good_mv)
    stop = received(central_system, "CP-MV", "StopTransaction")[0].payload
    assert stop["reason"] == "Local"
    end = stop["transactionData"][0]["sampledValue"]
    assert {v["context"] for v in end} == {"Transaction.End"}
    assert int(end[0]["value"]) == stop["meterStop"] > 0

    sparse_mv = samples("CP-SPARSE")
    sparse_stamps = [ts(m["meterValue"][0]["timestamp"]) for m in sparse_mv]
    sparse_gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sparse_stamps)]
    assert len(sparse_mv) == 2 and all(2.8 < gap < 3.6 for gap in sparse_gaps), sparse_gaps


async def test_offline_queue_delivers_in_order_and_drops_profile_omits_meter_values(
    central_system, make_charger
):
    good, dropping = make_charger("CP-Q"), make_charger("CP-DROP", "drops-queued-meter-values")
    await asyncio.gather(good.start(), dropping.start())

    async def offline_session(charger: SimulatedCharger) -> float:
        await charger.lose_network()
        await charger.plug_in(1)
        await charger.swipe("NEVER-SEEN-TAG", 1)  # AllowOfflineTxForUnknownId = true
        assert charger.transaction_id(1) < 0  # local id until the central system answers
        await asyncio.sleep(timeout(2.3))
        await charger.swipe("NEVER-SEEN-TAG", 1)
        await charger.unplug(1)
        back = asyncio.get_running_loop().time()
        await charger.restore_network()
        return back

    await asyncio.gather(offline_session(good), offline_session(dropping))

    def tx_messages(cp: str) -> list[Any]:
        return [
            e
            for e in received(central_system, cp)
            if e.action in ("StartTransaction", "MeterValues", "StopTransaction")
        ]

    good_msgs = tx_messages("CP-Q")
    actions = [e.action for e in good_msgs]
    assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction"
    assert actions.count("MeterValues") >= 3  # Transaction.Begin + periodic samples
    real_id = central_system.state("CP-Q").transactions
    (transaction_id,) = real_id
    assert all(e.payload["transactionId"] == transaction_id for e in good_msgs[1:])
    # original timestamps: produced while offline, in order, before the reconnect delivered them
    stamps = [
        ts(e.payload.get("timestamp") or e.payload["meterValue"][0]["timestamp"]) for e in good_msgs
    ]
    assert stamps == sorted(stamps)
    delivered = [e.received_at for e in good_msgs]
    assert ts(good_msgs[-1].payload["timestamp"]).timestamp() < min(delivered)
    # queued messages come before any new ones (statuses reported after the queue)
    after_queue = [
        e.action for e in received(central_system, "CP-Q") if e.received_at >= delivered[0]
    ]
    assert after_queue[: len(good_msgs)] == actions

    drop_actions = [e.action for e in tx_messages("CP-DROP")]
    assert drop_actions == ["StartTransaction", "StopTransaction"]
    assert dropping.stats.queue_discarded >= 3


async def test_reset_stops_the_transaction_and_reboots(central_system, make_charger):
    charger = make_charger("CP-RESET")
    await charger.start()
    cs = central_system
    await charger.plug_in(1)
    await charger.swipe(VALID, 1)

    mark = cs.mark()
    assert await cs.call("CP-RESET", "Reset", {"type": "Soft"}) == {"status": "Accepted"}
    stop = await cs.wait_for_message("CP-RESET", "StopTransaction", after=mark)
    assert stop["reason"] == "SoftReset"
    await cs.wait_for_message("CP-RESET", "BootNotification", after=mark, timeout=timeout(5))
    await cs.wait_for_message(
        "CP-RESET",
        "StatusNotification",
        after=mark,
        predicate=lambda p: p["connectorId"] == 1 and p["status"] == "Preparing",
    )  # the cable is still in

    mark = cs.mark()
    await cs.wait_connected("CP-RESET", timeout=timeout(5))
    await cs.call("CP-RESET", "Reset", {"type": "Hard"})
    await cs.wait_for_message("CP-RESET", "BootNotification", after=mark, timeout=timeout(5))
    await charger.wait_ready(timeout(5))
    assert charger.stats.boots == 3 and charger.stats.connects == 3


class _FirmwareHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


async def test_firmware_update_downloads_on_loopback_and_reboots_with_new_version(
    central_system, make_charger, tmp_path: Path
):
    (tmp_path / "firmware-2.0.0.bin").write_bytes(b"\x7fELF" + bytes(4096))
    handler = functools.partial(_FirmwareHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    charger = make_charger("CP-FW")
    await charger.start()
    cs = central_system
    try:
        mark = cs.mark()
        location = f"http://127.0.0.1:{server.server_address[1]}/firmware-2.0.0.bin"
        await cs.call(
            "CP-FW",
            "UpdateFirmware",
            {"location": location, "retrieveDate": "2020-01-01T00:00:00Z"},
        )
        boot = await cs.wait_for_message(
            "CP-FW", "BootNotification", after=mark, timeout=timeout(5)
        )
        assert boot["firmwareVersion"] == "2.0.0"
        statuses = [e.payload["status"] for e in cs.received("CP-FW", "FirmwareStatusNotification")]
        assert statuses == ["Downloading", "Downloaded", "Installing", "Installed"]

        # a loopback location that does not answer: DownloadFailed, no reboot
        mark = cs.mark()
        await cs.wait_connected("CP-FW", timeout=timeout(5))
        await cs.call(
            "CP-FW",
            "UpdateFirmware",
            {
                "location": "http://127.0.0.1:1/firmware-3.0.0.bin",
                "retrieveDate": "2020-01-01T00:00:00Z",
            },
        )
        await cs.wait_for_message(
            "CP-FW",
            "FirmwareStatusNotification",
            after=mark,
            predicate=lambda p: p["status"] == "DownloadFailed",
        )
        assert charger.firmware_version == "2.0.0"
    finally:
        server.shutdown()


async def test_diagnostics_uploaded_to_loopback_ftp(central_system, make_charger, tmp_path: Path):
    user = aioftp.User(
        "lab",
        "secret",
        base_path=tmp_path,
        permissions=[aioftp.Permission("/", readable=True, writable=True)],
    )
    server = aioftp.Server([user])
    await server.start("127.0.0.1", 0)
    port = server.server.sockets[0].getsockname()[1]
    charger = make_charger("CP-DIAG")
    await charger.start()
    cs = central_system
    try:
        mark = cs.mark()
        answer = await cs.call(
            "CP-DIAG", "GetDiagnostics", {"location": f"ftp://lab:secret@127.0.0.1:{port}/"}
        )
        file_name = answer["fileName"]
        await cs.wait_for_message(
            "CP-DIAG",
            "DiagnosticsStatusNotification",
            after=mark,
            predicate=lambda p: p["status"] == "Uploaded",
            timeout=timeout(5),
        )
        statuses = [
            e.payload["status"] for e in cs.received("CP-DIAG", "DiagnosticsStatusNotification")
        ]
        assert statuses == ["Uploading", "Uploaded"]
        assert b"CP-DIAG" in (tmp_path / file_name).read_bytes()
    finally:
        await server.close()


async def test_commands_of_every_profile_are_answered(central_system, make_charger):
    charger = make_charger("CP-CMD")
    await charger.start()
    cs = central_system

    async def call(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await cs.call("CP-CMD", action, payload, timeout=timeout(5))

    mark = cs.mark()
    await charger.plug_in(2)
    assert await call("RemoteStartTransaction", {"idTag": VALID, "connectorId": 2}) == {
        "status": "Accepted"
    }
    await cs.wait_for_message("CP-CMD", "StartTransaction", after=mark)
    assert (await call("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}))[
        "status"
    ] == "Scheduled"  # a transaction runs on it
    (transaction_id,) = cs.state("CP-CMD").transactions
    assert (await call("RemoteStopTransaction", {"transactionId": transaction_id}))[
        "status"
    ] == "Accepted"
    await cs.wait_for_message(
        "CP-CMD",
        "StatusNotification",
        after=mark,
        predicate=lambda p: p["connectorId"] == 2 and p["status"] == "Unavailable",
    )
    assert (await call("RemoteStopTransaction", {"transactionId": 999}))["status"] == "Rejected"
    assert (await call("ChangeAvailability", {"connectorId": 2, "type": "Operative"}))[
        "status"
    ] == "Accepted"

    assert await call("ClearCache", {}) == {"status": "Accepted"}
    assert await call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    assert await call("DataTransfer", {"vendorId": "Other"}) == {"status": "UnknownVendorId"}
    assert await call("GetLocalListVersion", {}) == {"listVersion": 0}
    assert await call(
        "SendLocalList",
        {
            "listVersion": 3,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Accepted"}}],
        },
    ) == {"status": "Accepted"}
    assert await call("GetLocalListVersion", {}) == {"listVersion": 3}

    mark = cs.mark()
    assert await call(
        "ReserveNow",
        {
            "connectorId": 1,
            "expiryDate": "2099-01-01T00:00:00Z",
            "idTag": VALID,
            "reservationId": 7,
        },
    ) == {"status": "Accepted"}
    await cs.wait_for_message(
        "CP-CMD", "StatusNotification", after=mark, predicate=lambda p: p["status"] == "Reserved"
    )
    assert await call("CancelReservation", {"reservationId": 7}) == {"status": "Accepted"}
    assert await call("CancelReservation", {"reservationId": 7}) == {"status": "Rejected"}

    # plugged in, never started: ConnectionTimeOut brings it back to Available
    mark = cs.mark()
    await charger.plug_in(1)
    await cs.wait_for_message(
        "CP-CMD",
        "StatusNotification",
        after=mark,
        timeout=timeout(3),
        predicate=lambda p: p["connectorId"] == 1 and p["status"] == "Available",
    )


async def _raw_backend(frames_seen: list[str | bytes], headers: list[Any]):
    """A plain websockets backend that answers every CALL and keeps every raw frame."""

    async def handler(connection: ServerConnection) -> None:
        headers.append(connection.request.headers)
        async for message in connection:
            frames_seen.append(message)
            frame = frames.parse(message)
            if not isinstance(frame, frames.Call):
                continue
            payload: dict[str, Any] = {}
            if frame.action == "BootNotification":
                payload = {
                    "currentTime": "2024-01-01T00:00:00Z",
                    "interval": 60,
                    "status": "Accepted",
                }
            await connection.send(json.dumps([3, frame.unique_id, payload]))

    return await serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"])


async def test_malformed_frame_profile_sends_one_broken_frame_and_auth_reaches_backend():
    seen: list[str | bytes] = []
    headers: list[Any] = []
    server = await _raw_backend(seen, headers)
    port = server.sockets[0].getsockname()[1]
    charger = SimulatedCharger(
        "CP-BAD",
        f"ws://127.0.0.1:{port}/ocpp",
        profile="malformed-frame",
        auth=("CP-BAD", "s3cret"),
        timing=ChargerTiming(**FAST),
    )
    try:
        await charger.start()
        await charger.plug_in(1)
        await charger.stop()
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
    parsed = [frames.parse(f) for f in seen]
    broken = [f for f in parsed if isinstance(f, frames.Malformed)]
    assert len(broken) == 1 and "StatusNotification" in broken[0].raw
    assert broken[0].reason.startswith("invalid JSON")
    # the rest of the conversation is fine: boot, statuses, and the later Preparing status
    assert next(f.action for f in parsed if isinstance(f, frames.Call)) == "BootNotification"
    assert any(
        isinstance(f, frames.Call) and f.payload.get("status") == "Preparing" for f in parsed
    )
    assert headers[0]["Sec-WebSocket-Protocol"] == "ocpp1.6"
    assert headers[0]["Authorization"] == "Basic " + base64.b64encode(b"CP-BAD:s3cret").decode()


async def test_profiles_have_narrow_documented_faults():
    assert set(PROFILES) == {
        "good",
        "no-serial",
        "slow-heartbeat",
        "sparse-meter-values",
        "rejects-change-configuration",
        "drops-queued-meter-values",
        "malformed-frame",
    }
    assert PROFILES["good"].fails == () and PROFILES["good"].trips == ()
    # never closer than rule 08's default limit for a 1 s interval (interval + 5 s)
    assert PROFILES["sparse-meter-values"].meter_interval_floor_s > 1 + 5
    for name, profile in PROFILES.items():
        if name not in ("good", "malformed-frame"):
            assert len(profile.fails) == 1, name


async def test_simulate_command_runs_a_fleet_and_sums_it_up(central_system):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocpp_audit",
        "simulate",
        "--target",
        central_system.url + "/ocpp",
        "--count",
        "3",
        "--id-prefix",
        "FLEET",
        "--duration",
        "1.5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout(20))
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == ["FLEET001", "FLEET002", "FLEET003"]
    assert all("boots=1" in line for line in lines)
    assert sorted(central_system.charge_points) == ["FLEET001", "FLEET002", "FLEET003"]


async def test_simulate_ocpp_version_201_runs_201_stations_with_charging_sessions(central_system):
    """`simulate --ocpp-version 2.0.1 --charge`: stations negotiate ocpp2.0.1, boot with a
    2.0.1 BootNotification and run transactions the central system sees as TransactionEvents."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocpp_audit",
        "simulate",
        "--target",
        central_system.url,
        "--count",
        "2",
        "--id-prefix",
        "S201-",
        "--ocpp-version",
        "2.0.1",
        "--charge",
        "--duration",
        "7",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout(30))
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["S201-001", "v201-good"],
        ["S201-002", "v201-good"],
    ]
    boot = central_system.state("S201-001").boot
    assert boot is not None and boot["reason"] == "PowerUp" and "chargingStation" in boot
    # sessions start after 1-5 s idle: each station has begun one (Started, seqNo 0) by now
    for station in ("S201-001", "S201-002"):
        entries = central_system.received(station, "TransactionEvent")
        assert entries and entries[0].payload["seqNo"] == 0, station


async def test_profiles_v201_are_the_1_6_faults_in_2_0_1_terms():
    from ocpp_audit.lab.simulator.profiles import PROFILES_V201, resolve_profile

    assert PROFILES_V201["v201-good"].fails == ()
    assert {p.ocpp_version for p in PROFILES_V201.values()} == {"2.0.1"}
    for name, profile in PROFILES_V201.items():
        if name != "v201-good":
            assert len(profile.fails) == 1, name
    assert resolve_profile("good", "2.0.1") == "v201-good"
    with pytest.raises(ValueError, match=r"for OCPP 1\.6"):
        resolve_profile("slow-heartbeat", "2.0.1")
    with pytest.raises(ValueError, match=r"OCPP 2\.0\.1 profile"):
        SimulatedCharger("X", "ws://127.0.0.1:1", profile="v201-good")
