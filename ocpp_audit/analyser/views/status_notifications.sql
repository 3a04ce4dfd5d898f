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
injected = "sent in answer to a TriggerMessage(StatusNotification) that ocpp-audit injected: the first one for each connector within 30 s after the accepted trigger (for the connector it named, if any)"
+++*/
WITH notifications AS (
    SELECT charge_point_id, connection_id, ts, seq, unique_id,
           TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id,
           json_extract_string(payload, '$.status') AS status,
           json_extract_string(payload, '$.errorCode') AS error_code,
           json_extract_string(payload, '$.info') AS info,
           json_extract_string(payload, '$.vendorId') AS vendor_id,
           json_extract_string(payload, '$.vendorErrorCode') AS vendor_error_code,
           TRY_CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMPTZ) AS timestamp
    FROM messages
    WHERE message_type = 2 AND action = 'StatusNotification' AND direction = 'cp_to_cs'
),
-- A charger's StatusNotification is its own CALL, never injected; it answers an injected
-- TriggerMessage when it is the first one (per connector) after the accepted trigger.
injected_triggers AS (
    SELECT connection_id, call_ts,
           TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id
    FROM calls
    WHERE action = 'TriggerMessage' AND direction = 'cs_to_cp' AND injected
      AND status = 'Accepted'
      AND json_extract_string(payload, '$.requestedMessage') = 'StatusNotification'
),
triggered AS (
    SELECT n.connection_id, min(n.seq) AS seq
    FROM injected_triggers t
    JOIN notifications n
      ON n.connection_id = t.connection_id AND n.ts >= t.call_ts
     AND (epoch_us(n.ts) - epoch_us(t.call_ts)) / 1e6 <= 30
     AND (t.connector_id IS NULL OR n.connector_id = t.connector_id)
    GROUP BY n.connection_id, t.call_ts, n.connector_id
)
SELECT charge_point_id, connection_id, ts, unique_id, connector_id, status, error_code, info,
       vendor_id, vendor_error_code, timestamp,
       lag(status) OVER w AS previous_status,
       lag(ts) OVER w AS previous_ts,
       EXISTS (SELECT 1 FROM triggered g
               WHERE g.connection_id = notifications.connection_id
                 AND g.seq = notifications.seq) AS injected
FROM notifications
WINDOW w AS (PARTITION BY charge_point_id, connector_id ORDER BY ts, seq)
