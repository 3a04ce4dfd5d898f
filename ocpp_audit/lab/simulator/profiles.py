"""Behaviour profiles: a well-behaved charger, and ones with a single fault seen on real chargers.

Each faulty profile changes exactly one behaviour, so that the analyser's tests can check that it
fails exactly the acceptance functions its fault touches (``fails``) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALL_PROFILES", "PROFILES", "PROFILES_V201", "Profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # acceptance functions (1-16 of the script) this fault should FAIL; () for the good profile
    fails: tuple[int, ...] = ()
    # protocol checks (rule ids without a function number) this fault should trip
    trips: tuple[str, ...] = ()
    # BootNotification carries chargePointSerialNumber and iccid
    send_serial_and_iccid: bool = True
    # heartbeats every HeartbeatInterval * heartbeat_factor seconds
    heartbeat_factor: float = 1.0
    # periodic meter values every max(MeterValueSampleInterval * factor, floor) seconds
    meter_interval_factor: float = 1.0
    meter_interval_floor_s: float = 0.0
    # ChangeConfiguration answered Accepted (or Rejected / NotSupported on the merits)
    accept_change_configuration: bool = True
    # MeterValues queued while offline are delivered after reconnect (else discarded)
    deliver_queued_meter_values: bool = True
    # send one broken frame (a StatusNotification with a trailing comma) after the first boot
    malformed_frame_after_boot: bool = False
    # the OCPP version the charger speaks (a 2.0.1 profile runs on the 2.0.1 simulator)
    ocpp_version: str = "1.6"


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("good", "a well-behaved OCPP 1.6-J charger"),
        Profile(
            "no-serial",
            "BootNotification without chargePointSerialNumber and iccid",
            fails=(1,),
            send_serial_and_iccid=False,
        ),
        Profile(
            "slow-heartbeat",
            "heartbeats at 3x the interval the backend set",
            fails=(2,),
            heartbeat_factor=3.0,
        ),
        Profile(
            "sparse-meter-values",
            "meter values at 3x MeterValueSampleInterval, and never closer than 7 s",
            fails=(8,),
            meter_interval_factor=3.0,
            # above the analyser's default limit for a 1 s interval (interval + 5 s tolerance)
            meter_interval_floor_s=7.0,
        ),
        Profile(
            "rejects-change-configuration",
            "answers every ChangeConfiguration with Rejected",
            fails=(5,),
            accept_change_configuration=False,
        ),
        Profile(
            "drops-queued-meter-values",
            "after an offline period delivers StartTransaction and StopTransaction, "
            "but discards the MeterValues it queued",
            fails=(14,),
            deliver_queued_meter_values=False,
        ),
        Profile(
            "malformed-frame",
            "once after boot sends a StatusNotification with a trailing comma (invalid JSON)",
            trips=("protocol-malformed",),
            malformed_frame_after_boot=True,
        ),
    )
}

# OCPP 2.0.1 charging stations (simulator/charger_v201.py): the 1.6 faults in 2.0.1 terms. Kept apart
# from PROFILES, whose chargers speak 1.6 (the 1.6 scenario and its tests walk every one of them).
PROFILES_V201: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("v201-good", "a well-behaved OCPP 2.0.1 charging station", ocpp_version="2.0.1"),
        Profile(
            "v201-no-serial-modem",
            "BootNotification without chargingStation.serialNumber and modem (no iccid)",
            fails=(1,),
            send_serial_and_iccid=False,
            ocpp_version="2.0.1",
        ),
        Profile(
            "v201-sparse-updates",
            "TransactionEvent Updated meter values at 3x TxUpdatedInterval, never closer than 7 s",
            fails=(8,),
            meter_interval_factor=3.0,
            meter_interval_floor_s=7.0,
            ocpp_version="2.0.1",
        ),
        Profile(
            "v201-rejects-set-variables",
            "answers every SetVariables item with Rejected",
            fails=(5,),
            accept_change_configuration=False,
            ocpp_version="2.0.1",
        ),
        Profile(
            "v201-drops-offline-events",
            "after an offline period delivers the transaction's Ended event but discards the "
            "Updated events it queued (a seqNo gap)",
            fails=(14,),
            deliver_queued_meter_values=False,
            ocpp_version="2.0.1",
        ),
    )
}
ALL_PROFILES: dict[str, Profile] = {**PROFILES, **PROFILES_V201}


def resolve_profile(name: str, ocpp_version: str | None = None) -> str:
    """The profile to run: ``name`` itself, or for OCPP 2.0.1 its 2.0.1 twin (``good`` ->
    ``v201-good``). Raises ValueError for a name that is no profile of that version."""
    if ocpp_version == "2.0.1" and name in PROFILES and f"v201-{name}" in PROFILES_V201:
        name = f"v201-{name}"
    profile = ALL_PROFILES.get(name)
    if profile is None:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(ALL_PROFILES)}")
    if ocpp_version is not None and profile.ocpp_version != ocpp_version:
        twins = ", ".join(n for n, p in ALL_PROFILES.items() if p.ocpp_version == ocpp_version)
        raise ValueError(
            f"profile {name!r} is for OCPP {profile.ocpp_version}; OCPP {ocpp_version} "
            f"profiles: {twins}"
        )
    return name
