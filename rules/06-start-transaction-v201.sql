/*+++
id = "start-transaction-v201"
title = "Start charge transaction (both local notification and remote trigger)"
criterion = """Remote: after RequestStartTransaction is accepted, a TransactionEvent carrying its
remoteStartId follows (Started, or Updated with triggerReason RemoteStart when the cable was already
in), with the charger's transactionId, and the transaction reaches chargingState Charging. Local: an
Authorize that is accepted is followed by a TransactionEvent for that idToken that reaches Charging;
if it is not accepted, no transaction for that idToken starts. An accepted Authorize that no
transaction follows is not a failed start: a note."""
function = 6
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 F01 Remote Start Transaction - Cable Plugin First", "OCPP 2.0.1 E02 Start Transaction - Cable Plugin First", "OCPP 2.0.1 E03 Start Transaction - IdToken First", "OCPP 2.0.1 C01 Authorization", "OCTT TC_F_01", "OCTT TC_F_02", "OCTT TC_F_03", "OCTT TC_E_03", "OCTT TC_E_04", "OCTT TC_E_09"]
[params]
start_timeout_s = 60      # the TransactionEvent within this after RequestStartTransaction/Authorize
charging_timeout_s = 30   # chargingState Charging within this after the transaction started
+++*/
-- OCPP 2.0.1 F01.FR.25: the TransactionEventRequest of a remotely started transaction carries the
-- remoteStartId of the RequestStartTransactionRequest; the transactionId is the charger's.
-- A transaction may start before it is authorized (TxStartPoint EVConnected: the cable first), so
-- a remote start is matched by the event that carries its remoteStartId, a local one by the first
-- event that carries the card's idToken.
WITH tx AS (   -- each transaction: when it was authorized, and when it first reached Charging
    SELECT charge_point_id, transaction_id,
           min(ts) FILTER (WHERE id_token IS NOT NULL OR remote_start_id IS NOT NULL) AS start_ts,
           arg_min(unique_id, ts) FILTER (WHERE id_token IS NOT NULL OR remote_start_id IS NOT NULL)
               AS start_unique_id,
           max(remote_start_id) AS remote_start_id,
           arg_min(id_token, ts) FILTER (WHERE id_token IS NOT NULL) AS id_token,
           min(ts) FILTER (WHERE charging_state = 'Charging') AS charging_ts,
           arg_min(unique_id, ts) FILTER (WHERE charging_state = 'Charging')
               AS charging_unique_id,
           arg_min(evse_id, ts) FILTER (WHERE evse_id IS NOT NULL) AS evse_id
    FROM transaction_events
    WHERE transaction_id IS NOT NULL
    GROUP BY ALL
    HAVING start_ts IS NOT NULL
),
remote AS (
    SELECT r.*, t.transaction_id, t.start_ts, t.start_unique_id, t.charging_ts,
           t.charging_unique_id, t.evse_id
    FROM (SELECT *,
                 TRY_CAST(json_extract_string(payload, '$.remoteStartId') AS BIGINT)
                     AS remote_start_id,
                 json_extract_string(payload, '$.idToken.idToken') AS id_token
          FROM calls
          WHERE action = 'RequestStartTransaction' AND direction = 'cs_to_cp'
            AND NOT orphan_answer AND ocpp_version IN ('2.0.1', '2.1')) r
    LEFT JOIN tx t
      ON t.charge_point_id = r.charge_point_id AND t.remote_start_id = r.remote_start_id
     AND (epoch_us(t.start_ts) - epoch_us(r.call_ts)) / 1e6 <= $start_timeout_s
     AND t.start_ts >= r.call_ts - INTERVAL 1 SECOND
    QUALIFY row_number() OVER (PARTITION BY r.connection_id, r.unique_id ORDER BY t.start_ts) = 1
),
auths AS (
    SELECT *, json_extract_string(payload, '$.idToken.idToken') AS id_token,
           json_extract_string(answer_payload, '$.idTokenInfo.status') AS auth_status
    FROM calls
    WHERE action = 'Authorize' AND direction = 'cp_to_cs' AND NOT orphan_answer AND answered
      AND ocpp_version IN ('2.0.1', '2.1')
),
local_starts AS (   -- an Authorize while its idToken's transaction runs asks to stop, not start;
                    -- the start it asks for is the first authorized by its idToken after it
    SELECT a.*, t.transaction_id, t.start_ts, t.start_unique_id, t.charging_ts,
           t.charging_unique_id, t.evse_id
    FROM auths a
    LEFT JOIN tx t
      ON t.charge_point_id = a.charge_point_id AND t.id_token = a.id_token
     AND t.start_ts >= a.call_ts
     AND (epoch_us(t.start_ts) - epoch_us(a.call_ts)) / 1e6 <= $start_timeout_s
    WHERE NOT EXISTS (SELECT 1 FROM tx r
                      WHERE r.charge_point_id = a.charge_point_id AND r.id_token = a.id_token
                        AND r.start_ts < a.call_ts
                        AND NOT EXISTS (SELECT 1 FROM transaction_events e
                                        WHERE e.charge_point_id = r.charge_point_id
                                          AND e.transaction_id = r.transaction_id
                                          AND e.event_type = 'Ended' AND e.ts < a.call_ts))
    QUALIFY row_number() OVER (PARTITION BY a.connection_id, a.unique_id ORDER BY t.start_ts) = 1
),
started AS (
    SELECT 'remote' AS kind, charge_point_id, call_ts, unique_id, id_token, answered, status,
           answer_type, error_code, NULL AS auth_status, transaction_id, start_ts,
           start_unique_id, charging_ts, charging_unique_id, remote_start_id
    FROM remote
    UNION ALL
    SELECT 'local', charge_point_id, call_ts, unique_id, id_token, answered, NULL, answer_type,
           error_code, auth_status, transaction_id, start_ts, start_unique_id, charging_ts,
           charging_unique_id, NULL
    FROM local_starts
),
judged AS (
    SELECT *,
           charging_ts IS NOT NULL
           AND (epoch_us(charging_ts) - epoch_us(start_ts)) / 1e6 <= $charging_timeout_s
               AS charging
    FROM started
)
SELECT charge_point_id, kind || ' start' AS "check",
       CASE WHEN kind = 'remote' AND (NOT answered OR status IS DISTINCT FROM 'Accepted')
                THEN 'fail'
            WHEN kind = 'local' AND auth_status IS DISTINCT FROM 'Accepted'
                THEN CASE WHEN transaction_id IS NULL THEN 'pass' ELSE 'fail' END
            WHEN kind = 'local' AND transaction_id IS NULL THEN 'note'
            WHEN transaction_id IS NULL OR NOT charging THEN 'fail'
            ELSE 'pass' END AS verdict,
       CASE WHEN kind = 'remote' AND NOT answered THEN 'RequestStartTransaction not answered'
            WHEN kind = 'remote' AND answer_type = 'CALLERROR'
                THEN 'RequestStartTransaction answered ' || error_code
            WHEN kind = 'remote' AND status IS DISTINCT FROM 'Accepted'
                THEN 'RequestStartTransaction answered ' || coalesce(status, 'without a status')
            WHEN kind = 'local' AND auth_status IS DISTINCT FROM 'Accepted'
             AND transaction_id IS NULL
                THEN format('Authorize {} {}: no transaction (sequence stopped)', id_token,
                            coalesce(auth_status, 'unanswered'))
            WHEN kind = 'local' AND auth_status IS DISTINCT FROM 'Accepted'
                THEN format('Authorize {} {}, yet transaction {} started', id_token,
                            coalesce(auth_status, 'unanswered'), transaction_id)
            WHEN kind = 'local' AND transaction_id IS NULL
                THEN format('Authorize {} accepted; no transaction followed within {} s: not '
                            || 'judged', id_token, $start_timeout_s)
            WHEN transaction_id IS NULL
                THEN format('RequestStartTransaction (remoteStartId {}) accepted, but no '
                            || 'TransactionEvent with that remoteStartId within {} s',
                            remote_start_id, $start_timeout_s)
            WHEN NOT charging
                THEN format('transaction {}: chargingState never Charging within {} s',
                            transaction_id, $charging_timeout_s)
            ELSE format('{} {} -> transaction {} (the charger''s id) -> Charging',
                        CASE kind WHEN 'remote' THEN format('RequestStartTransaction '
                                                             || '(remoteStartId {})',
                                                             remote_start_id)
                             ELSE 'Authorize' END, id_token, transaction_id)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': start_ts, 'unique_id': start_unique_id},
                    {'ts': charging_ts, 'unique_id': charging_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
