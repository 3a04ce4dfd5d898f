/*+++
name = "calls"
description = """\
Each CALL with its answer (CALLRESULT or CALLERROR); unanswered CALLs and answers to unknown ids are \
rows too."""
# OCPP-J 1.6 section 4.1.1: a CALLRESULT or CALLERROR answers the CALL with the same unique id that
# travelled the other way on the same connection. OCPP 2.1's SEND (type 6) expects no answer and its
# CALLRESULTERROR (type 5) answers a CALLRESULT, so neither is a row here: a SEND is never
# unanswered. Rows are paired per (connection, direction of the CALL, unique id) in arrival order:
# a CALL's answer is the next row of its key when that row is an answer; an answer whose previous
# row is not a CALL answers nothing we saw. The recorder pairs them so as it forwards them, and
# writes the pairing into the capture (answers_seq, reused_id; schema 1.3): those rows are paired
# with one equi-join. Rows of parts written before have none, and are paired here with a window.
[columns]
charge_point_id = "the charger"
connection_id = "the connection the CALL travelled on"
direction = "direction of the CALL: cp_to_cs (charger asks) or cs_to_cp (backend asks)"
unique_id = "OCPP-J unique id"
action = "the CALL's action (for an answer to an unknown id: null)"
call_ts = "when the CALL arrived; null for an answer to an unknown id"
call_seq = "seq of the CALL in its connection"
payload = "the CALL's payload as JSON text"
injected = "the CALL was sent by ocpp-audit (active mode)"
answered = "an answer (CALLRESULT or CALLERROR) came back"
answer_type = "CALLRESULT or CALLERROR; null when unanswered"
answer_ts = "when the answer arrived"
answer_seq = "seq of the answer in its connection"
answer_payload = "the CALLRESULT payload (or CALLERROR details) as JSON text"
status = "the answer payload's status field (Accepted, Rejected, ...)"
error_code = "CALLERROR errorCode"
error_description = "CALLERROR errorDescription"
answer_parse_error = "why the answer is not valid OCPP-J, if it is not"
latency_s = "seconds from CALL to answer"
duplicate_id = "the previous CALL with this unique id and direction was still unanswered"
orphan_answer = "an answer to a unique id with no CALL in flight (the row has no CALL)"
answers_result = "an orphan CALLERROR sent in reply to the CALLRESULT of a CALL with its unique id (a CALLERROR answers only a CALL)"
ocpp_version = "1.6, 2.0.1 or 2.1: the connection's negotiated version; null when none"
+++*/
WITH keyed AS NOT MATERIALIZED (
    SELECT ts, charge_point_id, connection_id, seq, unique_id, action, payload, injected,
           message_type, error_code, error_description, parse_error, ocpp_version, answers_seq,
           reused_id,
           CASE WHEN message_type = 2 THEN direction
                WHEN direction = 'cp_to_cs' THEN 'cs_to_cp' ELSE 'cp_to_cs' END AS call_direction,
           CASE WHEN message_type = 2 THEN reused_id ELSE answers_seq END IS NOT NULL AS recorded
    FROM messages
    WHERE message_type IN (2, 3, 4) AND unique_id IS NOT NULL
),
-- Parts before schema 1.3: each row's neighbours in its key, in arrival order.
sequenced AS (
    SELECT * EXCLUDE (answers_seq, reused_id, recorded),
           lag(message_type) OVER w AS previous_type,
           lead(message_type) OVER w AS next_type,
           lead(ts) OVER w AS next_ts,
           lead(seq) OVER w AS next_seq,
           lead(payload) OVER w AS next_payload,
           lead(error_code) OVER w AS next_error_code,
           lead(error_description) OVER w AS next_error_description,
           lead(parse_error) OVER w AS next_parse_error
    FROM keyed
    WHERE NOT recorded
    WINDOW w AS (PARTITION BY connection_id, call_direction, unique_id ORDER BY seq)
),
-- The recorder's pairing: an answer names the seq of its CALL, or -1 when it answered no CALL in
-- flight (an orphan). An answer whose CALL is not among the analysed rows (a --since began after
-- the CALL) did answer a CALL in flight: the slice cut the exchange, so it is no row here, where
-- arrival order (which cannot know) takes it for an orphan.
recorded_answers AS (
    SELECT * FROM keyed WHERE recorded AND message_type IN (3, 4)
),
recorded_calls AS (
    SELECT * FROM keyed WHERE recorded AND message_type = 2
),
-- CALLs and orphan answers, each with the neighbours the window would give it.
rows AS (
    SELECT *, message_type = 2 AS is_call
    FROM sequenced
    WHERE message_type = 2 OR previous_type IS NULL OR previous_type <> 2
    UNION ALL BY NAME
    SELECT c.* EXCLUDE (answers_seq, reused_id, recorded), true AS is_call,
           CASE WHEN c.reused_id THEN 2 END AS previous_type,
           a.message_type AS next_type, a.ts AS next_ts, a.seq AS next_seq,
           a.payload AS next_payload, a.error_code AS next_error_code,
           a.error_description AS next_error_description, a.parse_error AS next_parse_error
    FROM recorded_calls c
    LEFT JOIN recorded_answers a ON a.connection_id = c.connection_id AND a.answers_seq = c.seq
    UNION ALL BY NAME
    SELECT a.* EXCLUDE (answers_seq, reused_id, recorded), false AS is_call
    FROM recorded_answers a
    WHERE a.answers_seq < 0
)
SELECT c.charge_point_id, c.connection_id, c.call_direction AS direction, c.unique_id,
       CASE WHEN c.is_call THEN c.action ELSE coalesce(c.action, r.action) END AS action,
       CASE WHEN c.is_call THEN c.ts END AS call_ts,
       CASE WHEN c.is_call THEN c.seq END AS call_seq,
       CASE WHEN c.is_call THEN c.payload END AS payload,
       c.injected,
       CASE WHEN c.is_call THEN coalesce(c.next_type IN (3, 4), false) ELSE true END AS answered,
       CASE CASE WHEN c.is_call THEN c.next_type ELSE c.message_type END
            WHEN 3 THEN 'CALLRESULT' WHEN 4 THEN 'CALLERROR' END AS answer_type,
       CASE WHEN NOT c.is_call THEN c.ts WHEN c.next_type IN (3, 4) THEN c.next_ts END AS answer_ts,
       CASE WHEN NOT c.is_call THEN c.seq WHEN c.next_type IN (3, 4) THEN c.next_seq END
           AS answer_seq,
       CASE WHEN NOT c.is_call THEN c.payload WHEN c.next_type IN (3, 4) THEN c.next_payload END
           AS answer_payload,
       CASE WHEN NOT c.is_call AND c.message_type = 3 THEN json_extract_string(c.payload, '$.status')
            WHEN c.is_call AND c.next_type = 3 THEN json_extract_string(c.next_payload, '$.status')
       END AS status,
       CASE WHEN NOT c.is_call THEN c.error_code WHEN c.next_type = 4 THEN c.next_error_code END
           AS error_code,
       CASE WHEN NOT c.is_call THEN c.error_description
            WHEN c.next_type = 4 THEN c.next_error_description END AS error_description,
       CASE WHEN NOT c.is_call THEN c.parse_error
            WHEN c.next_type IN (3, 4) THEN c.next_parse_error END AS answer_parse_error,
       CASE WHEN c.is_call AND c.next_type IN (3, 4)
            THEN ((epoch_us(c.next_ts) - epoch_us(c.ts)) / 1e6) END AS latency_s,
       c.is_call AND coalesce(c.previous_type = 2, false) AS duplicate_id,
       NOT c.is_call AS orphan_answer,
       NOT c.is_call AND r.seq IS NOT NULL AS answers_result,
       c.ocpp_version
FROM rows c
-- OCPP 2.0.1 part 4 section 4.2.3 (and EVerest/libocpp PR 995): a CALLERROR answers a CALL only;
-- one that travels the way its CALL did, after that CALL's CALLRESULT, replies to the CALLRESULT.
-- Only the unique ids of orphan CALLERRORs are looked up (a semi join on a handful of rows).
LEFT JOIN (SELECT connection_id, unique_id, call_direction, arg_max(action, seq) AS action,
                  max(seq) AS seq
           FROM keyed
           WHERE message_type = 3
             AND unique_id IN (SELECT unique_id FROM keyed WHERE message_type = 4)
           GROUP BY ALL) r
  ON NOT c.is_call AND c.message_type = 4 AND r.connection_id = c.connection_id
 AND r.unique_id = c.unique_id AND r.call_direction <> c.call_direction AND r.seq < c.seq
