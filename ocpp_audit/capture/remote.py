"""Captures in object storage (``s3://bucket/prefix``, and the other filesystems pyarrow knows).

Recording (``record --capture s3://bucket/prefix --journal-dir DIR``): the journal stays on local
disk, where ``os.write`` is durable before a frame is forwarded; each part the writer seals there is
uploaded by :class:`PartUploader`, in its own thread, to the same relative path under the prefix
(``frames/date=YYYY-MM-DD/part-....parquet``). An object store shows an object only once its upload
completed (S3: the PUT, or the multipart upload's completion), so readers never see half a part; the
local part is removed only after the stored object's size was read back equal. An unreachable store
keeps the parts on disk and retries with backoff (``ocpp_audit_parts_pending_upload`` counts them);
parts left by a stopped recorder are uploaded at its next start.

Reading (``analyse``/``query``/``export``/``replay`` with an ``s3://`` capture): the parts are
fetched into a local cache folder (only the ones not fetched before: part names are never reused, a
part never changes) and read there, with pyarrow's filesystems. Nothing needs DuckDB's httpfs
extension, which downloads itself at run time and so fails on a machine without internet.

Where the store is and how to reach it comes with the URI, as pyarrow reads it: credentials from the
usual environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles), an
S3-compatible server with query parameters: ``s3://bucket/prefix?endpoint_override=minio:9000&scheme=http``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from ocpp_audit.capture.parts import CaptureError
from ocpp_audit.capture.schema import FRAMES_DIR

__all__ = ["PartUploader", "RemoteCapture", "is_remote", "remote_capture"]

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


def is_remote(location: str | Path) -> bool:
    """A URI with a scheme other than file (``s3://...``), not a local path."""
    text = str(location)
    scheme = urlsplit(text).scheme
    return "://" in text and len(scheme) > 1 and scheme != "file"


def _shown(uri: str) -> str:
    """The URI without its query (which may carry an endpoint, never shown in full)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class RemoteCapture:
    """A capture folder in an object store: its filesystem and base path."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.shown = _shown(uri)
        try:
            self.filesystem, path = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as error:
            raise CaptureError(
                f"{self.shown}: not a capture location pyarrow can open: {error}"
            ) from None
        self.base = path.rstrip("/")

    def remote_path(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def parts(self) -> list[tuple[str, int]]:
        """(path relative to the capture, size) of every part under ``frames/``."""
        selector = pafs.FileSelector(
            self.remote_path(FRAMES_DIR), recursive=True, allow_not_found=True
        )
        try:
            infos = self.filesystem.get_file_info(selector)
        except OSError as error:
            raise CaptureError(f"{self.shown}: cannot list the capture: {error}") from None
        found = []
        for info in infos:
            if info.type == pafs.FileType.File and info.path.endswith(".parquet"):
                found.append((info.path[len(self.base) + 1 :], int(info.size or 0)))
        return sorted(found)

    def fetch(self, cache_root: Path) -> tuple[Path, int]:
        """Copy the parts not in the cache yet into a local capture folder; (folder, fetched)."""
        key = hashlib.sha256(self.shown.encode()).hexdigest()[:16]
        local = Path(cache_root) / key
        fetched = 0
        for relative, size in self.parts():
            target = local / relative
            if target.is_file() and target.stat().st_size == size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = target.with_name(f".{target.name}.tmp")
            try:
                pafs.copy_files(
                    self.remote_path(relative),
                    str(temporary),
                    source_filesystem=self.filesystem,
                    destination_filesystem=pafs.LocalFileSystem(),
                )
            except OSError as error:
                raise CaptureError(f"{self.shown}/{relative}: cannot fetch: {error}") from None
            os.replace(temporary, target)
            fetched += 1
        (local / FRAMES_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        return local, fetched


def default_cache() -> Path:
    """Where fetched parts are kept: ``OCPP_AUDIT_CACHE``, else ~/.cache/ocpp-audit/remote."""
    configured = os.environ.get("OCPP_AUDIT_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ocpp-audit" / "remote"


def remote_capture(uri: str, cache_root: Path | None = None) -> tuple[Path, int, int]:
    """Fetch a remote capture for reading: (local folder, parts in it, parts fetched now)."""
    capture = RemoteCapture(uri)
    local, fetched = capture.fetch(cache_root or default_cache())
    return local, len(capture.parts()), fetched


class PartUploader:
    """Uploads sealed parts from the local capture folder to the remote one, in its own thread."""

    def __init__(self, uri: str, local_capture: Path) -> None:
        self.remote = RemoteCapture(uri)
        self.local = Path(local_capture)
        self.uploaded = 0
        self.failures = 0
        self._pending: list[Path] = []
        self._condition = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._pending)

    def start(self) -> None:
        """Queue the parts a stopped recorder left, and start uploading."""
        leftovers = sorted((self.local / FRAMES_DIR).rglob("*.parquet"))
        self.submit([part for part in leftovers if part.is_file()])
        self._thread = threading.Thread(target=self._run, name="part-uploader", daemon=True)
        self._thread.start()

    def submit(self, parts: list[Path]) -> None:
        with self._condition:
            self._pending.extend(p for p in parts if p not in self._pending)
            self._condition.notify()

    def stop(self, timeout: float = 30.0) -> int:
        """Upload what is pending (for at most ``timeout``), then stop; the parts left behind."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending and time.monotonic() < deadline:
                self._condition.wait(0.1)
            self._stop = True
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(5)
        left = self.pending
        if left:
            logger.error(
                "%d sealed part(s) not uploaded to %s; they stay in %s and are uploaded at the "
                "next start", left, self.remote.shown, self.local,
            )  # fmt: skip
        return left

    def _run(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            with self._condition:
                while not self._pending and not self._stop:
                    self._condition.wait()
                if self._stop:
                    return
                part = self._pending[0]
            if self._upload(part):
                delay = RETRY_FIRST_S
                with self._condition:
                    self._pending.remove(part)
                    self._condition.notify_all()
            else:
                with self._condition:
                    self._condition.wait(delay)  # stop() wakes it
                delay = min(delay * 2, RETRY_MAX_S)

    def _upload(self, part: Path) -> bool:
        relative = part.relative_to(self.local).as_posix()
        target = self.remote.remote_path(relative)
        try:
            size = part.stat().st_size
            self.remote.filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
            pafs.copy_files(
                str(part), target,
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=self.remote.filesystem,
            )  # fmt: skip
            stored = self.remote.filesystem.get_file_info(target)
            if stored.type != pafs.FileType.File or stored.size != size:
                raise OSError(f"stored object has size {stored.size}, expected {size}")
        except FileNotFoundError:
            return True  # gone locally (uploaded and removed before a restart): nothing to do
        except OSError as error:
            self.failures += 1
            logger.warning(
                "upload of %s to %s failed (retried): %s", part.name, self.remote.shown, error
            )
            return False
        part.unlink()
        self.uploaded += 1
        logger.info("uploaded %s to %s", relative, self.remote.shown)
        return True
