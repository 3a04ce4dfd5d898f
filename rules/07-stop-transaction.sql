/*+++
id = "stop-transaction"
title = "Stop charge transaction (both local notification and remote trigger)"
criterion = """Remote: after RemoteStopTransaction (by transactionId) is accepted, a StopTransaction
for that transaction follows, then StatusNotifications (Finishing or Available). Local: a
StopTransaction followed by StatusNotifications. Cable disconnected: a StopTransaction (reason
EVDisconnected) is received; a connector that becomes Available while its transaction has no
StopTransaction fails."""
function = 7
severity = "error"
references = ["OCPP 1.6 section 5.12 Remote Stop Transaction", "OCPP 1.6 section 4.10 Stop Transaction", "OCPP 1.6 section 7.41 Reason", "OCTT TC_012", "OCTT TC_068"]
[params]
stop_timeout_s = 60     # StopTransaction within this after RemoteStopTransaction
finishing_timeout_s = 30   # Finishing or Available within this after StopTransaction
+++*/
WITH remote AS (
    SELECT r.*, t.stop_ts, t.stop_unique_id, t.connector_id AS tx_connector
    FROM (SELECT *,
                 TRY_CAST(json_extract_string(payload, '$.transactionId') AS BIGINT)
                     AS transaction_id
          FROM calls
          WHERE action = 'RemoteStopTransaction' AND direction = 'cs_to_cp'
            AND NOT orphan_answer) r
    LEFT JOIN transactions t
        ON t.charge_point_id = r.charge_point_id AND t.transaction_id = r.transaction_id
    QUALIFY row_number() OVER (PARTITION BY r.connection_id, r.unique_id, r.call_ts
                               ORDER BY t.start_ts DESC) = 1
),
stops AS (   -- every StopTransaction delivered live, with the status that followed
    SELECT t.*,
           EXISTS (SELECT 1 FROM remote r
                   WHERE r.charge_point_id = t.charge_point_id
                     AND r.transaction_id = t.transaction_id) AS remote_stop,
           -- the first Finishing/Available after the stop; failing that, the last one up to 10 s
           -- before it (chargers often report Finishing first), never before this transaction
           -- started: a previous one's status, or the boot's, is not this stop's
           coalesce(
               (SELECT arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts)
                FROM status_notifications n
                WHERE n.charge_point_id = t.charge_point_id
                  AND n.connector_id = t.connector_id
                  AND n.status IN ('Finishing', 'Available')
                  AND n.ts >= t.stop_ts
                  AND (epoch_us(n.ts) - epoch_us(t.stop_ts)) / 1e6 <= $finishing_timeout_s),
               (SELECT arg_max({'ts': n.ts, 'unique_id': n.unique_id}, n.ts)
                FROM status_notifications n
                WHERE n.charge_point_id = t.charge_point_id
                  AND n.connector_id = t.connector_id
                  AND n.status IN ('Finishing', 'Available')
                  AND n.ts < t.stop_ts
                  AND n.ts >= greatest(t.stop_ts - INTERVAL 10 SECOND, t.start_ts)))
               AS finished
    FROM transactions t
    WHERE t.stop_ts IS NOT NULL AND NOT t.stop_late
),
unstopped AS (   -- cable out (Available) while the transaction has no StopTransaction
    SELECT t.charge_point_id, t.transaction_id, t.connector_id, t.start_ts, t.start_unique_id,
           arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts) AS available
    FROM transactions t
    JOIN status_notifications n
      ON n.charge_point_id = t.charge_point_id AND n.connector_id = t.connector_id
     AND n.ts > t.start_ts AND n.status = 'Available'
    WHERE t.stop_ts IS NULL AND t.transaction_id IS NOT NULL
    GROUP BY ALL
)
SELECT charge_point_id, 'remote stop' AS "check",
       CASE WHEN status = 'Accepted' AND stop_ts IS NOT NULL AND stop_ts >= call_ts
             AND (epoch_us(stop_ts) - epoch_us(call_ts)) / 1e6 <= $stop_timeout_s
            THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'RemoteStopTransaction not answered'
            WHEN answer_type = 'CALLERROR' THEN 'RemoteStopTransaction answered ' || error_code
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'RemoteStopTransaction answered ' || coalesce(status, 'without a status')
            WHEN stop_ts IS NULL OR stop_ts < call_ts
              OR (epoch_us(stop_ts) - epoch_us(call_ts)) / 1e6 > $stop_timeout_s
                THEN format('RemoteStopTransaction {} accepted, but no StopTransaction within {} s',
                            transaction_id, $stop_timeout_s)
            ELSE format('RemoteStopTransaction {} -> StopTransaction after {:.1f} s',
                        transaction_id, (epoch_us(stop_ts) - epoch_us(call_ts)) / 1e6)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': stop_ts, 'unique_id': stop_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM remote
UNION ALL
SELECT charge_point_id,
       CASE WHEN remote_stop OR stop_reason = 'Remote' THEN 'remote stop'
            WHEN stop_reason = 'EVDisconnected' THEN 'cable disconnected'
            ELSE 'local stop' END,
       CASE WHEN finished IS NULL THEN 'fail' ELSE 'pass' END,
       CASE WHEN finished IS NULL
            THEN format('transaction {} stopped ({}), but no StatusNotification Finishing or '
                        || 'Available on connector {} within {} s', transaction_id, stop_reason,
                        connector_id, $finishing_timeout_s)
            ELSE format('transaction {} stopped ({}) -> StatusNotification on connector {}',
                        transaction_id, stop_reason, connector_id) END,
       list_filter([{'ts': stop_ts, 'unique_id': stop_unique_id}, finished],
                   lambda e: e.ts IS NOT NULL)
FROM stops
UNION ALL
SELECT charge_point_id, 'cable disconnected', 'fail',
       format('connector {} became Available but transaction {} has no StopTransaction',
              connector_id, transaction_id),
       [{'ts': start_ts, 'unique_id': start_unique_id}, available]
FROM unstopped
