"""The capture's writer life cycle when the addons run inside ``mitmdump``/``mitmproxy``.

Given a writer (the engine hands one in), this addon does nothing. Without one it opens a
``CaptureWriter`` on ``capture_dir`` in ``running`` (sealing journals an earlier run left) and closes
it, sealing the journal into Parquet parts, in ``done``. ``ocpp_pseudonymise_key`` wraps that writer
in a ``PseudonymisingSink``: idTags change in the capture, never on the wire.

Failure policy, as for the relay: with ``capture_on_write_error=continue`` a row the writer cannot
write is counted (``CaptureWriter.unrecorded``) and traffic flows on; with ``close`` the writer
raises ``CaptureWriteError`` and the recording addon kills the connection rather than forward a
frame unrecorded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mitmproxy import ctx, exceptions

from ocpp_audit.capture.connection import RowSink
from ocpp_audit.capture.writer import CaptureWriter

if TYPE_CHECKING:
    from mitmproxy.addonmanager import Loader

logger = logging.getLogger(__name__)


class CaptureFile:
    """Where rows go: ``writer`` (given, or opened on ``capture_dir`` while running)."""

    def __init__(self, writer: RowSink | None = None) -> None:
        self.writer: RowSink | None = writer
        self._own_writer: CaptureWriter | None = None  # the writer opened in running()

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "capture_dir",
            Optional[str],  # noqa: UP045 - mitmproxy's option types are typing objects
            None,
            "Capture folder: parts go to <capture_dir>/frames/date=YYYY-MM-DD/. Required when the "
            "addon runs inside mitmdump/mitmproxy.",
        )
        loader.add_option(
            "capture_rotate_seconds",
            int,
            300,
            "Seal the capture journal into a Parquet part at least this often (seconds).",
        )
        loader.add_option(
            "capture_rotate_bytes",
            int,
            64 * 1024 * 1024,
            "Seal the capture journal into a Parquet part when it grows past this many bytes.",
        )
        loader.add_option(
            "capture_on_write_error",
            str,
            "continue",
            "When a row cannot be written: continue (count it, keep forwarding) or close (kill the "
            "charger's connection rather than forward a frame unrecorded).",
            choices=("continue", "close"),
        )
        loader.add_option(
            "ocpp_pseudonymise_key",
            str,
            "",
            "Replace idTags in the capture (never on the wire) by a keyed hash (HMAC-SHA256 under "
            "this key), as record --pseudonymise-idtags. Only when the addon opens its own capture.",
        )

    def configure(self, updated: set[str]) -> None:
        if "capture_rotate_seconds" in updated and ctx.options.capture_rotate_seconds <= 0:
            raise exceptions.OptionsError("capture_rotate_seconds must be positive")
        if "capture_rotate_bytes" in updated and ctx.options.capture_rotate_bytes <= 0:
            raise exceptions.OptionsError("capture_rotate_bytes must be positive")
        if "capture_on_write_error" in updated and ctx.options.capture_on_write_error not in (
            "continue",
            "close",
        ):
            raise exceptions.OptionsError("capture_on_write_error must be continue or close")
        if "capture_dir" in updated and ctx.options.capture_dir:
            path = Path(ctx.options.capture_dir)
            if path.exists() and not path.is_dir():
                raise exceptions.OptionsError(f"capture_dir is not a folder: {path}")

    def running(self) -> None:
        if self.writer is not None:
            return
        if not ctx.options.capture_dir:
            logger.error("ocpp-audit: set capture_dir (--set capture_dir=DIR) to record")
            return
        writer = CaptureWriter(
            Path(ctx.options.capture_dir),
            rotate_seconds=float(ctx.options.capture_rotate_seconds),
            rotate_bytes=ctx.options.capture_rotate_bytes,
            on_write_error=ctx.options.capture_on_write_error,
        )
        recovered = writer.start()
        if recovered:
            logger.info("sealed %d journal(s) left by an earlier run", len(recovered))
        self._own_writer = writer
        self.writer = writer
        if ctx.options.ocpp_pseudonymise_key:
            from ocpp_audit.recorder.pseudonymise import IdTagPseudonymiser, PseudonymisingSink

            pseudonymiser = IdTagPseudonymiser(ctx.options.ocpp_pseudonymise_key)
            self.writer = PseudonymisingSink(writer, pseudonymiser)

    def done(self) -> None:
        """Close the writer this addon opened (sealing the journal); a given one is its owner's."""
        if self._own_writer is not None:
            self._own_writer.close()
            self._own_writer = None
            self.writer = None
