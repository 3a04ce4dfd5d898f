/*+++
id = "protocol-schema"
title = "Payloads valid against the OCPP JSON schemas"
criterion = """Every CALL payload is valid against its action's JSON schema of the connection's OCPP
version (1.6, 2.0.1 or 2.1), every CALLRESULT against the Response schema of the CALL it answers,
and every OCPP 2.1 SEND against its message's schema."""
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "error"   # an invalid payload breaks interoperability with any conforming backend
references = ["OCPP-J 1.6 section 4.1.3", "OCPP 1.6 JSON schemas (ocpp/v16/schemas)", "OCPP 2.0.1 JSON schemas (ocpp/v201/schemas)", "OCPP 2.1 JSON schemas (ocpp/v21/schemas)"]
+++*/
-- Most payloads were judged as their part was sealed (the capture's schema_error: '' valid,
-- else the reason; protocol/schema_validation.py); the rule reads those verdicts. A payload
-- without one (a part sealed before schema 1.4 or by another checker, an open journal) is judged
-- here with the same functions: ocpp_schema_error() (NULL for a valid payload) and
-- ocpp_schema_key(), registered on the connection by the analyser. Payloads with the same shape key
-- share a verdict, so one payload per key is validated in Python and only the rows of failing keys
-- are validated one by one (each with its own reason). Only the (action, message type) pairs that
-- have a failing key are keyed a second time, to find those rows.
WITH candidates AS NOT MATERIALIZED (
    SELECT charge_point_id, ts, unique_id, direction, action, message_type, payload, ocpp_version,
           schema_error
    FROM messages
    WHERE message_type IN (2, 3, 6) AND parse_error IS NULL AND action IS NOT NULL
      AND payload IS NOT NULL  -- (a null payload has no key: the rule never judged it)
),
unjudged AS NOT MATERIALIZED (
    SELECT * FROM candidates WHERE schema_error IS NULL
),
failing_shapes AS (
    SELECT action, message_type,
           ocpp_schema_key(action, message_type, payload, ocpp_version) AS shape
    FROM unjudged
    GROUP BY action, message_type, shape
    HAVING ocpp_schema_error(action, message_type, any_value(payload), any_value(ocpp_version))
           IS NOT NULL
),
failing_kinds AS (
    SELECT DISTINCT action, message_type FROM failing_shapes
),
failing AS (
    SELECT charge_point_id, ts, unique_id, direction, action, message_type,
           ocpp_schema_error(action, message_type, payload, ocpp_version) AS problem
    FROM (
        SELECT c.*, ocpp_schema_key(c.action, c.message_type, c.payload, c.ocpp_version) AS shape
        FROM unjudged c SEMI JOIN failing_kinds USING (action, message_type)
    ) SEMI JOIN failing_shapes USING (action, message_type, shape)
    UNION ALL
    SELECT charge_point_id, ts, unique_id, direction, action, message_type, schema_error
    FROM candidates
    WHERE schema_error <> ''
)
SELECT charge_point_id,
       CASE direction WHEN 'cp_to_cs' THEN 'charger payloads' ELSE 'backend payloads' END
           AS "check",
       'fail' AS verdict,
       format('{} {}: {}', CASE message_type WHEN 2 THEN 'CALL' WHEN 6 THEN 'SEND'
                                ELSE 'CALLRESULT' END, action,
              problem) AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM failing
WHERE problem IS NOT NULL
UNION ALL
SELECT charge_point_id, 'charger payloads', 'pass',
       format('{} payloads valid', count(*)), NULL
FROM candidates
WHERE direction = 'cp_to_cs'
GROUP BY charge_point_id
