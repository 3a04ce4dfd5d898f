/*+++
name = "diagnostics_status"
description = """\
DiagnosticsStatusNotification requests (OCPP 1.6 section 4.4) and diagnostics files that arrived on \
the built-in endpoints (upload events)."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the notification (or the file) arrived"
unique_id = "OCPP-J unique id (null for an upload)"
event = "status (a DiagnosticsStatusNotification) or upload (a file arrived)"
status = "Idle, Uploaded, UploadFailed or Uploading; null for an upload"
file_name = "upload: name of the file received"
size = "upload: size of the file received, bytes"
+++*/
SELECT charge_point_id, connection_id, ts, unique_id, 'status' AS event,
       json_extract_string(payload, '$.status') AS status,
       NULL::VARCHAR AS file_name, NULL::BIGINT AS size
FROM messages
WHERE message_type = 2 AND action = 'DiagnosticsStatusNotification' AND direction = 'cp_to_cs'
UNION ALL
SELECT charge_point_id, connection_id, ts, NULL, 'upload', NULL,
       json_extract_string(detail, '$.file_name'),
       TRY_CAST(json_extract_string(detail, '$.size') AS BIGINT)
FROM frames
WHERE event = 'upload'
