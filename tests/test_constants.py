"""The spec's constants: versions, subprotocols, actions and who sends them, limits."""

from __future__ import annotations

from ocpp_audit.protocol.constants import (
    _FROM_CHARGER,
    ERROR_CODES,
    MAX_UNIQUE_ID_LENGTH,
    SUBPROTOCOLS,
    Direction,
    OcppVersion,
    actions,
    send_actions,
    sent_by,
    version_of_subprotocol,
)

CP, CS = Direction.CP_TO_CS, Direction.CS_TO_CP

# OCPP 1.6 section 5, "Operations Initiated by Central System", and the security whitepaper's.
CENTRAL_SYSTEM_16 = {
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetLocalListVersion",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReserveNow",
    "Reset",
    "SendLocalList",
    "SetChargingProfile",
    "TriggerMessage",
    "UnlockConnector",
    "UpdateFirmware",
    "CertificateSigned",
    "DeleteCertificate",
    "ExtendedTriggerMessage",
    "GetInstalledCertificateIds",
    "GetLog",
    "InstallCertificate",
    "SignedUpdateFirmware",
}


def test_subprotocols_name_their_versions() -> None:
    assert SUBPROTOCOLS[OcppVersion.V16] == "ocpp1.6"
    assert version_of_subprotocol("ocpp2.0.1") is OcppVersion.V201
    assert version_of_subprotocol("ocpp2.1") is OcppVersion.V21
    assert version_of_subprotocol("ocpp1.5") is None
    assert version_of_subprotocol(None) is None


def test_every_ocpp16_action_has_its_sender() -> None:
    assert {a for a in actions(OcppVersion.V16) if sent_by(a) == {CS}} == CENTRAL_SYSTEM_16
    assert sent_by("BootNotification") == {CP}
    assert sent_by("DataTransfer") == {CP, CS}
    assert sent_by("TransactionEvent") == frozenset()  # not an OCPP 1.6 action


def test_actions_of_20_and_21_come_from_the_schemas() -> None:
    v201, v21 = actions(OcppVersion.V201), actions(OcppVersion.V21)
    assert {"TransactionEvent", "GetVariables", "BootNotification"} <= v201
    assert v201 < v21 and "StartTransaction" not in v201
    assert sent_by("TransactionEvent", OcppVersion.V201) == {CP}
    assert sent_by("RequestStartTransaction", OcppVersion.V201) == {CS}
    assert sent_by("NotifyPeriodicEventStream", OcppVersion.V201) == frozenset()


def test_the_listed_charger_actions_exist_in_their_version() -> None:
    for version, names in _FROM_CHARGER.items():
        assert names <= actions(version), version


def test_send_is_an_ocpp21_message_without_an_answer() -> None:
    assert send_actions(OcppVersion.V21) == {"NotifyPeriodicEventStream"}
    assert send_actions(OcppVersion.V201) == frozenset()
    assert send_actions(OcppVersion.V16) == frozenset()


def test_error_codes_and_limits() -> None:
    assert "FormationViolation" in ERROR_CODES[OcppVersion.V16]
    assert "OccurenceConstraintViolation" in ERROR_CODES[OcppVersion.V16]  # sic, 1.6
    assert "FormatViolation" in ERROR_CODES[OcppVersion.V201]
    assert "MessageTypeNotSupported" in ERROR_CODES[OcppVersion.V21]
    assert MAX_UNIQUE_ID_LENGTH == 36
