"""Behaviour profiles: a well-behaved charger, and ones with a single fault seen on real chargers.

Each faulty profile changes exactly one behaviour, so that the analyser's tests can check that it
fails exactly the acceptance functions its fault touches (``fails``) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Profile"]


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
