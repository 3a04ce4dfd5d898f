"""The mitmproxy engine's addons (see recording.py until they are split by concern)."""

from __future__ import annotations

from ocpp_audit.recorder.mitm.recording import OcppCapture, addons

__all__ = ["OcppCapture", "addons"]
