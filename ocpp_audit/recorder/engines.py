"""Choosing a recording engine: the relay (default, on websockets) or mitmproxy.

mitmproxy is imported only when its engine is asked for, so the relay (and the analyser) never pay
for it. It is an optional extra (``pip install 'ocpp-audit[mitmproxy]'``): without it the relay
records as ever, and asking for the mitmproxy engine raises :class:`EngineUnavailableError`, whose
message names the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.relay import RelayEngine

if TYPE_CHECKING:
    from ocpp_audit.capture.writer import CaptureWriter
    from ocpp_audit.recorder.mirror import MirrorHub
    from ocpp_audit.recorder.mitm_engine import MitmEngine

ENGINES = ("relay", "mitmproxy")
MITMPROXY_EXTRA = "pip install 'ocpp-audit[mitmproxy]'"


class EngineUnavailableError(RuntimeError):
    """The engine asked for needs a package that is not installed (an optional extra)."""


def mitm_engine_class() -> type[MitmEngine]:
    """The mitmproxy engine's class, imported now; :class:`EngineUnavailableError` without the extra."""
    try:
        from ocpp_audit.recorder.mitm_engine import MitmEngine
    except ImportError as error:  # mitmproxy, or one of its own dependencies, is missing
        raise EngineUnavailableError(
            f"--engine mitmproxy needs the mitmproxy extra: {MITMPROXY_EXTRA} ({error})"
        ) from error
    return MitmEngine


def create_engine(
    options: RecordOptions, writer: CaptureWriter, mirrors: MirrorHub | None = None
) -> RelayEngine | MitmEngine:
    """The engine ``options.engine`` names, recording into ``writer`` and feeding ``mirrors``;
    not started yet."""
    if options.engine == "relay":
        return RelayEngine(options, writer, mirrors)
    if options.engine == "mitmproxy":
        return mitm_engine_class()(options, writer, mirrors)
    raise ValueError(f"unknown engine {options.engine!r}; choose one of {', '.join(ENGINES)}")
