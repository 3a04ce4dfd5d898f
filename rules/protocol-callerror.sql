/*+++
id = "protocol-callerror"
title = "CALLERRORs"
criterion = "No CALL is answered with a CALLERROR; each CALLERROR is reported with its code."
severity = "warning"   # a CALLERROR can be a legitimate answer (NotSupported for an optional feature)
references = ["OCPP-J 1.6 section 4.2.3 CallError"]
+++*/
SELECT charge_point_id,
       CASE direction WHEN 'cs_to_cp' THEN 'charger answers' ELSE 'backend answers' END
           AS "check",
       'fail' AS verdict,
       format('{} answered {}{} by the {}', coalesce(action, 'an unknown CALL'), error_code,
              CASE WHEN coalesce(error_description, '') <> ''
                   THEN ' (' || error_description || ')' ELSE '' END,
              CASE direction WHEN 'cs_to_cp' THEN 'charger' ELSE 'backend' END) AS detail,
       [{'ts': answer_ts, 'unique_id': unique_id}] AS evidence
FROM calls
WHERE answer_type = 'CALLERROR'
UNION ALL
SELECT charge_point_id,
       CASE direction WHEN 'cs_to_cp' THEN 'charger answers' ELSE 'backend answers' END,
       'pass', format('{} answers, none a CALLERROR', count(*)), NULL
FROM calls
WHERE answered
GROUP BY charge_point_id, direction
