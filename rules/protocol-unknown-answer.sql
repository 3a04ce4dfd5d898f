/*+++
id = "protocol-unknown-answer"
title = "Answers to unknown unique ids"
criterion = """Every CALLRESULT and CALLERROR answers a CALL in flight with the same unique id (a
CALLERROR sent in reply to a CALLRESULT is protocol-callerror's finding, not this one's)."""
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "warning"   # the receiver drops such an answer; harmless alone, a symptom of id mix-ups
references = ["OCPP-J 1.6 section 4.1.1", "OCPP-J 1.6 section 4.2.2 CallResult"]
+++*/
SELECT charge_point_id,
       CASE direction WHEN 'cs_to_cp' THEN 'charger answers' ELSE 'backend answers' END
           AS "check",
       'fail' AS verdict,
       format('{} with unique id {} answers no CALL in flight', answer_type, unique_id) AS detail,
       [{'ts': answer_ts, 'unique_id': unique_id}] AS evidence
FROM calls
WHERE orphan_answer AND NOT answers_result
UNION ALL
SELECT charge_point_id, 'answers', 'pass',
       format('{} answers, each to a CALL in flight', count(*)), NULL
FROM calls
WHERE answered AND NOT orphan_answer
GROUP BY charge_point_id
