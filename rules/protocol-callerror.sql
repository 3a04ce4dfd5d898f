/*+++
id = "protocol-callerror"
title = "CALLERRORs"
criterion = """No CALL is answered with a CALLERROR; each CALLERROR is reported with its code. A
CALLERROR sent in reply to a CALLRESULT fails: a CALLERROR answers only a CALL (OCPP 2.1 has
CALLRESULTERROR for a CALLRESULT that fails validation)."""
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "warning"   # a CALLERROR can be a legitimate answer (NotSupported for an optional feature)
references = ["OCPP-J 1.6 section 4.2.3 CallError", "OCPP 2.0.1 part 4 section 4.2.3 CALLERROR", "OCPP 2.1 part 4 section 4.2.3 CALLRESULTERROR"]
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
WHERE answer_type = 'CALLERROR' AND NOT answers_result
UNION ALL
-- OCPP 2.0.1 part 4 section 4.2.3: "CALLERROR ... in response to a CALL"; a reply to a CALLRESULT
-- is not one (Java-OCA-OCPP#406, EVerest/libocpp PR 995).
SELECT charge_point_id,
       -- (the row's direction is the way a CALL would travel: the CALLERROR went the other way)
       CASE direction WHEN 'cs_to_cp' THEN 'charger replies' ELSE 'backend replies' END,
       'fail',
       format('CALLERROR {} sent by the {} in reply to the CALLRESULT of {} {}{}', error_code,
              CASE direction WHEN 'cs_to_cp' THEN 'charger' ELSE 'backend' END,
              coalesce(action, 'an unknown CALL'), unique_id,
              CASE WHEN coalesce(error_description, '') <> ''
                   THEN ' (' || error_description || ')' ELSE '' END),
       [{'ts': answer_ts, 'unique_id': unique_id}]
FROM calls
WHERE answers_result
UNION ALL
SELECT charge_point_id,
       CASE direction WHEN 'cs_to_cp' THEN 'charger answers' ELSE 'backend answers' END,
       'pass', format('{} answers, none a CALLERROR', count(*)), NULL
FROM calls
WHERE answered
GROUP BY charge_point_id, direction
