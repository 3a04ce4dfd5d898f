"""A backend built the way the `ocpp` library's documentation shows, run as a program of its own.

``python tests/library_backend.py LOG`` listens on 127.0.0.1 (port 0), prints ``listening PORT``,
and logs what the `ocpp` library and websockets log (UTC times) to LOG, as a deployed backend would.
It runs in its own process so that its log holds its own lines only: a simulated charger in the
same process logs through the same `ocpp` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
import time

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import serve


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


async def main(log: str) -> None:
    handler = logging.FileHandler(log)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    for name in ("ocpp", "websockets.server"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    async with serve(handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()  # until the test ends the process


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1]))
