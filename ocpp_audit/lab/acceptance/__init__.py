"""The guided acceptance run (``ocpp-audit acceptance``): the script's 16 functions, driven
through the recorder's control API, with a person or the simulator doing the physical steps."""

from __future__ import annotations

from ocpp_audit.lab.acceptance.chargers import AutoCharger, PromptedCharger
from ocpp_audit.lab.acceptance.commander import CallErrorReceived, ControlCommander, ControlError
from ocpp_audit.lab.acceptance.run import GUIDED_STEPS, GuidedRun, Prompts, StepOutcome, run_guided

__all__ = [
    "GUIDED_STEPS",
    "AutoCharger",
    "CallErrorReceived",
    "ControlCommander",
    "ControlError",
    "GuidedRun",
    "PromptedCharger",
    "Prompts",
    "StepOutcome",
    "run_guided",
]
