"""Simulated OCPP 1.6-J chargers with behaviour profiles, driven over real WebSockets."""

from __future__ import annotations

from ocpp_audit.lab.simulator.charger import ChargerTiming, SimulatedCharger
from ocpp_audit.lab.simulator.profiles import PROFILES, Profile

__all__ = ["PROFILES", "ChargerTiming", "Profile", "SimulatedCharger"]
