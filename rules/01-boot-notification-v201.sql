/*+++
id = "boot-notification-v201"
title = "Boot notification"
criterion = """Receive a (not empty) BootNotification whose chargingStation holds model and
vendorName (required by OCPP 2.0.1) and serialNumber and firmwareVersion (required by the platform),
with the reason it booted. A missing modem.iccid is a note: a charger connected via LAN has no SIM."""
function = 1
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 B01 Cold Boot Charging Station", "OCPP 2.0.1 BootNotificationRequest", "OCTT TC_B_01"]
+++*/
-- OCPP 2.0.1 BootNotificationRequest: chargingStation.model and .vendorName and reason are
-- required; serialNumber, firmwareVersion and modem{iccid, imsi} are optional in the spec but the
-- acceptance script asks for the serial number and firmware version.
WITH checked AS (
    SELECT *,
           list_filter([
               CASE WHEN coalesce(trim(vendor), '') = '' THEN 'chargingStation.vendorName' END,
               CASE WHEN coalesce(trim(model), '') = '' THEN 'chargingStation.model' END,
               CASE WHEN coalesce(trim(serial_number), '') = ''
                    THEN 'chargingStation.serialNumber' END,
               CASE WHEN coalesce(trim(firmware_version), '') = ''
                    THEN 'chargingStation.firmwareVersion' END,
               CASE WHEN coalesce(trim(reason), '') = '' THEN 'reason' END
           ], lambda field: field IS NOT NULL) AS missing
    FROM boots
    WHERE ocpp_version IN ('2.0.1', '2.1')
)
SELECT charge_point_id,
       'contents' AS "check",
       CASE WHEN len(missing) > 0 THEN 'fail' ELSE 'pass' END AS verdict,
       CASE WHEN payload IS NULL OR len(json_keys(payload)) = 0
                THEN 'empty BootNotification'
            WHEN len(missing) > 0
                THEN 'BootNotification without ' || array_to_string(missing, ', ')
            ELSE format('vendor {}, model {}, serial number {}, firmware {}, reason {}',
                        vendor, model, serial_number, firmware_version, reason)
       END AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM checked
UNION ALL
SELECT charge_point_id, 'iccid', 'note',
       'ICCID not included (chargingStation.modem.iccid; a charger connected via LAN has none)',
       list({'ts': ts, 'unique_id': unique_id} ORDER BY ts)
FROM checked
WHERE coalesce(trim(iccid), '') = ''
GROUP BY charge_point_id
