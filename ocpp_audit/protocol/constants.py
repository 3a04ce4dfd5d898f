"""The spec's constants in one place: versions and subprotocols, actions and who sends them, error
codes, limits. Nothing here does I/O; the rest of ``ocpp_audit`` reads these instead of copies.

Sources: OCPP-J 1.6 (sections 3.1.2, 4.1.4, 4.2.3) and OCPP 1.6 section 6 for 1.6; the names of the
JSON schemas the ``ocpp`` package ships (``ocpp/v201/schemas``, ``ocpp/v21/schemas``) for the
actions of 2.0.1 and 2.1, and OCPP 2.0.1 / 2.1 part 4 (OCPP-J) for their error codes.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources

__all__ = [
    "ERROR_CODES",
    "MAX_UNIQUE_ID_LENGTH",
    "SUBPROTOCOLS",
    "Direction",
    "OcppVersion",
    "actions",
    "send_actions",
    "sent_by",
    "version_of_subprotocol",
]


class Direction(StrEnum):
    """Which way a message travels on a charger's connection."""

    CP_TO_CS = "cp_to_cs"  # charge point to central system (the backend, CSMS in 2.x)
    CS_TO_CP = "cs_to_cp"

    @property
    def opposite(self) -> Direction:
        return Direction.CS_TO_CP if self is Direction.CP_TO_CS else Direction.CP_TO_CS


class OcppVersion(StrEnum):
    V16 = "1.6"
    V201 = "2.0.1"
    V21 = "2.1"


# OCPP-J 1.6 section 3.1.2: "the OCPP version(s) MUST be specified in the Sec-WebSocket-Protocol
# field ... ocpp1.6"; OCPP 2.0.1 / 2.1 part 4 section 3.1.2 likewise ("ocpp2.0.1", "ocpp2.1").
SUBPROTOCOLS: dict[OcppVersion, str] = {
    OcppVersion.V16: "ocpp1.6",
    OcppVersion.V201: "ocpp2.0.1",
    OcppVersion.V21: "ocpp2.1",
}


def version_of_subprotocol(subprotocol: str | None) -> OcppVersion | None:
    """The OCPP version a negotiated subprotocol names; None for none or one we do not know."""
    for version, name in SUBPROTOCOLS.items():
        if subprotocol == name:
            return version
    return None


# OCPP-J 1.6 section 4.1.4: "Maximum of 36 characters, to allow for GUIDs"; the same in 2.x.
MAX_UNIQUE_ID_LENGTH = 36

# OCPP-J 1.6 section 4.2.3, table "Valid Error Codes" (with the spec's own spellings).
_ERROR_CODES_16 = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",  # sic
        "TypeConstraintViolation",
        "GenericError",
    }
)
# OCPP 2.0.1 part 4 section 4.3 "RPC Framework Error Codes"; 2.1 keeps the same list.
_ERROR_CODES_2 = frozenset(
    {
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)
ERROR_CODES: dict[OcppVersion, frozenset[str]] = {
    OcppVersion.V16: _ERROR_CODES_16,
    OcppVersion.V201: _ERROR_CODES_2,
    OcppVersion.V21: _ERROR_CODES_2,
}

# Who sends each action's CALL. The schemas name the actions but not their sender, so the actions a
# charger sends are listed here (OCPP 1.6 section 6 "Messages"; OCPP 2.0.1 / 2.1 part 2, each
# use case's sequence); every other action of the version is sent by the central system, and
# DataTransfer by either (1.6 sections 4.3 and 5.5, 2.x P01/P02).
_BOTH = frozenset({"DataTransfer"})
_FROM_CHARGER: dict[OcppVersion, frozenset[str]] = {
    OcppVersion.V16: frozenset(
        {
            "Authorize",
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StartTransaction",
            "StatusNotification",
            "StopTransaction",
            # The security whitepaper's additions (schemas shipped with ocpp/v16).
            "LogStatusNotification",
            "SecurityEventNotification",
            "SignCertificate",
            "SignedFirmwareStatusNotification",
        }
    ),
    OcppVersion.V201: frozenset(
        {
            "Authorize",
            "BootNotification",
            "ClearedChargingLimit",
            "FirmwareStatusNotification",
            "Get15118EVCertificate",
            "GetCertificateStatus",
            "Heartbeat",
            "LogStatusNotification",
            "MeterValues",
            "NotifyChargingLimit",
            "NotifyCustomerInformation",
            "NotifyDisplayMessages",
            "NotifyEVChargingNeeds",
            "NotifyEVChargingSchedule",
            "NotifyEvent",
            "NotifyMonitoringReport",
            "NotifyReport",
            "PublishFirmwareStatusNotification",
            "ReportChargingProfiles",
            "ReservationStatusUpdate",
            "SecurityEventNotification",
            "SignCertificate",
            "StatusNotification",
            "TransactionEvent",
        }
    ),
}
_FROM_CHARGER[OcppVersion.V21] = _FROM_CHARGER[OcppVersion.V201] | {
    "BatterySwap",
    "ClosePeriodicEventStream",
    "GetCertificateChainStatus",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPeriodicEventStream",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "OpenPeriodicEventStream",
    "PullDynamicScheduleUpdate",
    "ReportDERControl",
    "VatNumberValidation",
}

_SCHEMA_PACKAGES = {
    OcppVersion.V16: "ocpp.v16.schemas",
    OcppVersion.V201: "ocpp.v201.schemas",
    OcppVersion.V21: "ocpp.v21.schemas",
}


@cache
def _schema_names(version: OcppVersion) -> frozenset[str]:
    return frozenset(
        resource.name.removesuffix(".json")
        for resource in resources.files(_SCHEMA_PACKAGES[version]).iterdir()
        if resource.name.endswith(".json")
    )


@cache
def actions(version: OcppVersion = OcppVersion.V16) -> frozenset[str]:
    """Every action of ``version``, as named by its JSON schemas.

    1.6 names a CALL's schema ``<Action>.json`` and its answer's ``<Action>Response.json``; 2.x
    names them ``<Action>Request.json`` and ``<Action>Response.json``, and an action sent only as a
    SEND (2.1, expects no answer) has just ``<Action>.json``.
    """
    names = _schema_names(version)
    if version is OcppVersion.V16:
        return frozenset(name for name in names if not name.endswith("Response"))
    found = set()
    for name in names:
        if name.endswith("Request"):
            found.add(name.removesuffix("Request"))
        elif not name.endswith("Response"):
            found.add(name)
    return frozenset(found)


@cache
def send_actions(version: OcppVersion = OcppVersion.V21) -> frozenset[str]:
    """The actions of ``version`` carried by a SEND (a schema with neither Request nor Response:
    OCPP 2.1 part 4 section 4.2.4, "a SEND ... does not expect a response")."""
    if version is OcppVersion.V16:
        return frozenset()
    return frozenset(
        name for name in _schema_names(version) if not name.endswith(("Request", "Response"))
    )


def sent_by(action: str, version: OcppVersion = OcppVersion.V16) -> frozenset[Direction]:
    """The directions a CALL of ``action`` may travel in ``version``; empty if it is not an action
    of that version."""
    if action not in actions(version):
        return frozenset()
    if action in _BOTH:
        return frozenset(Direction)
    if action in _FROM_CHARGER[version]:
        return frozenset({Direction.CP_TO_CS})
    return frozenset({Direction.CS_TO_CP})
