/*+++
name = "status_notifications"
description = """\
StatusNotification requests (OCPP 1.6 section 4.9; OCPP 2.0.1 G01, by EVSE and connector), with the \
connector's previous status."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the StatusNotification arrived"
unique_id = "OCPP-J unique id"
connector_id = "connectorId; 0 is the charge point as a whole (1.6); in 2.0.1 numbered within its EVSE"
status = "1.6 ChargePointStatus: Available, Preparing, Charging, ...; 2.0.1 connectorStatus: Available, Occupied, Reserved, Unavailable, Faulted"
error_code = "ChargePointErrorCode (NoError when there is none); null in 2.0.1 (errors come in NotifyEvent)"
info = "free text about the error (1.6)"
vendor_id = "vendorId of a vendor-specific error (1.6)"
vendor_error_code = "vendor-specific error code (1.6)"
timestamp = "the payload's timestamp (the charger's clock)"
previous_status = "the status this connector reported before (null for the first)"
previous_ts = "when that previous status arrived"
injected = "sent in answer to a TriggerMessage(StatusNotification) that ocpp-audit injected: the first one for each connector within 30 s after the accepted trigger (for the connector it named, if any)"
evse_id = "2.0.1 and 2.1: evseId; null in 1.6"
ocpp_version = "the connection's OCPP version (null when none was negotiated)"
+++*/
-- OCPP 2.0.1 StatusNotificationRequest: {timestamp, connectorStatus, evseId, connectorId}, no
-- error fields.
WITH notifications AS (
    SELECT charge_point_id, connection_id, ts, seq, unique_id,
           TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id,
           json_extract_string(payload, CASE WHEN v2 THEN '$.connectorStatus' ELSE '$.status' END)
               AS status,
           CASE WHEN NOT v2 THEN json_extract_string(payload, '$.errorCode') END AS error_code,
           CASE WHEN NOT v2 THEN json_extract_string(payload, '$.info') END AS info,
           CASE WHEN NOT v2 THEN json_extract_string(payload, '$.vendorId') END AS vendor_id,
           CASE WHEN NOT v2 THEN json_extract_string(payload, '$.vendorErrorCode') END
               AS vendor_error_code,
           TRY_CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMPTZ) AS timestamp,
           CASE WHEN v2 THEN TRY_CAST(json_extract_string(payload, '$.evseId') AS INTEGER) END
               AS evse_id,
           ocpp_version
    FROM (SELECT *, coalesce(ocpp_version IN ('2.0.1', '2.1'), false) AS v2 FROM messages)
    WHERE message_type = 2 AND action = 'StatusNotification' AND direction = 'cp_to_cs'
),
-- A charger's StatusNotification is its own CALL, never injected; it answers an injected
-- TriggerMessage when it is the first one (per connector) after the accepted trigger.
injected_triggers AS (
    SELECT connection_id, call_ts,
           TRY_CAST(coalesce(json_extract_string(payload, '$.connectorId'),
                             json_extract_string(payload, '$.evse.connectorId')) AS INTEGER)
               AS connector_id,
           TRY_CAST(json_extract_string(payload, '$.evse.id') AS INTEGER) AS evse_id
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
     AND (t.evse_id IS NULL OR n.evse_id = t.evse_id)
    GROUP BY n.connection_id, t.call_ts, n.evse_id, n.connector_id
)
SELECT charge_point_id, connection_id, ts, unique_id, connector_id, status, error_code, info,
       vendor_id, vendor_error_code, timestamp,
       lag(status) OVER w AS previous_status,
       lag(ts) OVER w AS previous_ts,
       EXISTS (SELECT 1 FROM triggered g
               WHERE g.connection_id = notifications.connection_id
                 AND g.seq = notifications.seq) AS injected,
       evse_id, ocpp_version
FROM notifications
WINDOW w AS (PARTITION BY charge_point_id, evse_id, connector_id ORDER BY ts, seq)
