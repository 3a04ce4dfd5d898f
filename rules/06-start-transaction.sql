/*+++
id = "start-transaction"
title = "Start charge transaction (both local notification and remote trigger)"
criterion = """Remote: after RemoteStartTransaction is accepted, a StartTransaction follows whose
answer carries a transactionId, then StatusNotifications (Charging or Suspended). Local: an
Authorize that is accepted is followed by a StartTransaction and status changes; if it is not
accepted, no StartTransaction for that idTag follows (the sequence stops). An accepted Authorize that
no start attempt follows (no StartTransaction, no connector Preparing: a reservation's check, or a
driver who walks away) is not a failed start: a note."""
function = 6
severity = "error"
references = ["OCPP 1.6 section 5.11 Remote Start Transaction", "OCPP 1.6 section 4.1 Authorize", "OCPP 1.6 section 4.10 Start Transaction", "OCTT TC_010", "OCTT TC_011"]
[params]
start_timeout_s = 60    # StartTransaction within this after RemoteStartTransaction or Authorize
charging_timeout_s = 30   # Charging (or SuspendedEV/EVSE) within this after StartTransaction
+++*/
WITH remote AS (
    SELECT r.*, t.transaction_id, t.start_ts, t.start_unique_id, t.connector_id AS tx_connector,
           t.id_tag_status
    FROM (SELECT *, json_extract_string(payload, '$.idTag') AS id_tag
          FROM calls
          WHERE action = 'RemoteStartTransaction' AND direction = 'cs_to_cp'
            AND NOT orphan_answer) r
    ASOF LEFT JOIN transactions t
        ON t.charge_point_id = r.charge_point_id AND t.id_tag = r.id_tag
       AND t.start_ts >= r.call_ts
),
-- An Authorize while a transaction with the same idTag runs, or followed by a StopTransaction with
-- it, asks to stop (OCPP 1.6 section 3.5.4), not to start.
auths AS (
    SELECT *, json_extract_string(payload, '$.idTag') AS id_tag,
           json_extract_string(answer_payload, '$.idTagInfo.status') AS auth_status
    FROM calls
    WHERE action = 'Authorize' AND direction = 'cp_to_cs' AND NOT orphan_answer AND answered
),
start_auths AS (
    SELECT a.*
    FROM auths a
    WHERE NOT EXISTS (
        SELECT 1 FROM transactions r
        WHERE r.charge_point_id = a.charge_point_id
          AND (r.id_tag = a.id_tag OR r.stop_id_tag = a.id_tag)
          AND r.start_ts < a.call_ts
          AND (r.stop_ts IS NULL OR r.stop_ts >= a.call_ts))
),
local_starts AS (
    SELECT a.*, t.transaction_id, t.start_ts, t.start_unique_id, t.connector_id AS tx_connector,
           t.id_tag_status
    FROM start_auths a
    ASOF LEFT JOIN transactions t
        ON t.charge_point_id = a.charge_point_id AND t.id_tag = a.id_tag
       AND t.start_ts >= a.call_ts
),
started AS (   -- each attempt with its StartTransaction (when one came in time) and the status after
    SELECT 'remote' AS kind, charge_point_id, call_ts, unique_id, id_tag, answered, status,
           answer_type, error_code, NULL AS auth_status,
           CASE WHEN (epoch_us(start_ts) - epoch_us(call_ts)) / 1e6 <= $start_timeout_s
                THEN start_ts END AS start_ts,
           start_unique_id, transaction_id, tx_connector
    FROM remote
    UNION ALL
    SELECT 'local', charge_point_id, call_ts, unique_id, id_tag, answered, NULL, answer_type,
           error_code, auth_status,
           CASE WHEN (epoch_us(start_ts) - epoch_us(call_ts)) / 1e6 <= $start_timeout_s
                THEN start_ts END,
           start_unique_id, transaction_id, tx_connector
    FROM local_starts
),
with_status AS (
    SELECT s.*,
           -- a start attempt without a StartTransaction shows as a connector Preparing around the
           -- Authorize (a cable plugged in before or after the card)
           (SELECT arg_min({'ts': n.ts, 'unique_id': n.unique_id, 'connector_id': n.connector_id},
                           n.ts)
            FROM status_notifications n
            WHERE n.charge_point_id = s.charge_point_id AND n.status = 'Preparing'
              AND abs(epoch_us(n.ts) - epoch_us(s.call_ts)) / 1e6 <= $start_timeout_s)
               AS preparing,
           (SELECT arg_max(json_extract(r.payload, '$.reservationId'), r.call_ts)
            FROM calls r
            WHERE r.charge_point_id = s.charge_point_id AND r.action = 'ReserveNow'
              AND r.direction = 'cs_to_cp' AND r.status = 'Accepted'
              AND json_extract_string(r.payload, '$.idTag') = s.id_tag
              AND r.call_ts <= s.call_ts) AS reservation_id,
           (SELECT arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts)
            FROM status_notifications n
            WHERE n.charge_point_id = s.charge_point_id
              AND n.connector_id = s.tx_connector
              AND n.status IN ('Charging', 'SuspendedEV', 'SuspendedEVSE')
              AND n.ts >= s.call_ts
              AND (epoch_us(n.ts) - epoch_us(s.start_ts)) / 1e6 <= $charging_timeout_s) AS charging
    FROM started s
)
SELECT charge_point_id,
       kind || ' start' AS "check",
       CASE
           WHEN kind = 'remote' AND (NOT answered OR status IS DISTINCT FROM 'Accepted') THEN 'fail'
           WHEN kind = 'local' AND auth_status IS DISTINCT FROM 'Accepted'
               THEN CASE WHEN start_ts IS NULL THEN 'pass' ELSE 'fail' END
           WHEN kind = 'local' AND start_ts IS NULL AND preparing IS NULL THEN 'note'
           WHEN start_ts IS NULL OR transaction_id IS NULL OR charging IS NULL THEN 'fail'
           ELSE 'pass'
       END AS verdict,
       CASE
           WHEN kind = 'remote' AND NOT answered THEN 'RemoteStartTransaction not answered'
           WHEN kind = 'remote' AND answer_type = 'CALLERROR'
               THEN 'RemoteStartTransaction answered ' || error_code
           WHEN kind = 'remote' AND status IS DISTINCT FROM 'Accepted'
               THEN 'RemoteStartTransaction answered ' || coalesce(status, 'without a status')
           WHEN kind = 'local' AND auth_status IS DISTINCT FROM 'Accepted' AND start_ts IS NULL
               THEN format('Authorize {} {}: no StartTransaction (sequence stopped)', id_tag,
                           coalesce(auth_status, 'unanswered'))
           WHEN kind = 'local' AND auth_status IS DISTINCT FROM 'Accepted'
               THEN format('Authorize {} {}, yet a StartTransaction followed', id_tag,
                           coalesce(auth_status, 'unanswered'))
           WHEN kind = 'local' AND start_ts IS NULL AND preparing IS NULL
               THEN format('Authorize {} accepted; no start attempt followed within {} s '
                           || '(no StartTransaction, no connector Preparing){}: not judged',
                           id_tag, $start_timeout_s,
                           CASE WHEN reservation_id IS NOT NULL
                                THEN format(', the idTag of reservation {}', reservation_id)
                                ELSE '' END)
           WHEN kind = 'local' AND start_ts IS NULL
               THEN format('Authorize {} accepted and connector {} Preparing, but no '
                           || 'StartTransaction within {} s', id_tag, preparing.connector_id,
                           $start_timeout_s)
           WHEN start_ts IS NULL
               THEN format('{} accepted, but no StartTransaction for {} within {} s',
                           CASE kind WHEN 'remote' THEN 'RemoteStartTransaction'
                                ELSE 'Authorize' END, id_tag, $start_timeout_s)
           WHEN transaction_id IS NULL
               THEN 'StartTransaction answered without a transactionId'
           WHEN charging IS NULL
               THEN format('transaction {}: no StatusNotification Charging on connector {} '
                           || 'within {} s', transaction_id, tx_connector, $charging_timeout_s)
           ELSE format('{} {} -> StartTransaction (transaction {}) -> {} on connector {}',
                       CASE kind WHEN 'remote' THEN 'RemoteStartTransaction'
                            ELSE 'Authorize' END, id_tag, transaction_id, 'Charging',
                       tx_connector)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': start_ts, 'unique_id': start_unique_id}, charging,
                    CASE WHEN kind = 'local' AND auth_status = 'Accepted' AND start_ts IS NULL
                         THEN {'ts': preparing.ts, 'unique_id': preparing.unique_id} END],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM with_status
