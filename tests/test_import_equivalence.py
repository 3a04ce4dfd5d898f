"""An imported log gives the verdicts of the live capture of the same session (issue 14).

A simulated charger goes through the recorder to a backend built on the `ocpp` library (the
library's own ChargePoint and handlers, as Home Assistant's integration uses it), over three
connections (boot, charge, network loss, reconnect, stop, network loss again). The backend's log
(the `ocpp` library's "receive message"/"send" lines and websockets' "connection open"/"connection
closed" lines) is imported with `--format ocpp-log`; `analyse` of the import and of the recorder's
capture give the same verdict for every charger and function.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import serve

from ocpp_audit.cli import main
from ocpp_audit.lab.simulator import SimulatedCharger
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class LibraryBackend(ChargePoint):
    """A central system written the way the `ocpp` library's documentation shows."""

    transaction_ids = iter(range(1, 1_000_000))

    @on(Action.boot_notification)
    def on_boot(self, **_: object) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=now(), interval=2, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: object) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now())

    @on(Action.status_notification)
    def on_status(self, **_: object) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, **_: object) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    def on_start(self, **_: object) -> call_result.StartTransaction:
        return call_result.StartTransaction(
            transaction_id=next(self.transaction_ids),
            id_tag_info={"status": AuthorizationStatus.accepted},
        )

    @on(Action.stop_transaction)
    def on_stop(self, **_: object) -> call_result.StopTransaction:
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    def on_meter_values(self, **_: object) -> call_result.MeterValues:
        return call_result.MeterValues()


async def handle(websocket) -> None:  # type: ignore[no-untyped-def]
    charge_point = LibraryBackend(websocket.request.path.rsplit("/", 1)[-1], websocket)
    with contextlib.suppress(Exception):  # the charger went away
        await charge_point.start()


def verdicts(capture: Path, tmp_path: Path, name: str) -> dict[tuple[str, str], str]:
    report = tmp_path / f"{name}.json"
    result = CliRunner().invoke(main, ["analyse", str(capture), "-f", "json", "-o", str(report)])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(report.read_text())
    return {
        (charger["charge_point_id"], item["rule"]): item["verdict"]
        for charger in document["chargers"]
        for item in (*charger["functions"], *charger["checks"])
    }


@pytest.fixture
def backend_log(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The backend's log file, as the `ocpp` library and websockets write it (UTC times)."""
    path = tmp_path / "backend.log"
    handler = logging.FileHandler(path)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    loggers = [logging.getLogger("ocpp"), logging.getLogger("websockets.server")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield path
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()


async def test_an_imported_session_gives_the_live_captures_verdicts(
    tmp_path: Path, backend_log: Path
) -> None:
    async with serve(handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as backend:
        port = backend.sockets[0].getsockname()[1]
        options = RecordOptions(capture_dir=tmp_path / "live", upstream=f"ws://127.0.0.1:{port}")
        async with RecorderService(options) as service:
            charger = SimulatedCharger("LIB-1", service.url)
            await charger.start()
            try:
                async with asyncio.timeout(timeout(60)):
                    await charger.wait_ready()
                    await charger.plug_in(1)
                    await charger.swipe("TAG-1", 1)
                    await asyncio.sleep(3)
                    await charger.lose_network()  # connection 1 ends
                    await asyncio.sleep(3)
                    await charger.restore_network()  # connection 2
                    await charger.wait_ready()
                    await charger.swipe("TAG-1", 1)  # stop
                    await charger.unplug(1)
                    await asyncio.sleep(3)
                    await charger.lose_network()
                    await asyncio.sleep(2)
                    await charger.restore_network()  # connection 3
                    await charger.wait_ready()
                    await asyncio.sleep(3)
            finally:
                await charger.stop()
    imported = tmp_path / "imported"
    result = CliRunner().invoke(
        main,
        [
            "import",
            str(backend_log),
            "--format",
            "ocpp-log",
            "--timezone",
            "UTC",
            "--capture",
            str(imported),
        ],
    )
    assert result.exit_code == 0, result.output
    live = verdicts(tmp_path / "live", tmp_path, "live")
    from_log = verdicts(imported, tmp_path, "imported")
    assert set(live) == set(from_log)
    differences = {key: (live[key], from_log[key]) for key in live if live[key] != from_log[key]}
    assert differences == {}
    # the session really had three connections, and the verdicts judged something
    assert backend_log.read_text().count("connection open") == 3
    assert live[("LIB-1", "offline-replay")] == "PASS"  # two offline periods, seen in both
    assert list(live.values()).count("PASS") >= 10
