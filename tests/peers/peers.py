"""The independent peers, run as real processes on 127.0.0.1: the SAP e-mobility charging stations
simulator (charger) and a strict ocpp-rpc backend (node), both installed by ``.ci/install-peers.sh``
into ``$OCPP_AUDIT_PEERS`` (default ``~/.cache/ocpp-audit-peers``); plus a byte tap on the built-in
central system (the backend on the ``ocpp`` Python library).

Every wait is bounded (``tests.conftest.timeout``); every port is one the OS handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import json
import os
import re
import shutil
import socket
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from ocpp_audit.lab import central_system
from ocpp_audit.lab.acceptance.run import GUIDED_STEPS, run_guided
from tests.conftest import timeout
from tests.engines import read_capture, wire

PEERS_DIR = Path(os.environ.get("OCPP_AUDIT_PEERS", Path.home() / ".cache" / "ocpp-audit-peers"))
NODE = PEERS_DIR / "node" / "bin" / "node"
SAP_DIR = PEERS_DIR / "sap"
OCPP_RPC_MODULES = PEERS_DIR / "rpc" / "node_modules"
OCPP_RPC_BACKEND = Path(__file__).with_name("ocpp_rpc_backend.js")
STATION = "SAPSIM-01"  # the baseName of the worked template (fixedName: the identity on the wire)
SOFT_RESET_STEP = next(step for step in GUIDED_STEPS if step.name == "soft reset")


def missing_peers() -> str | None:
    """Why the peer tests cannot run here, or None when everything is installed."""
    for path, what in [
        (NODE, "Node 22"),
        (SAP_DIR / "dist" / "start.js", "the built SAP simulator"),
        (OCPP_RPC_MODULES / "ocpp-rpc" / "package.json", "ocpp-rpc"),
    ]:
        if not path.exists():
            return f"{what} not found at {path}: run .ci/install-peers.sh (or set OCPP_AUDIT_PEERS)"
    return None


class ReservedPort:
    """A port held (bound, not listening) until :meth:`release`, for a server that starts later
    while a peer is already configured with its number: meanwhile the OS hands it to no one else."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]

    def release(self) -> int:
        """Free the port for its server (bind it right after); returns its number."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        return self.port


def free_port() -> int:
    """A port the OS considers free now, for a peer that needs a number in its configuration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _read_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    while line := await stream.readline():
        on_line(line.decode(errors="replace").rstrip("\n"))


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            async with asyncio.timeout(timeout(5)):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


# -- backends: each keeps the frames it received and sent, as text, per connection ------------------


@dataclass
class BackendTap:
    """The frames one backend saw, in order: (connection number, direction 'in'|'out', frame)."""

    frames: list[tuple[int, str, str]] = field(default_factory=list)
    connections: int = 0
    strict_failures: list[dict[str, Any]] = field(default_factory=list)

    def received(self) -> list[str]:
        return [frame for _, direction, frame in self.frames if direction == "in"]

    def sent(self) -> list[str]:
        return [frame for _, direction, frame in self.frames if direction == "out"]


class OcppRpcBackend:
    """tests/peers/ocpp_rpc_backend.js under Node: strict OCPP 1.6 schema checks both ways."""

    def __init__(self, heartbeat_interval: int, accepted_tags: list[str]) -> None:
        self.args = [str(heartbeat_interval), *accepted_tags]
        self.tap = BackendTap()
        self.port = 0
        self.stderr: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _on_line(self, line: str) -> None:
        event = json.loads(line)
        if event["event"] == "listening":
            self.port = event["port"]
            self._listening.set()
        elif event["event"] == "connected":
            self.tap.connections += 1
        elif event["event"] == "message":
            self.tap.frames.append((self.tap.connections, event["direction"], event["message"]))
        elif event["event"] == "strictValidationFailure":
            self.tap.strict_failures.append(event)

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            str(NODE), str(OCPP_RPC_BACKEND), *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(OCPP_RPC_MODULES)},
        )  # fmt: skip
        assert self._process.stdout is not None and self._process.stderr is not None
        self._readers = [
            asyncio.create_task(_read_lines(self._process.stdout, self._on_line)),
            asyncio.create_task(_read_lines(self._process.stderr, self.stderr.append)),
        ]
        async with asyncio.timeout(timeout(15)):
            await self._listening.wait()

    async def stop(self) -> None:
        if self._process is not None:
            await _terminate(self._process)
        for reader in self._readers:
            with contextlib.suppress(Exception):
                await reader


_central_system_taps: dict[int, BackendTap] = {}  # id(CentralSystem) -> its tap


@contextlib.contextmanager
def tap_central_system(system: Any) -> Any:
    """Record the raw frames one built-in central system (``ocpp`` library) receives and sends.

    Its sessions read every frame in ``route_message(raw_msg)`` and write every frame through
    ``_send(message)``; both are wrapped on the class while any tap is open, and each session
    records into the tap of its own central system (several sessions may run at once).
    """
    tap = BackendTap()
    session_class = central_system._ChargePointSession
    if not _central_system_taps:
        originals = (session_class.start, session_class.route_message, session_class._send)
        _install_taps(session_class, *originals)
    _central_system_taps[id(system)] = tap
    try:
        yield tap
    finally:
        del _central_system_taps[id(system)]
        if not _central_system_taps:
            session_class.start, session_class.route_message, session_class._send = (
                session_class._untapped
            )


def _install_taps(session_class: Any, start: Any, route_message: Any, send: Any) -> None:
    def tap_of(session: Any) -> BackendTap | None:
        return _central_system_taps.get(id(session.central_system))

    async def tapped_start(self: Any) -> None:
        if (tap := tap_of(self)) is not None:
            tap.connections += 1
            self._tap_connection = tap.connections
        await start(self)

    async def tapped_route_message(self: Any, raw_msg: str | bytes) -> None:
        if (tap := tap_of(self)) is not None:
            tap.frames.append((self._tap_connection, "in", str(raw_msg)))
        await route_message(self, raw_msg)

    async def tapped_send(self: Any, message: Any) -> None:
        if (tap := tap_of(self)) is not None:  # a frame object: its text as it goes out
            text = message if isinstance(message, str) else message.serialize()
            tap.frames.append((self._tap_connection, "out", text))
        await send(self, message)

    session_class._untapped = (start, route_message, send)
    session_class.start = tapped_start
    session_class.route_message = tapped_route_message
    session_class._send = tapped_send


# -- the charger: the SAP simulator, driven through its UI server ------------------------------------


class UIError(Exception):
    """The simulator's UI server answered a procedure with status 'failure'."""


_SENT = re.compile(r"internalSendMessage: >> Command '\w+' sent \w+ payload: (.*)$")
_SENT_BUFFERED = re.compile(r"sendMessageBuffer: >> Buffered \w+ OCPP message sent '(.*)'$")


class SapSimulator:
    """One SAP simulator process with one station (SAPSIM-01) for ``supervision_url``, added
    stopped: :meth:`start` brings the process up (seconds of node start-up, so it may run while
    something else is going on), and :meth:`connect` starts the station (it connects and boots).

    The simulator reads its configuration from ``dist/assets/`` next to its code, so each instance
    runs from its own folder: a copy of ``dist`` (2 MB) with the dependencies linked in, and a
    config.json with the supervision URL and a free UI server port. (The URL must be in the
    configuration: a Reset re-reads it, so one set through the UI server would not survive.)
    """

    def __init__(self, folder: Path, supervision_url: str, *, template: dict[str, Any]) -> None:
        self.folder = folder
        self.supervision_url = supervision_url
        self.template = {**template, "autoStart": False}
        self.ui_port = 0
        self.hash_id = ""
        self.output: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._ui: ClientConnection | None = None
        self._readers: list[asyncio.Task[None]] = []

    def _prepare(self) -> None:
        shutil.copytree(SAP_DIR / "dist", self.folder / "dist")
        shutil.copy(SAP_DIR / "package.json", self.folder / "package.json")  # "type": "module"
        (self.folder / "node_modules").symlink_to(SAP_DIR / "node_modules")
        assets = self.folder / "dist" / "assets"
        config = json.loads((assets / "config.json").read_text())
        self.ui_port = free_port()
        config["supervisionUrls"] = [self.supervision_url]
        config["uiServer"]["options"]["port"] = self.ui_port
        config["stationTemplateUrls"] = [
            {"file": "run.station-template.json", "numberOfStations": 1}
        ]
        (assets / "config.json").write_text(json.dumps(config))
        (assets / "station-templates" / "run.station-template.json").write_text(
            json.dumps(self.template)
        )

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)
        self._process = await asyncio.create_subprocess_exec(
            str(NODE), "dist/start.js", cwd=self.folder,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PATH": f"{NODE.parent}:{os.environ.get('PATH', '')}"},
        )  # fmt: skip
        assert self._process.stdout is not None
        self._readers = [asyncio.create_task(_read_lines(self._process.stdout, self.output.append))]
        async with asyncio.timeout(timeout(90)):  # 10 s idle, 30 s busy, more from a cold disk
            while True:
                try:
                    self._ui = await connect(
                        f"ws://127.0.0.1:{self.ui_port}",
                        subprotocols=["ui0.0.1"],  # type: ignore[list-item]
                        ping_interval=None,
                    )
                    break
                except OSError:
                    if self._process.returncode is not None:
                        raise RuntimeError(
                            "the simulator exited: " + "\n".join(self.output[-20:])
                        ) from None
                    await asyncio.sleep(0.1)
            while not self.hash_id:
                stations = await self.ui("listChargingStations")
                for station in stations.get("chargingStations", []):
                    self.hash_id = station["stationInfo"]["hashId"]
                if not self.hash_id:
                    await asyncio.sleep(0.1)

    async def connect(self) -> None:
        """Start the station: it connects to the supervision URL and boots."""
        await self.ui("startChargingStation")

    async def ui(self, procedure: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one UI procedure; station procedures are addressed to this station."""
        assert self._ui is not None
        payload = dict(payload or {})
        if self.hash_id and procedure != "listChargingStations":
            payload.setdefault("hashIds", [self.hash_id])
        request_id = str(uuid.uuid4())
        await self._ui.send(json.dumps([request_id, procedure, payload]))
        async with asyncio.timeout(timeout(20)):
            while True:
                answer = json.loads(await self._ui.recv())
                if isinstance(answer, list) and answer[0] == request_id:
                    break
        response: dict[str, Any] = answer[1]
        if response.get("status") != "success":
            raise UIError(f"{procedure}: {response}")
        return response

    def sent_frames(self) -> list[str]:
        """Every frame the station says it sent, from its own debug log, in the order logged.

        It logs the string it handed to its WebSocket once the send completed: ``>> Command 'X'
        sent request|response|error payload: FRAME``, and for a buffered message ``>> Buffered
        ... OCPP message sent 'FRAME'``.
        """
        frames = []
        log = self.folder / "logs" / "combined.log"
        for line in log.read_text(errors="replace").splitlines():
            if (match := _SENT.search(line)) or (match := _SENT_BUFFERED.search(line)):
                frames.append(match.group(1))
        return frames

    async def stop(self) -> None:
        if self._ui is not None:
            with contextlib.suppress(Exception):
                # Stopped from inside first, so its last frames (Unavailable) are sent and logged
                # before the process ends.
                if self._process is not None and self._process.returncode is None:
                    await self.ui("stopChargingStation")
                await self._ui.close()
        if self._process is not None:
            await _terminate(self._process)
        for reader in self._readers:
            with contextlib.suppress(Exception):
                await reader


class SapCharger:
    """The physical steps of the guided acceptance run (``PhysicalCharger``) done on the simulator
    through its UI server: cable and faults are StatusNotifications it sends, a card is Authorize
    then StartTransaction, the network is its connection closed and opened."""

    charge_point_id = STATION

    def __init__(self, simulator: SapSimulator) -> None:
        self.simulator = simulator

    async def _status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        await self.simulator.ui(
            "statusNotification",
            {"connectorId": connector_id, "status": status, "errorCode": error_code},
        )

    async def plug_in(self, connector_id: int = 1) -> None:
        await self._status(connector_id, "Preparing")

    async def unplug(self, connector_id: int = 1) -> None:
        await self._status(connector_id, "Available")

    async def swipe(self, id_tag: str, connector_id: int = 1) -> None:
        await self.simulator.ui("authorize", {"idTag": id_tag})
        await self.simulator.ui("startTransaction", {"connectorId": connector_id, "idTag": id_tag})

    async def lose_network(self) -> None:
        await self.simulator.ui("closeConnection")

    async def restore_network(self) -> None:
        await self.simulator.ui("openConnection")

    async def raise_fault(self, connector_id: int = 1, error_code: str = "GroundFailure") -> None:
        await self._status(connector_id, "Faulted", error_code)

    async def clear_fault(self, connector_id: int = 1) -> None:
        await self._status(connector_id, "Available")


# -- one recorded session: the simulator through a recorder in front of a backend --------------------


def ocpp_frames(tap_frames: list[str]) -> list[list[Any]]:
    return [json.loads(frame) for frame in tap_frames]


@dataclass
class Session:
    """What one run did and saw: the capture, the backend's tap, and every injected answer."""

    engine: str
    backend: str
    capture_dir: Path
    tap: BackendTap
    injected: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> control API answer
    ui_failures: dict[str, str] = field(default_factory=dict)  # name -> the UI server's complaint
    transactions: dict[str, int] = field(default_factory=dict)  # local / remote / offline -> id
    simulator_output: list[str] = field(default_factory=list)
    simulator_sent: list[str] = field(
        default_factory=list
    )  # from its log: SapSimulator.sent_frames
    guided_reset: Any = None  # the guided run's StepOutcome of its soft reset step
    phases: list[tuple[str, float]] = field(default_factory=list)  # (phase, seconds into the run)

    def phase(self, name: str) -> None:
        self.phases.append((name, time.monotonic()))

    def calls_received(self, action: str) -> list[tuple[int, list[Any]]]:
        """The backend's received CALLs of ``action``: (connection number, frame)."""
        found = []
        for connection, direction, raw in self.tap.frames:
            frame = json.loads(raw)
            if direction == "in" and frame[0] == 2 and frame[2] == action:
                found.append((connection, frame))
        return found

    def answer_to(self, unique_id: str) -> list[Any]:
        for _, direction, raw in self.tap.frames:
            frame = json.loads(raw)
            if direction == "out" and frame[0] in (3, 4) and frame[1] == unique_id:
                return frame
        raise KeyError(unique_id)


ACCEPTED_TAGS = ["VALID-TAG-1", "VALID-TAG-2"]
UNKNOWN_TAG = "UNKNOWN-TAG-9"
SLOW_TAG = "SLOW-TAG-7"  # unknown too; ocpp_rpc_backend.js answers it after 5 s
RESERVATION_ID = 7
HEARTBEAT_INTERVAL_S = 2  # the backends' BootNotification answer: a few heartbeats in every run
SAMPLE_INTERVAL_S = 2  # MeterValueSampleInterval set by ChangeConfiguration before the transactions
OFFLINE_S = 5  # long enough for a couple of periodic MeterValues to queue up


def station_template() -> dict[str, Any]:
    """The worked station template (copied next to the build by the install script)."""
    template_path = (
        SAP_DIR / "dist" / "assets" / "station-templates" / "peer-test.station-template.json"
    )
    template = json.loads(template_path.read_text())
    template["resetTime"] = 1  # seconds between Reset and the reboot (5 in the worked template)
    return template


async def wait_until(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true; TimeoutError naming ``what``."""
    try:
        async with asyncio.timeout(timeout(seconds)):
            while not (result := condition()):
                await asyncio.sleep(0.05)
            return result
    except TimeoutError:
        raise TimeoutError(f"no {what} within {timeout(seconds)} s") from None


async def launch_simulator(
    folder: Path, recorder_port: int, template: dict[str, Any] | None = None
) -> SapSimulator:
    """A simulator process for a recorder on ``recorder_port`` (not started yet: the port was
    chosen ahead), up and listening on its UI server, its station not started yet; ``template``:
    the station template (default :func:`station_template`)."""
    simulator = SapSimulator(
        folder,
        f"ws://127.0.0.1:{recorder_port}",
        template=station_template() if template is None else template,
    )
    try:
        await simulator.start()
    except BaseException:
        await simulator.stop()
        raise
    return simulator


async def run_session(
    engine: str,
    backend_kind: str,
    folder: Path,
    recorder_port: ReservedPort,
    launching: asyncio.Task[SapSimulator],
) -> Session:
    """Drive the SAP simulator (``launching``) through a recorder (``engine``) in front of
    ``backend_kind`` ('ocpp-rpc' or 'ocpp'), through every scenario in turn; stop them all."""

    capture_dir = folder / "capture"
    try:
        return await _run_session(engine, backend_kind, capture_dir, recorder_port, launching)
    finally:
        recorder_port.release()
        # However the run ended, the simulator process ends with it.
        if not launching.done():
            launching.cancel()
        with contextlib.suppress(BaseException):
            await (await launching).stop()


async def _run_session(
    engine: str,
    backend_kind: str,
    capture_dir: Path,
    recorder_port: ReservedPort,
    launching: asyncio.Task[SapSimulator],
) -> Session:
    from ocpp_audit.lab.central_system import CentralSystem, CentralSystemConfig
    from ocpp_audit.recorder.control import ControlClient
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService

    with contextlib.ExitStack() as stack:
        rpc_backend: OcppRpcBackend | None = None
        if backend_kind == "ocpp-rpc":
            rpc_backend = OcppRpcBackend(HEARTBEAT_INTERVAL_S, ACCEPTED_TAGS)
            await rpc_backend.start()
            tap = rpc_backend.tap
            options = RecordOptions(capture_dir, engine=engine, upstream=rpc_backend.url)  # type: ignore[arg-type]
            config = None
        else:
            tap = BackendTap()  # replaced by the central system's own once it runs
            options = RecordOptions(capture_dir, engine=engine, standalone=True)  # type: ignore[arg-type]
            config = CentralSystemConfig(
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                id_tags={tag: "Accepted" for tag in ACCEPTED_TAGS},
            )
        options.listen_port = recorder_port.release()
        options.control_host, options.control_port = "127.0.0.1", 0
        options.endpoints_host = "127.0.0.1"  # the diagnostics upload goes to the recorder's FTP
        session = Session(engine, backend_kind, capture_dir, tap)
        try:
            backend = CentralSystem(config) if config is not None else None
            async with RecorderService(options, backend) as service:
                assert service.control is not None
                if service.central_system is not None:  # nothing connected yet: tap it now
                    session.tap = stack.enter_context(tap_central_system(service.central_system))
                session.phase("simulator start")
                simulator = await launching
                try:
                    await simulator.connect()
                    control = ControlClient(service.control.url, service.control.token)
                    await _scenarios(session, simulator, control, service)
                finally:
                    await simulator.stop()
                    session.simulator_output = simulator.output
                    with contextlib.suppress(OSError):
                        session.simulator_sent = simulator.sent_frames()
        finally:
            if rpc_backend is not None:
                await rpc_backend.stop()
    return session


async def _scenarios(session: Session, simulator: SapSimulator, control: Any, service: Any) -> None:
    tap = session.tap

    async def inject(
        name: str, action: str, payload: dict[str, Any], seconds: float = 10
    ) -> dict[str, Any]:
        status, answer = await asyncio.to_thread(
            control.call, STATION, action, payload, timeout(seconds)
        )
        assert status == 200, (name, status, answer)
        session.injected[name] = answer
        return answer

    async def ui(name: str, procedure: str, payload: dict[str, Any] | None = None) -> None:
        try:
            await simulator.ui(procedure, payload)
        except UIError as error:
            session.ui_failures[name] = str(error)

    def received(action: str, **fields: Any) -> list[tuple[int, list[Any]]]:
        return [
            (connection, frame)
            for connection, frame in session.calls_received(action)
            if all(frame[3].get(key) == value for key, value in fields.items())
        ]

    def answered(action: str, **fields: Any) -> list[Any] | None:
        """The newest matching CALL, once the backend has answered it."""
        for _, frame in reversed(received(action, **fields)):
            with contextlib.suppress(KeyError):
                return [frame, session.answer_to(frame[1])]
        return None

    session.phase("boot")
    # Boot: BootNotification, then a StatusNotification per connector (never connector 0).
    await wait_until(lambda: len(received("StatusNotification")) >= 2, 20, "boot statuses")
    await wait_until(lambda: service.engine.registry.get(STATION), 10, "charger at the control API")
    session.phase("heartbeats")
    # Heartbeats at the interval the backend set (function 2): a few of them, untouched.
    await wait_until(lambda: len(received("Heartbeat")) >= 3, 4 * HEARTBEAT_INTERVAL_S + 5, "beats")

    session.phase("configuration")
    # Configuration (functions 4 and 5), trigger (16), availability (3).
    await inject("get_configuration", "GetConfiguration", {})
    await inject("get_configuration_unknown", "GetConfiguration", {"key": ["NoSuchKey"]})
    await inject(
        "change_sample_interval", "ChangeConfiguration",
        {"key": "MeterValueSampleInterval", "value": str(SAMPLE_INTERVAL_S)},
    )  # fmt: skip
    await inject("change_unknown_key", "ChangeConfiguration", {"key": "NoSuchKey", "value": "1"})
    mark = len(received("StatusNotification"))
    await inject(
        "trigger_status",
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
    )
    await wait_until(lambda: len(received("StatusNotification")) > mark, 10, "triggered status")
    mark = len(received("Heartbeat"))
    await inject("trigger_heartbeat", "TriggerMessage", {"requestedMessage": "Heartbeat"})
    await wait_until(lambda: len(received("Heartbeat")) > mark, 10, "triggered heartbeat")
    # Triggers of messages other than StatusNotification and Heartbeat, and ClearCache (15).
    for requested, extra in [
        ("FirmwareStatusNotification", {}),
        ("DiagnosticsStatusNotification", {}),
        ("MeterValues", {"connectorId": 1}),
    ]:
        await inject(
            f"trigger_{requested}", "TriggerMessage", {"requestedMessage": requested, **extra}
        )
    await inject("clear_cache", "ClearCache", {})
    await asyncio.sleep(1)  # time for what the triggers asked for
    await inject("inoperative", "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
    await wait_until(
        lambda: received("StatusNotification", connectorId=2, status="Unavailable"),
        10,
        "Unavailable",
    )
    await inject("operative", "ChangeAvailability", {"connectorId": 2, "type": "Operative"})
    await wait_until(
        lambda: len(received("StatusNotification", connectorId=2, status="Available")) >= 2,
        10, "Available again",
    )  # fmt: skip

    session.phase("local transaction")
    # Local start/stop: Authorize, StartTransaction, a periodic sample, StopTransaction.
    await ui("authorize", "authorize", {"idTag": ACCEPTED_TAGS[0]})
    await ui("local_start", "startTransaction", {"connectorId": 1, "idTag": ACCEPTED_TAGS[0]})
    start = await wait_until(lambda: answered("StartTransaction", connectorId=1), 10, "start")
    local = session.transactions["local"] = start[1][2]["transactionId"]
    await wait_until(
        lambda: [
            frame
            for _, frame in received("MeterValues", transactionId=local)
            if frame[3]["meterValue"][0]["sampledValue"][0].get("context") == "Sample.Periodic"
        ],
        SAMPLE_INTERVAL_S + 10,
        "a periodic sample",
    )
    await ui("local_stop", "stopTransaction", {"transactionId": local})
    await wait_until(lambda: answered("StopTransaction", transactionId=local), 10, "stop")

    session.phase("unknown card")
    # An unknown card: the backend answers Invalid (the UI server reports that as a failure).
    await ui("authorize_unknown", "authorize", {"idTag": UNKNOWN_TAG})
    await wait_until(lambda: answered("Authorize", idTag=UNKNOWN_TAG), 10, "unknown Authorize")

    session.phase("fault")
    # A fault on connector 1 (function 10), reported the way a charger does: Faulted with an
    # errorCode, then Available once it clears.
    await ui(
        "fault", "statusNotification",
        {"connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure"},
    )  # fmt: skip
    await wait_until(lambda: received("StatusNotification", status="Faulted"), 10, "Faulted")
    mark = len(received("StatusNotification", connectorId=1, status="Available"))
    await ui(
        "fault_cleared", "statusNotification",
        {"connectorId": 1, "status": "Available", "errorCode": "NoError"},
    )  # fmt: skip
    await wait_until(
        lambda: len(received("StatusNotification", connectorId=1, status="Available")) > mark,
        10, "Available after the fault",
    )  # fmt: skip

    session.phase("reservation")
    # A reservation (Reservation profile): ReserveNow makes connector 2 Reserved, CancelReservation
    # Available again; the status checks must follow both transitions.
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    await inject(
        "reserve_now", "ReserveNow",
        {"connectorId": 2, "expiryDate": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
         "idTag": ACCEPTED_TAGS[1], "reservationId": RESERVATION_ID},
    )  # fmt: skip
    await wait_until(
        lambda: received("StatusNotification", connectorId=2, status="Reserved"), 10, "Reserved"
    )
    mark = len(received("StatusNotification", connectorId=2, status="Available"))
    await inject("cancel_reservation", "CancelReservation", {"reservationId": RESERVATION_ID})
    await wait_until(
        lambda: len(received("StatusNotification", connectorId=2, status="Available")) > mark,
        10, "Available after the cancel",
    )  # fmt: skip

    session.phase("diagnostics")
    # Diagnostics over the recorder's own FTP endpoint (function 13): this simulator uploads a
    # tar.gz of its logs, sends Uploading and Uploaded, and only then answers GetDiagnostics.
    location = service.endpoints.diagnostics_location(STATION)
    await inject("get_diagnostics", "GetDiagnostics", {"location": location}, seconds=60)
    await wait_until(
        lambda: received("DiagnosticsStatusNotification", status="Uploaded")
        or received("DiagnosticsStatusNotification", status="UploadFailed"),
        20, "the upload's end",
    )  # fmt: skip

    session.phase("slow backend")
    # A slow backend (ocpp-rpc only): it answers this Authorize after 5 s; the charger's heartbeat
    # timer does not wait for it.
    if session.backend == "ocpp-rpc":
        await ui("authorize_slow", "authorize", {"idTag": SLOW_TAG})
        await wait_until(lambda: answered("Authorize", idTag=SLOW_TAG), 10, "slow Authorize")

    session.phase("remote transaction")
    # Remote start/stop on connector 2.
    await inject(
        "remote_start", "RemoteStartTransaction", {"connectorId": 2, "idTag": ACCEPTED_TAGS[1]}
    )
    start = await wait_until(
        lambda: answered("StartTransaction", connectorId=2), 10, "remote start"
    )
    remote = session.transactions["remote"] = start[1][2]["transactionId"]
    await inject("remote_stop", "RemoteStopTransaction", {"transactionId": remote})
    await wait_until(lambda: answered("StopTransaction", transactionId=remote), 10, "remote stop")

    session.phase("network loss")
    # Network loss during a transaction: periodic MeterValues queue up while the link is down.
    await ui("offline_start", "startTransaction", {"connectorId": 1, "idTag": ACCEPTED_TAGS[0]})
    start = await wait_until(
        lambda: [a for a in [answered("StartTransaction", connectorId=1)] if a and a[1][2]["transactionId"] != local],
        10, "start before the network loss",
    )  # fmt: skip
    offline = session.transactions["offline"] = start[0][1][2]["transactionId"]
    connections = tap.connections
    await ui("close_connection", "closeConnection")
    await asyncio.sleep(OFFLINE_S)
    await ui("open_connection", "openConnection")
    await wait_until(lambda: tap.connections > connections, 15, "reconnection")
    await ui("offline_stop", "stopTransaction", {"transactionId": offline})
    await wait_until(lambda: answered("StopTransaction", transactionId=offline), 10, "stop")

    session.phase("reset")
    # Reset, as the guided acceptance run does it (its 'soft reset' step, through the control API):
    # the charger reboots (a new connection and BootNotification) and, this simulator's way, only
    # then delivers the MeterValues it queued while offline.
    connections, boots = tap.connections, len(received("BootNotification"))
    guided = await run_guided(
        control, STATION, SapCharger(simulator), steps=(SOFT_RESET_STEP,), judge=False,
        step_timeout=3, reboot_timeout=20,
    )  # fmt: skip
    session.guided_reset = guided.steps[0]
    await wait_until(lambda: len(received("BootNotification")) > boots, 20, "BootNotification")
    await wait_until(
        lambda: [c for c, _ in received("MeterValues", transactionId=offline) if c > connections],
        15, "queued MeterValues after the reboot",
    )  # fmt: skip
    # Heartbeats go on after the reboot, on the new connection.
    await wait_until(
        lambda: [c for c, _ in received("Heartbeat") if c > connections], 10, "a Heartbeat after it"
    )
    await asyncio.sleep(1)  # the answers to the last frames
    session.phase("end")


# -- reading a capture and a report -----------------------------------------------------------------


@dataclass
class Message:
    """One frame of the capture, parsed."""

    connection: int  # 1 for the first connection of the run, 2 for the next ...
    direction: str
    frame: list[Any]
    raw: str
    ts: int
    injected: bool

    @property
    def unique_id(self) -> str:
        return self.frame[1]

    @property
    def payload(self) -> Any:
        return self.frame[-1]


def findings(verdict: dict[str, Any], check: str, detail: str = "") -> list[dict[str, Any]]:
    """The findings of one check whose detail contains ``detail``."""
    return [f for f in verdict["findings"] if f["check"] == check and detail in f["detail"]]


def evidence(finding: dict[str, Any]) -> list[str]:
    return [item["unique_id"] for item in finding["evidence"]]


def read_messages(capture_dir: Path) -> list[Message]:
    rows = read_capture(capture_dir)
    opened = [row["connection_id"] for row in rows if row["event"] == "open"]
    number = {connection_id: index + 1 for index, connection_id in enumerate(opened)}
    rows = [row for row in rows if row["event"] == "message"]
    rows.sort(key=lambda row: (number[row["connection_id"]], row["seq"]))
    messages = []
    for row in rows:
        raw = wire(row)
        assert isinstance(raw, str)
        messages.append(
            Message(
                number[row["connection_id"]],
                row["direction"],
                json.loads(raw),
                raw,
                row["ts"],
                bool(row["injected"]),
            )
        )
    return messages


def whole_tar_gz(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:gz") as archive:
            return bool(archive.getmembers())
    except (tarfile.TarError, OSError, EOFError):
        return False


def readable_gzip(path: Path) -> bool:
    try:
        with gzip.open(path) as stream:
            return len(stream.read()) > 0
    except (OSError, EOFError):
        return False
