/*+++
name = "log_status"
description = """\
LogStatusNotification requests (OCPP 2.0.1 N01, and the OCPP 1.6 security whitepaper), with the \
GetLog they answer by requestId."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the notification arrived"
unique_id = "OCPP-J unique id"
status = "Uploading, Uploaded, UploadFailure, BadMessage, NotSupportedOperation, PermissionDenied, Idle, AcceptedCanceled"
request_id = "requestId of the GetLog it reports on"
ocpp_version = "the connection's OCPP version (null when none was negotiated)"
+++*/
SELECT charge_point_id, connection_id, ts, unique_id,
       json_extract_string(payload, '$.status') AS status,
       TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id,
       ocpp_version
FROM messages
WHERE message_type = 2 AND action = 'LogStatusNotification' AND direction = 'cp_to_cs'
