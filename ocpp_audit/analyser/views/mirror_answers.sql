/*+++
name = "mirror_answers"
description = """\
Each CALL a charger sent, once per mirror of its connection: the primary's answer beside the \
mirror's (`record --mirror`). No rows for a capture without mirrors."""
# The mirror's copy of a connection shares its connection_id (rows with backend = the mirror's
# name); a charger CALL sent to a mirror keeps its unique id (OCPP-J 1.6 section 4.1.3: the answer
# carries the CALL's unique id), so the n-th CALL with a unique id on the primary pairs with the
# n-th on each mirror, and each with the next answer of its own key.
[columns]
charge_point_id = "the charger"
connection_id = "the charger's connection (its primary and mirror rows share it)"
backend = "the mirror's name"
unique_id = "OCPP-J unique id of the charger's CALL"
action = "the CALL's action"
call_ts = "when the charger's CALL arrived"
primary_answer_type = "CALLRESULT or CALLERROR from the primary; null when unanswered"
primary_answer_payload = "the primary's CALLRESULT payload (or CALLERROR details) as JSON text"
primary_status = "the primary's answer payload's status field"
primary_error_code = "the primary's CALLERROR errorCode"
primary_latency_s = "seconds from the CALL to the primary's answer"
sent_to_mirror = "the CALL was sent to the mirror (false: dropped, or the mirror was down)"
mirror_call_ts = "when the CALL was sent to the mirror"
mirror_lag_s = "seconds from the charger's CALL to its copy leaving for the mirror (queueing)"
mirror_payload = "the CALL's payload as sent to the mirror (its own transactionId carried in)"
mirror_answered = "the mirror answered (CALLRESULT or CALLERROR)"
mirror_answer_type = "CALLRESULT or CALLERROR from the mirror; null when unanswered"
mirror_answer_payload = "the mirror's CALLRESULT payload (or CALLERROR details) as JSON text"
mirror_status = "the mirror's answer payload's status field"
mirror_error_code = "the mirror's CALLERROR errorCode"
mirror_latency_s = "seconds from the CALL leaving for the mirror to the mirror's answer"
same_answer_text = "both answered and the payloads and error codes are the same text"
+++*/
WITH primary_calls AS (
    SELECT *, row_number() OVER (PARTITION BY connection_id, unique_id ORDER BY call_seq) AS nth
    FROM calls
    WHERE direction = 'cp_to_cs' AND call_ts IS NOT NULL AND NOT injected
),
mirrors AS (
    SELECT DISTINCT connection_id, backend FROM all_frames WHERE backend IS NOT NULL
),
mirror_keyed AS (
    SELECT backend, connection_id, seq, ts, unique_id, message_type, payload, error_code,
           direction, injected
    FROM all_frames
    WHERE backend IS NOT NULL AND event = 'message' AND unique_id IS NOT NULL
      AND ((message_type = 2 AND direction = 'cp_to_cs' AND NOT injected)
           OR (message_type IN (3, 4) AND direction = 'cs_to_cp'))
),
mirror_sequenced AS (
    SELECT *,
           lead(message_type) OVER w AS next_type,
           lead(ts) OVER w AS next_ts,
           lead(payload) OVER w AS next_payload,
           lead(error_code) OVER w AS next_error_code
    FROM mirror_keyed
    WINDOW w AS (PARTITION BY backend, connection_id, unique_id ORDER BY seq)
),
mirror_calls AS (
    SELECT *,
           row_number() OVER (PARTITION BY backend, connection_id, unique_id ORDER BY seq) AS nth
    FROM mirror_sequenced
    WHERE message_type = 2
)
SELECT p.charge_point_id, p.connection_id, m.backend, p.unique_id, p.action, p.call_ts,
       p.answer_type AS primary_answer_type,
       p.answer_payload AS primary_answer_payload,
       p.status AS primary_status,
       p.error_code AS primary_error_code,
       p.latency_s AS primary_latency_s,
       mc.ts IS NOT NULL AS sent_to_mirror,
       mc.ts AS mirror_call_ts,
       CASE WHEN mc.ts IS NOT NULL THEN (epoch_us(mc.ts) - epoch_us(p.call_ts)) / 1e6 END
           AS mirror_lag_s,
       mc.payload AS mirror_payload,
       coalesce(mc.next_type IN (3, 4), false) AS mirror_answered,
       CASE mc.next_type WHEN 3 THEN 'CALLRESULT' WHEN 4 THEN 'CALLERROR' END AS mirror_answer_type,
       CASE WHEN mc.next_type IN (3, 4) THEN mc.next_payload END AS mirror_answer_payload,
       CASE WHEN mc.next_type = 3 THEN json_extract_string(mc.next_payload, '$.status') END
           AS mirror_status,
       CASE WHEN mc.next_type = 4 THEN mc.next_error_code END AS mirror_error_code,
       CASE WHEN mc.next_type IN (3, 4) THEN (epoch_us(mc.next_ts) - epoch_us(mc.ts)) / 1e6 END
           AS mirror_latency_s,
       coalesce(
           p.answered AND mc.next_type IN (3, 4)
           AND p.answer_type = CASE mc.next_type WHEN 3 THEN 'CALLRESULT' ELSE 'CALLERROR' END
           AND p.answer_payload IS NOT DISTINCT FROM mc.next_payload
           AND p.error_code IS NOT DISTINCT FROM CASE WHEN mc.next_type = 4 THEN mc.next_error_code END,
           false
       ) AS same_answer_text
FROM primary_calls p
JOIN mirrors m ON m.connection_id = p.connection_id
LEFT JOIN mirror_calls mc
       ON mc.backend = m.backend AND mc.connection_id = p.connection_id
      AND mc.unique_id = p.unique_id AND mc.nth = p.nth
