"""Built-in file endpoints for the guided run: firmware over HTTP, diagnostics uploads over FTP.

OCPP 1.6 section 5.19 (Update Firmware): the Central System sends "a URI where the Charge Point can
download the firmware"; section 5.9 (Get Diagnostics): "a location (directory) where the diagnostics
file shall be uploaded to", in practice an FTP URL. The lab has no such servers, so the recorder
brings its own, on loopback by default:

- HTTP ``GET /firmware/<name>`` (and ``HEAD``) serves one firmware file (a given one, or a small
  generated image), read into memory at start; nothing else on disk is reachable. A single
  ``Range: bytes=...`` is answered 206 with that part, so a charger can resume a download;
- FTP (``aioftp``'s server) accepts uploads. The FTP user name is the charge point id and the
  password is derived from it and a secret made for this run (HMAC-SHA256), so the diagnostics URL
  handed to one charger (``diagnostics_location``) logs in as that charger only; ``accept_login``
  (the recorder: "is this charger connected?") refuses every other id. Each charger gets its own
  folder under ``<root>/diagnostics/<charge point id>/`` (0700, files 0600), may store files there
  and nothing else (no listing, reading, deleting, renaming, folders), within limits per upload,
  per charger and in total (counted while the file streams in: an upload over a limit is cut and
  removed), with a cap on connections and an idle timeout. Every finished or cut upload is reported
  to ``on_upload(charge_point_id, file_name, size, content)`` so the recorder writes an ``upload``
  row into the capture (rule 13 then sees what arrived).

HTTP is served by aiohttp (:mod:`ocpp_audit.web`), as the control API is: idle connections are
closed after ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

import aioftp
from aiohttp import web

from ocpp_audit.capture import schema
from ocpp_audit.capture.connection import format_address
from ocpp_audit.recorder.diagnostics_file import describe
from ocpp_audit.web import DEFAULT_IDLE_TIMEOUT_S, WebServer

logger = logging.getLogger(__name__)

DEFAULT_FIRMWARE_NAME = "ocpp-audit-firmware-9.9.0.bin"
GENERATED_FIRMWARE_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """What the FTP endpoint accepts; a diagnostics report is a few MB at most in practice."""

    per_upload_bytes: int = 64 * 1024 * 1024
    per_charger_bytes: int = 256 * 1024 * 1024
    total_bytes: int = 1024 * 1024 * 1024
    connections: int = 32  # at once, all chargers together
    connections_per_charger: int = 2
    idle_timeout_s: float = 60.0


# (charge point id, file name, size in bytes, what the file holds: diagnostics_file.describe)
OnUpload = Callable[[str, str, int, dict[str, Any]], None]


# A charger's folder name holds at most this many characters (file systems allow 255 bytes).
MAX_FOLDER_NAME = 120


def charger_folder_name(charge_point_id: str) -> str:
    """The folder of a charge point id: the id itself when it is plain (letters, digits, ``._@+-``,
    not starting with a dot), else percent-encoded (``CP/1`` -> ``CP%2F1``, ``..`` -> ``%2E.``), so
    two ids never share a folder and none names a path. An id too long for a file name is cut and
    followed by ``~`` and a hash of the whole id (``~`` is encoded everywhere else)."""
    encoded = "".join(
        char
        if re.fullmatch(r"[A-Za-z0-9_@+\-]", char) or (char == "." and index)
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for index, char in enumerate(charge_point_id)
    )
    if not encoded:
        return "%"  # the empty id (refused at login anyway); "%" alone decodes to nothing else
    if len(encoded) > MAX_FOLDER_NAME:
        digest = hashlib.sha256(charge_point_id.encode("utf-8", "surrogatepass")).hexdigest()
        encoded = f"{encoded[: MAX_FOLDER_NAME - 17]}~{digest[:16]}"
    return encoded


@dataclass(frozen=True)
class Download:
    path: str
    size: int
    remote_address: str | None


class UploadTooLarge(Exception):
    """An upload went over a limit; it is cut and removed."""


class _Quota:
    """Bytes stored per charger and in total, shared by every FTP connection of the endpoint."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.by_charger: Counter[str] = Counter()
        self.total = 0
        self.cut: dict[Path, str] = {}  # uploads cut, with the reason, until reported

    def take(self, charge_point_id: str, path: Path, written: int, size: int) -> None:
        """Account ``size`` more bytes of the file at ``path``, or raise UploadTooLarge."""
        limits = self.limits
        reason = None
        if written + size > limits.per_upload_bytes:
            reason = f"over the per-upload limit of {limits.per_upload_bytes} bytes"
        elif self.by_charger[charge_point_id] + size > limits.per_charger_bytes:
            reason = f"over the per-charger limit of {limits.per_charger_bytes} bytes"
        elif self.total + size > limits.total_bytes:
            reason = f"over the endpoint's limit of {limits.total_bytes} bytes in all"
        if reason is not None:
            self.cut[path] = f"cut at {written} bytes and removed: {reason}"
            raise UploadTooLarge(reason)
        self.by_charger[charge_point_id] += size
        self.total += size

    def give_back(self, charge_point_id: str, size: int) -> None:
        self.by_charger[charge_point_id] -= size
        self.total -= size


class _LimitedPathIO(aioftp.PathIO):
    """aioftp's file access for one FTP connection: files created 0600, bytes counted against the
    quota as they are written (so a limit cuts the upload while it streams in)."""

    quota: _Quota  # set on the subclass made per endpoint

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._files: dict[int, tuple[Path, int]] = {}  # id(file) -> (path, bytes written)

    async def _open(self, path: Path, mode: Any = "rb", *args: Any, **kwargs: Any) -> Any:
        file = await super()._open(path, mode, *args, **kwargs)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        self._files[id(file)] = (path, 0)
        return file

    async def write(self, file: Any, s: Any) -> int:
        path, written = self._files.get(id(file), (Path(), 0))
        user = getattr(self.connection, "user", None)
        charge_point_id = getattr(user, "login", None) or "unknown"
        self.quota.take(charge_point_id, path, written, len(s))
        self._files[id(file)] = (path, written + len(s))
        return await super().write(file, s)

    async def close(self, file: Any) -> None:
        self._files.pop(id(file), None)
        await super().close(file)


class _ChargerUsers(aioftp.AbstractUserManager):
    """A login is a charge point id the recorder accepts (a connected charger), with its password.

    Refused ids get no User object and no folder (aioftp keeps a throttle per User object, so a new
    object per USER command would grow without end).
    """

    def __init__(
        self,
        root: Path,
        password: Callable[[str], str],
        accept: Callable[[str], bool],
        limits: UploadLimits,
    ) -> None:
        super().__init__()
        self.root = root
        self.password = password
        self.accept = accept
        self.limits = limits
        self._users: dict[str, aioftp.User] = {}

    async def get_user(self, login: str) -> tuple[Any, aioftp.User | None, str]:
        charge_point_id = unquote(login.strip())
        user = self._users.get(charge_point_id)
        if user is None:
            if not charge_point_id or not self.accept(charge_point_id):
                return aioftp.AbstractUserManager.GetUserResponse.ERROR, None, "no such charger"
            user = aioftp.User(
                charge_point_id,
                base_path=self.root / charger_folder_name(charge_point_id),
                permissions=[aioftp.Permission("/", readable=False, writable=True)],
                maximum_connections=self.limits.connections_per_charger,
            )
            self._users[charge_point_id] = user
        return aioftp.AbstractUserManager.GetUserResponse.PASSWORD_REQUIRED, user, "password"

    async def authenticate(self, user: aioftp.User, password: str) -> bool:
        if not hmac.compare_digest(password.encode(), self.password(user.login or "").encode()):
            return False
        Path(user.base_path).mkdir(mode=0o700, exist_ok=True)  # a folder once logged in, 0700
        return True


class _RecordingFtpServer(aioftp.Server):
    """aioftp's server, reporting each finished STOR/APPE with the charger's login; storing files is
    all a charger may do."""

    def __init__(
        self,
        users: _ChargerUsers,
        on_upload: OnUpload,
        limits: UploadLimits,
    ) -> None:
        self.quota = _Quota(limits)
        path_io = type("_EndpointPathIO", (_LimitedPathIO,), {"quota": self.quota})
        super().__init__(
            users,
            idle_timeout=limits.idle_timeout_s,
            socket_timeout=limits.idle_timeout_s,
            path_io_factory=path_io,
            maximum_connections=limits.connections,
        )
        self._on_upload = on_upload

    async def _refuse(self, connection: Any, rest: Any) -> bool:
        connection.response("550", "not allowed: this endpoint only stores diagnostics files")
        return True

    # RFC 959 DELE, RNFR/RNTO, MKD, RMD: a charger may not delete, rename or make folders.
    dele = rnfr = rnto = mkd = rmd = _refuse  # type: ignore[assignment]

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
        cut = self.quota.cut.pop(path, None)
        if cut is not None:  # over a limit: remove it, and say so in the capture
            size = 0
            with contextlib.suppress(OSError):
                size = path.stat().st_size
                path.unlink()
            self.quota.give_back(charge_point_id, size)
            logger.warning("%s: diagnostics upload %s %s", charge_point_id, path.name, cut)
            content = {"kind": "cut", "readable": False, "problem": cut}
            self._on_upload(charge_point_id, path.name, size, content)
            return
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
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
        accept_login: Callable[[str], bool] | None = None,
        upload_limits: UploadLimits | None = None,
    ) -> None:
        self.root = root
        # FTP logins: only charge point ids this accepts (the recorder: connected chargers)
        self.accept_login = accept_login or (lambda charge_point_id: True)
        self.upload_limits = upload_limits or UploadLimits()
        self._secret = secrets.token_bytes(32)  # made anew for every run
        self.host = host
        self.http_port = http_port
        self.ftp_port = ftp_port
        self.firmware = firmware
        self.firmware_name = firmware.name if firmware is not None else DEFAULT_FIRMWARE_NAME
        self._firmware_bytes = b""
        self.on_upload = on_upload
        self.uploads: list[tuple[str, str, int]] = []  # (charge point id, file name, size)
        self.downloads: list[Download] = []
        self.idle_timeout = idle_timeout
        self._http: WebServer | None = None
        self._ftp: _RecordingFtpServer | None = None

    # --- locations the guided run hands to the charger -------------------------------------------

    def _host_in_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def firmware_location(self) -> str:
        return f"http://{self._host_in_url()}:{self.http_port}/firmware/{quote(self.firmware_name)}"

    def ftp_password(self, charge_point_id: str) -> str:
        """The charger's FTP password for this run: HMAC-SHA256(run secret, charge point id)."""
        digest = hmac.new(self._secret, charge_point_id.encode("utf-8", "surrogatepass"), "sha256")
        return digest.hexdigest()[:24]

    def diagnostics_location(self, charge_point_id: str) -> str:
        """ftp://<charge point id>:<password>@host:port/ : the user name names the charger, the
        password is its own for this run."""
        user = quote(charge_point_id, safe="")
        password = self.ftp_password(charge_point_id)
        return f"ftp://{user}:{password}@{self._host_in_url()}:{self.ftp_port}/"

    @property
    def diagnostics_dir(self) -> Path:
        return self.root / schema.UPLOADS_DIR

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.firmware is not None:
            self._firmware_bytes = await asyncio.to_thread(self.firmware.read_bytes)
        else:
            self._firmware_bytes = _generated_firmware(self.firmware_name)
        self.diagnostics_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        app = web.Application()
        app.router.add_get("/firmware/{name}", self._get_firmware)  # and HEAD
        self._http = WebServer(
            app,
            self.host,
            self.http_port,
            idle_timeout=self.idle_timeout,
            name="firmware endpoint",
        )
        await self._http.start()
        self.http_port = self._http.port
        users = _ChargerUsers(
            self.diagnostics_dir, self.ftp_password, self.accept_login, self.upload_limits
        )
        self._ftp = _RecordingFtpServer(users, self._uploaded, self.upload_limits)
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
            await self._http.stop()
            self._http = None

    async def __aenter__(self) -> FileEndpoints:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _uploaded(
        self, charge_point_id: str, file_name: str, size: int, content: dict[str, Any]
    ) -> None:
        self.uploads.append((charge_point_id, file_name, size))
        if self.on_upload is not None:
            try:
                self.on_upload(charge_point_id, file_name, size, content)
            except Exception:
                logger.exception("recording the upload of %s failed", file_name)

    # --- HTTP -------------------------------------------------------------------------------------

    async def _get_firmware(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != self.firmware_name:
            return web.Response(status=404, text="not found\n")
        data = self._firmware_bytes
        size = len(data)
        headers = {"Accept-Ranges": "bytes"}
        status, start, end = 200, 0, size
        try:
            wanted = request.http_range  # one "bytes=first-last" range, or slice(None, None)
        except ValueError:
            wanted = slice(None, None)  # RFC 9110 14.2: a server MAY ignore the Range header
        if wanted.start is not None or wanted.stop is not None:
            start, end, _ = wanted.indices(size)
            if start >= end:  # starts past the end
                # RFC 9110 15.5.17: 416, with the current length in Content-Range
                headers["Content-Range"] = f"bytes */{size}"
                return web.Response(status=416, headers=headers)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        if request.method == "GET":
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.downloads.append(Download(request.raw_path, end - start, format_address(peer)))
        return web.Response(
            status=status,
            body=data[start:end],
            headers=headers,
            content_type="application/octet-stream",
        )


def _generated_firmware(name: str) -> bytes:
    """A deterministic stand-in image: repeated SHA-256 blocks of the name."""
    block = hashlib.sha256(name.encode()).digest()
    return (block * (GENERATED_FIRMWARE_BYTES // len(block) + 1))[:GENERATED_FIRMWARE_BYTES]
