"""File transfers of the simulated charger: firmware download, diagnostics upload.

Only locations on the loopback interface are really contacted (the lab's built-in endpoints); any
other location is simulated, so a simulator never reaches out to the internet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import urllib.request
from urllib.parse import unquote, urlsplit

import aioftp

__all__ = ["download_firmware", "is_loopback_location", "upload_diagnostics"]

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


def _download(location: str, timeout: float) -> bytes:
    with urllib.request.urlopen(location, timeout=timeout) as response:
        return response.read()


async def download_firmware(location: str, *, timeout: float = 30.0) -> int:
    """Fetch a firmware image from an http(s) URL on loopback; returns its size in bytes.

    Raises OSError (or ValueError for another scheme) when the download fails.
    """
    scheme = urlsplit(location).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"firmware location scheme {scheme!r} is not http or https")
    data = await asyncio.to_thread(_download, location, timeout)
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
