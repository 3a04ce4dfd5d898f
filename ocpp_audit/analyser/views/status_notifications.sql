/*+++
name = "status_notifications"
description = """\
StatusNotification requests (OCPP 1.6 section 4.9), with the connector's previous status."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the StatusNotification arrived"
unique_id = "OCPP-J unique id"
connector_id = "connectorId; 0 is the charge point as a whole"
status = "ChargePointStatus: Available, Preparing, Charging, ..."
error_code = "ChargePointErrorCode (NoError when there is none)"
info = "free text about the error"
vendor_id = "vendorId of a vendor-specific error"
vendor_error_code = "vendor-specific error code"
timestamp = "the payload's timestamp (the charger's clock)"
previous_status = "the status this connector reported before (null for the first)"
previous_ts = "when that previous status arrived"
injected = "sent in answer to an injected TriggerMessage"
+++*/
WITH notifications AS (
    SELECT charge_point_id, connection_id, ts, seq, unique_id,
           TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id,
           json_extract_string(payload, '$.status') AS status,
           json_extract_string(payload, '$.errorCode') AS error_code,
           json_extract_string(payload, '$.info') AS info,
           json_extract_string(payload, '$.vendorId') AS vendor_id,
           json_extract_string(payload, '$.vendorErrorCode') AS vendor_error_code,
           TRY_CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMPTZ) AS timestamp,
           injected
    FROM messages
    WHERE message_type = 2 AND action = 'StatusNotification' AND direction = 'cp_to_cs'
)
SELECT charge_point_id, connection_id, ts, unique_id, connector_id, status, error_code, info,
       vendor_id, vendor_error_code, timestamp,
       lag(status) OVER w AS previous_status,
       lag(ts) OVER w AS previous_ts,
       injected
FROM notifications
WINDOW w AS (PARTITION BY charge_point_id, connector_id ORDER BY ts, seq)
