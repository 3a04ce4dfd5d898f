"""Choosing a recording engine: the relay (default, on websockets) or mitmproxy.

mitmproxy is imported only when its engine is asked for, so the relay (and the analyser) never pay
for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.relay import RelayEngine

if TYPE_CHECKING:
    from ocpp_audit.capture.writer import CaptureWriter
    from ocpp_audit.recorder.mitm_engine import MitmEngine

ENGINES = ("relay", "mitmproxy")


def create_engine(options: RecordOptions, writer: CaptureWriter) -> RelayEngine | MitmEngine:
    """The engine ``options.engine`` names, recording into ``writer``; not started yet."""
    if options.engine == "relay":
        return RelayEngine(options, writer)
    if options.engine == "mitmproxy":
        from ocpp_audit.recorder.mitm_engine import MitmEngine

        return MitmEngine(options, writer)
    raise ValueError(f"unknown engine {options.engine!r}; choose one of {', '.join(ENGINES)}")
