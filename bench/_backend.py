"""A minimal OCPP 1.6-J backend for the benchmarks, in its own process: answers every CALL at once.

CALLRESULT payloads: BootNotification Accepted (interval 300), Heartbeat the current time, anything
else ``{}``. Prints ``PORT <n>`` on stdout once listening; stops on SIGTERM or SIGINT. permessage-deflate is
declined unless ``--compression`` (then accepted when a client offers it, as websockets does by
default).

    .venv/bin/python bench/_backend.py [--uvloop] [--compression]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import time

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def _answer(raw: str | bytes) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, list) or len(message) < 3 or message[0] != 2:
        return None
    unique_id, action = message[1], message[2]
    if action == "BootNotification":
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        payload = f'{{"status":"Accepted","currentTime":"{now}","interval":300}}'
    elif action == "Heartbeat":
        payload = f'{{"currentTime":"{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}"}}'
    else:
        payload = "{}"
    return f"[3,{json.dumps(unique_id)},{payload}]"


async def _charger(connection: ServerConnection) -> None:
    try:
        async for raw in connection:
            answer = _answer(raw)
            if answer is not None:
                await connection.send(answer)
    except ConnectionClosed:
        pass


def _select_subprotocol(connection: ServerConnection, offered: object) -> str | None:
    return "ocpp1.6" if offered and "ocpp1.6" in offered else None  # type: ignore[operator]


async def _main(host: str, compression: str | None) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with serve(
        _charger,
        host,
        0,
        select_subprotocol=_select_subprotocol,
        compression=compression,
        ping_interval=None,
        backlog=4096,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        await stopping.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument(
        "--compression", action="store_true", help="accept permessage-deflate when offered"
    )
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    compression = "deflate" if args.compression else None
    if args.uvloop:
        import uvloop

        uvloop.run(_main(args.host, compression))
    else:
        asyncio.run(_main(args.host, compression))


if __name__ == "__main__":
    main()
