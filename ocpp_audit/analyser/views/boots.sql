/*+++
name = "boots"
description = """\
BootNotification requests (OCPP 1.6 section 4.2; OCPP 2.0.1 B01, fields under chargingStation) with \
the backend's answer."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the BootNotification arrived"
unique_id = "OCPP-J unique id"
vendor = "chargePointVendor (2.0.1: chargingStation.vendorName)"
model = "chargePointModel (2.0.1: chargingStation.model)"
serial_number = "chargePointSerialNumber (2.0.1: chargingStation.serialNumber)"
charge_box_serial_number = "chargeBoxSerialNumber (deprecated in 1.6; none in 2.0.1)"
firmware_version = "firmwareVersion (2.0.1: chargingStation.firmwareVersion)"
iccid = "iccid of the modem's SIM card (2.0.1: chargingStation.modem.iccid)"
imsi = "imsi of the modem's SIM card (2.0.1: chargingStation.modem.imsi)"
meter_type = "meterType (1.6 only)"
meter_serial_number = "meterSerialNumber (1.6 only)"
payload = "the request payload as JSON text"
answered = "the backend answered"
status = "registration status: Accepted, Pending or Rejected"
interval_s = "heartbeat interval the backend set, in seconds"
current_time = "the backend's currentTime"
reason = "2.0.1 and 2.1: why it booted (PowerUp, RemoteReset, FirmwareUpdate, ...); null in 1.6"
ocpp_version = "the connection's OCPP version (null when none was negotiated)"
+++*/
-- OCPP 2.0.1 BootNotificationRequest: {chargingStation{model, vendorName, serialNumber?,
-- firmwareVersion?, modem{iccid?, imsi?}}, reason}; a connection without a version is read as 1.6.
SELECT charge_point_id, connection_id, call_ts AS ts, unique_id,
       json_extract_string(payload, CASE WHEN v2 THEN '$.chargingStation.vendorName'
                                         ELSE '$.chargePointVendor' END) AS vendor,
       json_extract_string(payload, CASE WHEN v2 THEN '$.chargingStation.model'
                                         ELSE '$.chargePointModel' END) AS model,
       json_extract_string(payload, CASE WHEN v2 THEN '$.chargingStation.serialNumber'
                                         ELSE '$.chargePointSerialNumber' END) AS serial_number,
       CASE WHEN NOT v2 THEN json_extract_string(payload, '$.chargeBoxSerialNumber') END
           AS charge_box_serial_number,
       json_extract_string(payload, CASE WHEN v2 THEN '$.chargingStation.firmwareVersion'
                                         ELSE '$.firmwareVersion' END) AS firmware_version,
       json_extract_string(payload, CASE WHEN v2 THEN '$.chargingStation.modem.iccid'
                                         ELSE '$.iccid' END) AS iccid,
       json_extract_string(payload, CASE WHEN v2 THEN '$.chargingStation.modem.imsi'
                                         ELSE '$.imsi' END) AS imsi,
       CASE WHEN NOT v2 THEN json_extract_string(payload, '$.meterType') END AS meter_type,
       CASE WHEN NOT v2 THEN json_extract_string(payload, '$.meterSerialNumber') END
           AS meter_serial_number,
       payload, answered, status,
       TRY_CAST(json_extract_string(answer_payload, '$.interval') AS INTEGER) AS interval_s,
       TRY_CAST(json_extract_string(answer_payload, '$.currentTime') AS TIMESTAMPTZ)
           AS current_time,
       CASE WHEN v2 THEN json_extract_string(payload, '$.reason') END AS reason,
       ocpp_version
FROM (SELECT *, coalesce(ocpp_version IN ('2.0.1', '2.1'), false) AS v2 FROM calls)
WHERE action = 'BootNotification' AND direction = 'cp_to_cs' AND NOT orphan_answer
