/*+++
name = "boots"
description = "BootNotification requests (OCPP 1.6 section 4.2) with the backend's answer."
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the BootNotification arrived"
unique_id = "OCPP-J unique id"
vendor = "chargePointVendor"
model = "chargePointModel"
serial_number = "chargePointSerialNumber"
charge_box_serial_number = "chargeBoxSerialNumber (deprecated in 1.6)"
firmware_version = "firmwareVersion"
iccid = "iccid of the modem's SIM card"
imsi = "imsi of the modem's SIM card"
meter_type = "meterType"
meter_serial_number = "meterSerialNumber"
payload = "the request payload as JSON text"
answered = "the backend answered"
status = "registration status: Accepted, Pending or Rejected"
interval_s = "heartbeat interval the backend set, in seconds"
current_time = "the backend's currentTime"
+++*/
SELECT charge_point_id, connection_id, call_ts AS ts, unique_id,
       json_extract_string(payload, '$.chargePointVendor') AS vendor,
       json_extract_string(payload, '$.chargePointModel') AS model,
       json_extract_string(payload, '$.chargePointSerialNumber') AS serial_number,
       json_extract_string(payload, '$.chargeBoxSerialNumber') AS charge_box_serial_number,
       json_extract_string(payload, '$.firmwareVersion') AS firmware_version,
       json_extract_string(payload, '$.iccid') AS iccid,
       json_extract_string(payload, '$.imsi') AS imsi,
       json_extract_string(payload, '$.meterType') AS meter_type,
       json_extract_string(payload, '$.meterSerialNumber') AS meter_serial_number,
       payload, answered, status,
       TRY_CAST(json_extract_string(answer_payload, '$.interval') AS INTEGER) AS interval_s,
       TRY_CAST(json_extract_string(answer_payload, '$.currentTime') AS TIMESTAMPTZ)
           AS current_time
FROM calls
WHERE action = 'BootNotification' AND direction = 'cp_to_cs' AND NOT orphan_answer
