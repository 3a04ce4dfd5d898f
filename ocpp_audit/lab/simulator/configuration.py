"""The charger's configuration store, as GetConfiguration and ChangeConfiguration see it.

Keys and their access come from OCPP 1.6 section 9 ("Standard Configuration Keys"): Core (9.1),
Local Auth List Management (9.2), Reservation (9.3). Values are strings on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ConfigKey", "ConfigurationStore"]

Kind = Literal["int", "bool", "csl", "str"]


@dataclass
class ConfigKey:
    key: str
    value: str
    readonly: bool
    kind: Kind


def _standard_keys(
    connectors: int,
    heartbeat_interval: int,
    meter_value_sample_interval: int,
    connection_timeout: int,
) -> list[ConfigKey]:
    measurands = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
    rw, ro = False, True
    return [
        # 9.1 Core profile
        ConfigKey("AllowOfflineTxForUnknownId", "true", rw, "bool"),
        ConfigKey("AuthorizationCacheEnabled", "true", rw, "bool"),
        ConfigKey("AuthorizeRemoteTxRequests", "false", rw, "bool"),
        ConfigKey("BlinkRepeat", "3", rw, "int"),
        ConfigKey("ClockAlignedDataInterval", "0", rw, "int"),
        ConfigKey("ConnectionTimeOut", str(connection_timeout), rw, "int"),
        ConfigKey(
            "ConnectorPhaseRotation",
            "0.RST," + ",".join(f"{c}.RST" for c in range(1, connectors + 1)),
            rw,
            "csl",
        ),
        ConfigKey("ConnectorPhaseRotationMaxLength", str(connectors + 1), ro, "int"),
        ConfigKey("GetConfigurationMaxKeys", "50", ro, "int"),
        ConfigKey("HeartbeatInterval", str(heartbeat_interval), rw, "int"),
        ConfigKey("LightIntensity", "80", rw, "int"),
        ConfigKey("LocalAuthorizeOffline", "true", rw, "bool"),
        ConfigKey("LocalPreAuthorize", "false", rw, "bool"),
        ConfigKey("MaxEnergyOnInvalidId", "0", rw, "int"),
        ConfigKey("MeterValuesAlignedData", "Energy.Active.Import.Register", rw, "csl"),
        ConfigKey("MeterValuesAlignedDataMaxLength", "8", ro, "int"),
        ConfigKey("MeterValuesSampledData", measurands, rw, "csl"),
        ConfigKey("MeterValuesSampledDataMaxLength", "8", ro, "int"),
        ConfigKey("MeterValueSampleInterval", str(meter_value_sample_interval), rw, "int"),
        ConfigKey("MinimumStatusDuration", "0", rw, "int"),
        ConfigKey("NumberOfConnectors", str(connectors), ro, "int"),
        ConfigKey("ResetRetries", "3", rw, "int"),
        ConfigKey("StopTransactionOnEVSideDisconnect", "true", rw, "bool"),
        ConfigKey("StopTransactionOnInvalidId", "true", rw, "bool"),
        ConfigKey("StopTxnAlignedData", "", rw, "csl"),
        ConfigKey("StopTxnAlignedDataMaxLength", "8", ro, "int"),
        ConfigKey("StopTxnSampledData", measurands, rw, "csl"),
        ConfigKey("StopTxnSampledDataMaxLength", "8", ro, "int"),
        ConfigKey(
            "SupportedFeatureProfiles",
            "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger",
            ro,
            "csl",
        ),
        ConfigKey("SupportedFeatureProfilesMaxLength", "6", ro, "int"),
        ConfigKey("TransactionMessageAttempts", "3", rw, "int"),
        ConfigKey("TransactionMessageRetryInterval", "10", rw, "int"),
        ConfigKey("UnlockConnectorOnEVSideDisconnect", "true", rw, "bool"),
        ConfigKey("WebSocketPingInterval", "0", rw, "int"),
        # 9.2 Local Auth List Management profile
        ConfigKey("LocalAuthListEnabled", "true", rw, "bool"),
        ConfigKey("LocalAuthListMaxLength", "1000", ro, "int"),
        ConfigKey("SendLocalListMaxLength", "100", ro, "int"),
        # 9.3 Reservation profile
        ConfigKey("ReserveConnectorZeroSupported", "false", ro, "bool"),
        # 9.4 Firmware management (OCPP 1.6 errata: SupportedFileTransferProtocols)
        ConfigKey("SupportedFileTransferProtocols", "FTP,HTTP,HTTPS", ro, "csl"),
        # vendor-specific keys, as real chargers have
        ConfigKey("SimMaxCurrentA", "16", rw, "int"),
        ConfigKey("SimBackendUrl", "", ro, "str"),
    ]


class ConfigurationStore:
    """OCPP 1.6 configuration keys with their values, access and type."""

    def __init__(
        self,
        *,
        connectors: int,
        heartbeat_interval: int,
        meter_value_sample_interval: int,
        connection_timeout: int,
    ) -> None:
        self._keys = {
            item.key: item
            for item in _standard_keys(
                connectors, heartbeat_interval, meter_value_sample_interval, connection_timeout
            )
        }

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: str) -> str:
        return self._keys[key].value

    def get_int(self, key: str) -> int:
        return int(self._keys[key].value)

    def get_bool(self, key: str) -> bool:
        return self._keys[key].value.lower() == "true"

    def set(self, key: str, value: str) -> None:
        """Set a value from the charger itself (e.g. the interval of a BootNotification answer)."""
        self._keys[key].value = value

    def report(self, keys: list[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration.conf: (configurationKey entries, unknownKey list).

        OCPP 1.6 section 5.8: "If the list of keys in the request PDU is empty or missing ...
        the Charge Point SHALL return a list of all configuration settings ... Unknown keys SHALL
        be put in the unknownKey list".
        """
        wanted = keys if keys else list(self._keys)
        known = [
            {"key": k, "readonly": self._keys[k].readonly, "value": self._keys[k].value}
            for k in wanted
            if k in self._keys
        ]
        unknown = [k for k in wanted if k not in self._keys]
        return known, unknown

    def change(self, key: str, value: str) -> str:
        """ChangeConfiguration: 'Accepted', 'Rejected' or 'NotSupported' (OCPP 1.6 section 5.3)."""
        item = self._keys.get(key)
        if item is None:
            return "NotSupported"
        if item.readonly:
            return "Rejected"
        if item.kind == "int":
            try:
                if int(value) < 0:
                    return "Rejected"
            except ValueError:
                return "Rejected"
            value = str(int(value))
        elif item.kind == "bool":
            if value.lower() not in ("true", "false"):
                return "Rejected"
            value = value.lower()
        item.value = value
        return "Accepted"
