"""Built-in file endpoints for the guided run: firmware over HTTP, diagnostics uploads over FTP.

OCPP 1.6 section 5.19 (Update Firmware): the Central System sends "a URI where the Charge Point can
download the firmware"; section 5.9 (Get Diagnostics): "a location (directory) where the diagnostics
file shall be uploaded to", in practice an FTP URL. The lab has no such servers, so the recorder
brings its own, on loopback by default:

- HTTP ``GET /firmware/<name>`` serves one firmware file (a given one, or a small generated image);
- FTP (``aioftp``'s server) accepts uploads. The FTP user name is the charge point id: each charger
  gets its own folder under ``<root>/diagnostics/<charge point id>/``, and every finished upload is
  reported to ``on_upload(charge_point_id, file_name, size)`` so the recorder writes an ``upload``
  row into the capture (rule 13 then sees "the file arrived").

HTTP is parsed by ``h11`` (as the control API does), so neither endpoint needs a web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

import aioftp
import h11

from ocpp_audit.capture.connection import format_address
from ocpp_audit.recorder.diagnostics_file import describe

logger = logging.getLogger(__name__)

DEFAULT_FIRMWARE_NAME = "ocpp-audit-firmware-9.9.0.bin"
GENERATED_FIRMWARE_BYTES = 64 * 1024

# (charge point id, file name, size in bytes, what the file holds: diagnostics_file.describe)
OnUpload = Callable[[str, str, int, dict[str, Any]], None]


def _safe_segment(value: str) -> str:
    """A folder name for a charge point id (no separators, no dot-dot)."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "_", value).strip(".")
    return cleaned or "_"


@dataclass(frozen=True)
class Download:
    path: str
    size: int
    remote_address: str | None


class _ChargerUsers(aioftp.AbstractUserManager):
    """Any login is a charge point id; each gets its own upload folder, write-only.

    The password is not checked: the endpoint listens on loopback unless told otherwise, and a
    charger's FTP client always sends one.
    """

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    async def get_user(self, login: str) -> tuple[Any, aioftp.User | None, str]:
        login = login.strip()
        if not login or login.lower() in ("anonymous", "ftp"):
            login = "unknown"
        base = self.root / _safe_segment(login)
        base.mkdir(parents=True, exist_ok=True)
        user = aioftp.User(
            login,
            base_path=base,
            permissions=[aioftp.Permission("/", readable=False, writable=True)],
        )
        return aioftp.AbstractUserManager.GetUserResponse.PASSWORD_REQUIRED, user, "password"

    async def authenticate(self, user: aioftp.User, password: str) -> bool:
        return True


class _RecordingFtpServer(aioftp.Server):
    """aioftp's server, reporting each finished STOR/APPE with the charger's login."""

    def __init__(self, root: Path, on_upload: OnUpload) -> None:
        super().__init__(_ChargerUsers(root), idle_timeout=60, socket_timeout=60)
        self._on_upload = on_upload

    async def stor(
        self, connection: Any, rest: str | PurePosixPath, mode: str = "wb"
    ) -> bool:  # aioftp's command signature
        before = set(connection.extra_workers)
        result = await super().stor(connection, rest, mode)
        started = set(connection.extra_workers) - before
        if started:
            real_path, _ = self.get_paths(connection, rest)
            login = connection.user.login or "unknown"
            for task in started:
                task.add_done_callback(
                    lambda t, p=real_path, cp=login: self._finished(t, cp, Path(p))
                )
        return result

    async def parse_command(self, stream: Any, censor_commands: tuple[str] = ("pass",)) -> Any:
        """aioftp's, but a client gone after QUIT reads as QUIT.

        aioftp leaves the command reader started before QUIT pending; when the client then closes,
        its ConnectionResetError is never retrieved and asyncio logs it as an error.
        """
        try:
            return await super().parse_command(stream, censor_commands)
        except ConnectionResetError:
            return "quit", ""

    def _finished(self, task: asyncio.Task[bool], charge_point_id: str, path: Path) -> None:
        # aioftp's worker returns None both when done and when the client aborted (ABOR).
        if task.cancelled() or task.exception() is not None:
            logger.warning("%s: diagnostics upload of %s did not finish", charge_point_id, path)
            return
        try:
            size = path.stat().st_size
        except OSError as exc:
            logger.warning("%s: uploaded file %s is gone: %s", charge_point_id, path, exc)
            return
        # Reading the file (bounded decompression) runs off the event loop, chargers keep flowing.
        described = asyncio.get_running_loop().run_in_executor(None, describe, path)
        described.add_done_callback(
            lambda done: self._described(done, charge_point_id, path.name, size)
        )

    def _described(
        self, done: asyncio.Future[dict[str, Any]], charge_point_id: str, name: str, size: int
    ) -> None:
        content = done.result() if not done.cancelled() and done.exception() is None else {}
        logger.info(
            "%s: diagnostics file %s arrived (%d bytes, %s%s)",
            charge_point_id,
            name,
            size,
            content.get("kind", "unknown"),
            "" if content.get("readable") else f", not readable: {content.get('problem')}",
        )
        self._on_upload(charge_point_id, name, size, content)


class FileEndpoints:
    """HTTP firmware download and FTP diagnostics upload on ``host`` (ports 0: any free port)."""

    def __init__(
        self,
        root: Path,
        *,
        firmware: Path | None = None,
        host: str = "127.0.0.1",
        http_port: int = 0,
        ftp_port: int = 0,
        on_upload: OnUpload | None = None,
    ) -> None:
        self.root = root
        self.host = host
        self.http_port = http_port
        self.ftp_port = ftp_port
        self.firmware = firmware
        self.firmware_name = firmware.name if firmware is not None else DEFAULT_FIRMWARE_NAME
        self._firmware_bytes = b""
        self.on_upload = on_upload
        self.uploads: list[tuple[str, str, int]] = []  # (charge point id, file name, size)
        self.downloads: list[Download] = []
        self._http: asyncio.Server | None = None
        self._ftp: _RecordingFtpServer | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # --- locations the guided run hands to the charger -------------------------------------------

    def _host_in_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def firmware_location(self) -> str:
        return f"http://{self._host_in_url()}:{self.http_port}/firmware/{quote(self.firmware_name)}"

    def diagnostics_location(self, charge_point_id: str) -> str:
        """ftp://<charge point id>:<password>@host:port/ : the user name names the charger."""
        user = quote(charge_point_id, safe="")
        return f"ftp://{user}:ocpp-audit@{self._host_in_url()}:{self.ftp_port}/"

    @property
    def diagnostics_dir(self) -> Path:
        return self.root / "diagnostics"

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.firmware is not None:
            self._firmware_bytes = await asyncio.to_thread(self.firmware.read_bytes)
        else:
            self._firmware_bytes = _generated_firmware(self.firmware_name)
        self.diagnostics_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._http = await asyncio.start_server(self._serve_http, self.host, self.http_port)
        self.http_port = self._http.sockets[0].getsockname()[1]
        self._ftp = _RecordingFtpServer(self.diagnostics_dir, self._uploaded)
        await self._ftp.start(self.host, self.ftp_port)
        self.ftp_port = self._ftp.address[1]
        logger.info(
            "firmware on %s, diagnostics uploads to ftp://%s:%d/",
            self.firmware_location,
            self.host,
            self.ftp_port,
        )

    async def stop(self) -> None:
        if self._ftp is not None:
            with contextlib.suppress(Exception):
                await self._ftp.close()
            self._ftp = None
        if self._http is not None:
            self._http.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._http.wait_closed()
            self._http = None

    async def __aenter__(self) -> FileEndpoints:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _uploaded(
        self, charge_point_id: str, file_name: str, size: int, content: dict[str, Any]
    ) -> None:
        charge_point_id = unquote(charge_point_id)
        self.uploads.append((charge_point_id, file_name, size))
        if self.on_upload is not None:
            try:
                self.on_upload(charge_point_id, file_name, size, content)
            except Exception:
                logger.exception("recording the upload of %s failed", file_name)

    # --- HTTP -------------------------------------------------------------------------------------

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername")
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(65536))
                    continue
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if not isinstance(event, h11.Request):
                    continue
                status, body = self._answer(event)
                if status == 200:
                    self.downloads.append(
                        Download(event.target.decode("latin-1"), len(body), format_address(peer))
                    )
                headers = [
                    ("Content-Length", str(len(body))),
                    ("Content-Type", "application/octet-stream" if status == 200 else "text/plain"),
                ]
                writer.write(connection.send(h11.Response(status_code=status, headers=headers)))
                if event.method != b"HEAD":
                    writer.write(connection.send(h11.Data(data=body)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
                while connection.their_state is h11.SEND_BODY:  # drain a request body
                    more = connection.next_event()
                    if more is h11.NEED_DATA:
                        connection.receive_data(await reader.read(65536))
                    elif isinstance(more, h11.EndOfMessage | h11.ConnectionClosed):
                        break
                if connection.our_state is h11.MUST_CLOSE or connection.their_state is h11.DONE:
                    if connection.our_state is h11.MUST_CLOSE:
                        return
                    connection.start_next_cycle()
        except (h11.ProtocolError, ConnectionError) as exc:
            logger.debug("firmware endpoint connection ended: %s", exc)
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, request: h11.Request) -> tuple[int, bytes]:
        if request.method not in (b"GET", b"HEAD"):
            return 405, b"only GET\n"
        path = unquote(request.target.decode("latin-1").split("?", 1)[0])
        if path == f"/firmware/{self.firmware_name}":
            return 200, self._firmware_bytes
        return 404, b"not found\n"


def _generated_firmware(name: str) -> bytes:
    """A deterministic stand-in image: repeated SHA-256 blocks of the name."""
    block = hashlib.sha256(name.encode()).digest()
    return (block * (GENERATED_FIRMWARE_BYTES // len(block) + 1))[:GENERATED_FIRMWARE_BYTES]
