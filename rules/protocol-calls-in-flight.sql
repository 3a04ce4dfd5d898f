/*+++
id = "protocol-calls-in-flight"
title = "One CALL in flight per direction"
criterion = """Neither side sends a CALL while a CALL it sent before on the same connection is still
unanswered, and no unique id is reused while its CALL is in flight."""
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "warning"   # many backends cope with it, but the spec says SHOULD NOT
references = ["OCPP-J 1.6 section 4.1.1 Synchronicity"]
+++*/
-- OCPP-J 1.6 section 4.1.1: "A Charge Point or Central System SHOULD NOT send a CALL message to the
-- other party unless all the CALL messages it sent before have been responded to or have timed out."
WITH sent AS (
    -- Only the columns judged below ride through the window (not every CALL's payload), and only
    -- the seq of the CALL before: its id, action and time are looked up for overlapping CALLs.
    SELECT charge_point_id, connection_id, direction, unique_id, action, call_ts, call_seq,
           answer_seq, duplicate_id,
           max(coalesce(answer_seq, call_seq)) OVER (
               PARTITION BY connection_id, direction ORDER BY call_seq
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS busy_until_seq,
           lag(call_seq) OVER (PARTITION BY connection_id, direction ORDER BY call_seq)
               AS previous_seq
    FROM calls
    WHERE NOT orphan_answer
),
-- Each line names its side (charger or backend); a side with a failure gets no pass line, so no
-- pass line contradicts the failures beside it.
judged AS (
    SELECT *,
           CASE direction WHEN 'cp_to_cs' THEN 'charger' ELSE 'backend' END AS side,
           duplicate_id OR coalesce(busy_until_seq > call_seq, false) AS overlapping
    FROM sent
),
-- The CALL that was still unanswered when an overlapping one went out: the latest earlier CALL of
-- that side whose answer came after it (not simply the CALL just before, which may be answered).
blocking AS (
    SELECT j.connection_id, j.direction, j.call_seq,
           arg_max({'action': p.action, 'unique_id': p.unique_id, 'ts': p.call_ts}, p.call_seq)
               AS earlier
    FROM (SELECT * FROM judged WHERE overlapping AND NOT duplicate_id) j
    JOIN calls p
      ON p.connection_id = j.connection_id AND p.direction = j.direction
     AND p.call_seq < j.call_seq AND p.answer_seq > j.call_seq AND NOT p.orphan_answer
    GROUP BY ALL
)
SELECT charge_point_id, side || ' CALLs' AS "check", 'fail' AS verdict,
       CASE WHEN duplicate_id
            THEN format('{} re-sent unique id {} ({}) while its CALL was unanswered', side,
                        unique_id, action)
            ELSE format('{} sent {} while its earlier CALL ({}) was unanswered', side, action,
                        coalesce(b.earlier.action, previous_action)) END AS detail,
       [{'ts': coalesce(b.earlier.ts, previous_ts),
         'unique_id': coalesce(b.earlier.unique_id, previous_unique_id)},
        {'ts': call_ts, 'unique_id': unique_id}] AS evidence
FROM (SELECT * FROM judged WHERE overlapping) j
LEFT JOIN blocking b USING (connection_id, direction, call_seq)
-- the CALL just before, for a re-sent unique id (looked up for the few overlapping CALLs only)
LEFT JOIN (SELECT connection_id, direction, call_seq AS previous_seq,
                  unique_id AS previous_unique_id, action AS previous_action,
                  call_ts AS previous_ts
           FROM calls WHERE NOT orphan_answer) p USING (connection_id, direction, previous_seq)
UNION ALL
SELECT charge_point_id, side || ' CALLs', 'pass',
       format('{}: {} CALLs, one at a time', side, count(*)), NULL
FROM judged
GROUP BY charge_point_id, side
HAVING NOT bool_or(overlapping)
