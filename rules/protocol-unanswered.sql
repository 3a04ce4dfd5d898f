/*+++
id = "protocol-unanswered"
title = "CALLs answered in time"
criterion = """Every CALL, either way, is answered (CALLRESULT or CALLERROR) within a timeout while
the connection stays up."""
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "warning"   # a slow answer may come from the backend or the network, not the charger
references = ["OCPP-J 1.6 section 4.1.1 (one CALL at a time, answered or timed out)"]
[params]
answer_timeout_s = 30   # longest time for an answer
+++*/
WITH judged AS (
    SELECT c.*, k.closed_at,
           (epoch_us(k.closed_at) - epoch_us(c.call_ts)) / 1e6 AS stayed_up_s
    FROM calls c
    JOIN connections k ON k.connection_id = c.connection_id
    WHERE NOT c.orphan_answer
)
SELECT charge_point_id,
       CASE direction WHEN 'cs_to_cp' THEN 'charger answers' ELSE 'backend answers' END
           AS "check",
       'fail' AS verdict,
       CASE WHEN answered
            THEN format('{} ({}) answered after {:.1f} s (timeout {} s)', action,
                        CASE direction WHEN 'cs_to_cp' THEN 'backend to charger'
                             ELSE 'charger to backend' END, latency_s, $answer_timeout_s)
            ELSE format('{} ({}) not answered within {} s', action,
                        CASE direction WHEN 'cs_to_cp' THEN 'backend to charger'
                             ELSE 'charger to backend' END, $answer_timeout_s)
       END AS detail,
       [{'ts': call_ts, 'unique_id': unique_id}] AS evidence
FROM judged
WHERE (answered AND latency_s > $answer_timeout_s)
   OR (NOT answered AND stayed_up_s > $answer_timeout_s)
UNION ALL
SELECT charge_point_id,
       CASE direction WHEN 'cs_to_cp' THEN 'charger answers' ELSE 'backend answers' END,
       'pass',
       format('{} CALLs answered, slowest after {:.1f} s', count(*), max(latency_s)),
       NULL
FROM judged
WHERE answered
GROUP BY charge_point_id, direction
