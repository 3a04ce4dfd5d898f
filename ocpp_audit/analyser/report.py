"""The report formats under their former address: see ``ocpp_audit.analyser.render``."""

from __future__ import annotations

from ocpp_audit.analyser.model import RESULT_WORDS, result_notes
from ocpp_audit.analyser.render import FORMATS, RENDERERS, render

__all__ = ["FORMATS", "RENDERERS", "RESULT_WORDS", "render", "result_notes"]
