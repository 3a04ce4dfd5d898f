/*+++
id = "boot-notification"
title = "Boot notification"
criterion = """Receive a (not empty) BootNotification message, containing chargePointModel and
chargePointVendor (required by OCPP 1.6), and chargePointSerialNumber, iccid, firmwareVersion
(required by the platform). A missing iccid is a note: a charger connected via LAN has no SIM."""
function = 1
severity = "error"
references = ["OCPP 1.6 section 4.2", "OCPP 1.6 section 6.3 BootNotification.req", "OCTT TC_001"]
+++*/
-- OCPP 1.6 section 6.3: chargePointVendor and chargePointModel are required; the serial number,
-- firmware version and iccid are optional in the spec but required by the acceptance script.
WITH checked AS (
    SELECT *,
           list_filter([
               CASE WHEN coalesce(trim(vendor), '') = '' THEN 'chargePointVendor' END,
               CASE WHEN coalesce(trim(model), '') = '' THEN 'chargePointModel' END,
               CASE WHEN coalesce(trim(serial_number), '') = '' THEN 'chargePointSerialNumber' END,
               CASE WHEN coalesce(trim(firmware_version), '') = '' THEN 'firmwareVersion' END
           ], lambda field: field IS NOT NULL) AS missing
    FROM boots
)
SELECT charge_point_id,
       'contents' AS "check",
       CASE WHEN len(missing) > 0 THEN 'fail' ELSE 'pass' END AS verdict,
       CASE WHEN payload IS NULL OR len(json_keys(payload)) = 0
                THEN 'empty BootNotification'
            WHEN len(missing) > 0
                THEN 'BootNotification without ' || array_to_string(missing, ', ')
            ELSE format('vendor {}, model {}, serial number {}, firmware {}',
                        vendor, model, serial_number, firmware_version)
       END AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM checked
UNION ALL
SELECT charge_point_id, 'iccid', 'note',
       'ICCID not included (a charger connected via LAN has none)',
       list({'ts': ts, 'unique_id': unique_id} ORDER BY ts)
FROM checked
WHERE coalesce(trim(iccid), '') = ''
GROUP BY charge_point_id
