/*+++
name = "configuration"
description = """\
Configuration keys: each key of a GetConfiguration answer, and each ChangeConfiguration request with \
the charger's status (OCPP 1.6 sections 5.8, 5.3)."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the request was sent"
unique_id = "OCPP-J unique id of the request"
source = "GetConfiguration (a key reported) or ChangeConfiguration (a key set)"
key = "configuration key"
value = "value reported or requested"
readonly = "GetConfiguration: the key is read-only"
status = "ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported"
error_code = "CALLERROR errorCode when the charger answered with one"
answered = "the charger answered"
injected = "the request was sent by ocpp-audit"
+++*/
WITH reported AS (
    SELECT charge_point_id, connection_id, call_ts, unique_id, injected, answered,
           unnest(json_extract(answer_payload, '$.configurationKey[*]')) AS entry
    FROM calls
    WHERE action = 'GetConfiguration' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND answer_type = 'CALLRESULT'
)
SELECT charge_point_id, connection_id, call_ts AS ts, unique_id,
       'GetConfiguration' AS source,
       json_extract_string(entry, '$.key') AS key,
       json_extract_string(entry, '$.value') AS value,
       TRY_CAST(json_extract_string(entry, '$.readonly') AS BOOLEAN) AS readonly,
       NULL AS status, NULL AS error_code, answered, injected
FROM reported
UNION ALL
SELECT charge_point_id, connection_id, call_ts, unique_id, 'ChangeConfiguration',
       json_extract_string(payload, '$.key'), json_extract_string(payload, '$.value'),
       NULL, status, error_code, answered, injected
FROM calls
WHERE action = 'ChangeConfiguration' AND direction = 'cs_to_cp' AND NOT orphan_answer
