/*+++
id = "protocol-malformed"
title = "Well-formed OCPP-J frames"
criterion = "Every message is a well-formed OCPP-J CALL, CALLRESULT or CALLERROR text frame."
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "error"   # a malformed frame cannot be processed by any conforming peer
references = ["OCPP-J 1.6 section 4.1 Message structure", "OCPP-J 1.6 section 4.2"]
+++*/
SELECT charge_point_id,
       CASE direction WHEN 'cp_to_cs' THEN 'charger frames' ELSE 'backend frames' END AS "check",
       'fail' AS verdict,
       format('malformed frame: {}', parse_error) AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM messages
WHERE parse_error IS NOT NULL
UNION ALL
SELECT charge_point_id, 'charger frames', 'pass',
       format('{} frames, all well formed', count(*)), NULL
FROM messages
WHERE direction = 'cp_to_cs'
GROUP BY charge_point_id
