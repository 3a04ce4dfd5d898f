/*+++
name = "notify_reports"
description = """\
OCPP 2.0.1 and 2.1 NotifyReport requests (B07-B09): one row per part of a report, with its requestId, \
seqNo and tbc."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the part arrived"
unique_id = "OCPP-J unique id"
request_id = "requestId of the GetBaseReport / GetReport it answers"
seq_no = "seqNo of the part, from 0"
tbc = "to be continued: more parts follow (false when omitted)"
generated_at = "generatedAt (the charger's clock)"
entries = "number of reportData entries in the part"
ocpp_version = "the connection's OCPP version"
+++*/
-- OCPP 2.0.1 NotifyReportRequest: {requestId, generatedAt, seqNo, tbc (default false),
-- reportData[]}; B07.FR.xx: a report may be split over several messages.
SELECT charge_point_id, connection_id, ts, unique_id,
       TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id,
       TRY_CAST(json_extract_string(payload, '$.seqNo') AS BIGINT) AS seq_no,
       coalesce(TRY_CAST(json_extract_string(payload, '$.tbc') AS BOOLEAN), false) AS tbc,
       TRY_CAST(json_extract_string(payload, '$.generatedAt') AS TIMESTAMPTZ) AS generated_at,
       coalesce(json_array_length(payload, '$.reportData'), 0) AS entries,
       ocpp_version
FROM messages
WHERE message_type = 2 AND action = 'NotifyReport' AND direction = 'cp_to_cs'
  AND ocpp_version IN ('2.0.1', '2.1')
