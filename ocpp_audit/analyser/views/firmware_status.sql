/*+++
name = "firmware_status"
description = "FirmwareStatusNotification requests (OCPP 1.6 section 4.5)."
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the notification arrived"
unique_id = "OCPP-J unique id"
status = "Downloaded, DownloadFailed, Downloading, Idle, InstallationFailed, Installing, Installed"
+++*/
SELECT charge_point_id, connection_id, ts, unique_id,
       json_extract_string(payload, '$.status') AS status
FROM messages
WHERE message_type = 2 AND action = 'FirmwareStatusNotification' AND direction = 'cp_to_cs'
