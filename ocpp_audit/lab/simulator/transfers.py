"""File transfers of the simulated charger: firmware download, diagnostics upload.

Only locations on the loopback interface are really contacted (the lab's built-in endpoints), and
never through an HTTP proxy from the environment; any other location is simulated, so a simulator
never reaches out to the internet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from urllib.parse import unquote, urlsplit

import aioftp
import aiohttp

__all__ = ["DownloadFailed", "download_firmware", "is_loopback_location", "upload_diagnostics"]

logger = logging.getLogger(__name__)


def is_loopback_location(location: str) -> bool:
    host = urlsplit(location).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DownloadFailed(OSError):
    """The firmware server answered with an HTTP error ``status``."""

    def __init__(self, location: str, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason} for {location}")
        self.status = status


async def download_firmware(location: str, *, timeout: float = 30.0) -> int:
    """Fetch a firmware image from an http(s) URL on loopback; returns its size in bytes.

    Raises OSError (DownloadFailed for an HTTP error status; TimeoutError) when the download
    fails, ValueError for another scheme.
    """
    scheme = urlsplit(location).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"firmware location scheme {scheme!r} is not http or https")
    # trust_env=False: a loopback location never goes through an http_proxy from the environment
    try:
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.get(location, timeout=aiohttp.ClientTimeout(total=timeout)) as response,
        ):
            if response.status >= 400:
                raise DownloadFailed(location, response.status, response.reason or "")
            data = await response.read()
    except aiohttp.ClientError as exc:
        if isinstance(exc, OSError):
            raise
        raise ConnectionError(f"firmware download from {location}: {exc}") from exc
    logger.info("downloaded %d bytes of firmware from %s", len(data), location)
    return len(data)


async def upload_diagnostics(
    location: str, file_name: str, content: bytes, *, timeout: float = 30.0
) -> None:
    """Upload a diagnostics file to an ftp:// directory URL on loopback (OCPP 1.6 section 5.9).

    Raises OSError or aioftp.StatusCodeError when the upload fails.
    """
    parts = urlsplit(location)
    if parts.scheme != "ftp":
        raise ValueError(f"diagnostics location scheme {parts.scheme!r} is not ftp")
    directory = unquote(parts.path or "/")
    remote_path = directory.rstrip("/") + "/" + file_name
    user = unquote(parts.username) if parts.username else "anonymous"
    password = unquote(parts.password) if parts.password else "anon@"

    async def upload() -> None:
        async with (
            aioftp.Client.context(parts.hostname, parts.port or 21, user, password) as client,
            client.upload_stream(remote_path) as stream,
        ):
            await stream.write(content)

    await asyncio.wait_for(upload(), timeout)
    logger.info("uploaded %d bytes of diagnostics to %s", len(content), remote_path)
