"""Simulated chargers (OCPP 1.6-J and 2.0.1) with behaviour profiles, over real WebSockets."""

from __future__ import annotations

from typing import Any

from ocpp_audit.lab.simulator.charger import ChargerTiming, SimulatedCharger
from ocpp_audit.lab.simulator.charger_v201 import SimulatedCharger201
from ocpp_audit.lab.simulator.profiles import ALL_PROFILES, PROFILES, PROFILES_V201, Profile

__all__ = [
    "ALL_PROFILES",
    "PROFILES",
    "PROFILES_V201",
    "ChargerTiming",
    "Profile",
    "SimulatedCharger",
    "SimulatedCharger201",
    "simulated_charger",
]


def simulated_charger(
    charge_point_id: str, target_url: str, *, profile: str = "good", **options: Any
) -> SimulatedCharger:
    """The simulated charger of the profile's OCPP version (1.6, or 2.0.1 for ``v201-*``)."""
    known = ALL_PROFILES.get(profile)
    kind = SimulatedCharger201 if known and known.ocpp_version == "2.0.1" else SimulatedCharger
    return kind(charge_point_id, target_url, profile=profile, **options)
