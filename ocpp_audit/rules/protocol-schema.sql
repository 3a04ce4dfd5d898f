/*+++
id = "protocol-schema"
title = "Payloads valid against the OCPP 1.6 JSON schemas"
criterion = """Every CALL payload is valid against its action's OCPP 1.6 JSON schema, and every
CALLRESULT against the Response schema of the CALL it answers."""
severity = "error"   # an invalid payload breaks interoperability with any conforming backend
references = ["OCPP-J 1.6 section 4.1.3", "OCPP 1.6 JSON schemas (ocpp/v16/schemas)"]
+++*/
-- ocpp_schema_error() is registered on the connection by the analyser
-- (ocpp_audit/analyser/schema_validation.py); it returns NULL for a valid payload.
WITH checked AS (
    SELECT charge_point_id, ts, unique_id, direction, action, message_type,
           ocpp_schema_error(action, message_type, payload) AS problem
    FROM messages
    WHERE message_type IN (2, 3) AND parse_error IS NULL AND action IS NOT NULL
)
SELECT charge_point_id,
       CASE direction WHEN 'cp_to_cs' THEN 'charger payloads' ELSE 'backend payloads' END
           AS "check",
       'fail' AS verdict,
       format('{} {}: {}', CASE message_type WHEN 2 THEN 'CALL' ELSE 'CALLRESULT' END, action,
              problem) AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM checked
WHERE problem IS NOT NULL
UNION ALL
SELECT charge_point_id, 'charger payloads', 'pass',
       format('{} payloads valid', count(*)), NULL
FROM checked
WHERE direction = 'cp_to_cs'
GROUP BY charge_point_id
