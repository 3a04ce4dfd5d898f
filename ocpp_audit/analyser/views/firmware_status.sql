/*+++
name = "firmware_status"
description = """\
FirmwareStatusNotification requests (OCPP 1.6 section 4.5; OCPP 2.0.1 L01, with the requestId of the \
UpdateFirmware they report on)."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the notification arrived"
unique_id = "OCPP-J unique id"
status = "Downloaded, DownloadFailed, Downloading, Idle, InstallationFailed, Installing, Installed (2.0.1 adds SignatureVerified, InstallRebooting, DownloadScheduled, ...)"
request_id = "2.0.1 and 2.1: requestId of the UpdateFirmware; null in 1.6"
ocpp_version = "the connection's OCPP version (null when none was negotiated)"
+++*/
SELECT charge_point_id, connection_id, ts, unique_id,
       json_extract_string(payload, '$.status') AS status,
       TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id,
       ocpp_version
FROM messages
WHERE message_type = 2 AND action = 'FirmwareStatusNotification' AND direction = 'cp_to_cs'
