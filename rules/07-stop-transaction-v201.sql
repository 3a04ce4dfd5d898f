/*+++
id = "stop-transaction-v201"
title = "Stop charge transaction (both local notification and remote trigger)"
criterion = """Remote: after RequestStopTransaction (by the charger's transactionId) is accepted, a
TransactionEvent Ended for that transaction follows, with stoppedReason Remote. Local: each
transaction ends with a TransactionEvent Ended giving its stoppedReason (Local, EVDisconnected,
DeAuthorized, ...). A connector that becomes Available while its transaction has no Ended event
fails."""
function = 7
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 F03 Remote Stop Transaction", "OCPP 2.0.1 E06 Stop Transaction options", "OCTT TC_E_14", "OCTT TC_E_15", "OCTT TC_E_20", "OCTT TC_E_21"]
[params]
stop_timeout_s = 60     # the Ended event within this after RequestStopTransaction
+++*/
-- OCPP 2.0.1 F03.FR.xx: on an accepted RequestStopTransaction the Charging Station ends the
-- transaction and sends TransactionEventRequest eventType Ended, triggerReason RemoteStop,
-- stoppedReason Remote.
WITH ended AS (
    SELECT * FROM transaction_events WHERE event_type = 'Ended'
),
remote AS (
    SELECT r.*, e.ts AS stop_ts, e.unique_id AS stop_unique_id, e.stopped_reason
    FROM (SELECT *, json_extract_string(payload, '$.transactionId') AS transaction_id
          FROM calls
          WHERE action = 'RequestStopTransaction' AND direction = 'cs_to_cp'
            AND NOT orphan_answer AND ocpp_version IN ('2.0.1', '2.1')) r
    LEFT JOIN ended e
      ON e.charge_point_id = r.charge_point_id AND e.transaction_id = r.transaction_id
     AND e.ts >= r.call_ts
    QUALIFY row_number() OVER (PARTITION BY r.connection_id, r.unique_id ORDER BY e.ts) = 1
),
started AS (
    SELECT charge_point_id, transaction_id, min(ts) AS start_ts,
           arg_min(unique_id, ts) AS start_unique_id,
           arg_min(evse_id, ts) FILTER (WHERE evse_id IS NOT NULL) AS evse_id,
           arg_min(connector_id, ts) FILTER (WHERE connector_id IS NOT NULL) AS connector_id
    FROM transaction_events
    WHERE transaction_id IS NOT NULL
    GROUP BY ALL
),
unended AS (   -- cable out (connector Available) while its transaction has no Ended event
    SELECT t.*, arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts) AS available
    FROM started t
    JOIN status_notifications n
      ON n.charge_point_id = t.charge_point_id AND n.evse_id = t.evse_id
     AND (t.connector_id IS NULL OR n.connector_id = t.connector_id)
     AND n.ts > t.start_ts AND n.status = 'Available'
    WHERE NOT EXISTS (SELECT 1 FROM ended e
                      WHERE e.charge_point_id = t.charge_point_id
                        AND e.transaction_id = t.transaction_id)
    GROUP BY ALL
)
SELECT charge_point_id, 'remote stop' AS "check",
       CASE WHEN status = 'Accepted' AND stop_ts IS NOT NULL
             AND (epoch_us(stop_ts) - epoch_us(call_ts)) / 1e6 <= $stop_timeout_s
             AND stopped_reason = 'Remote' THEN 'pass'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'RequestStopTransaction not answered'
            WHEN answer_type = 'CALLERROR' THEN 'RequestStopTransaction answered ' || error_code
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'RequestStopTransaction answered ' || coalesce(status, 'without a status')
            WHEN stop_ts IS NULL OR (epoch_us(stop_ts) - epoch_us(call_ts)) / 1e6 > $stop_timeout_s
                THEN format('RequestStopTransaction {} accepted, but no TransactionEvent Ended '
                            || 'within {} s', transaction_id, $stop_timeout_s)
            WHEN stopped_reason IS DISTINCT FROM 'Remote'
                THEN format('RequestStopTransaction {} -> Ended with stoppedReason {}, not Remote',
                            transaction_id, stopped_reason)
            ELSE format('RequestStopTransaction {} -> TransactionEvent Ended (Remote) after '
                        || '{:.1f} s', transaction_id, (epoch_us(stop_ts) - epoch_us(call_ts)) / 1e6)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': stop_ts, 'unique_id': stop_unique_id}], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM remote
UNION ALL
SELECT charge_point_id,
       CASE WHEN stopped_reason = 'Remote' THEN 'remote stop'
            WHEN stopped_reason = 'EVDisconnected' THEN 'cable disconnected'
            ELSE 'local stop' END,
       'pass',
       format('transaction {} ended ({}, triggerReason {})', transaction_id, stopped_reason,
              trigger_reason),
       [{'ts': ts, 'unique_id': unique_id}]
FROM ended
WHERE NOT late
UNION ALL
SELECT charge_point_id, 'cable disconnected', 'fail',
       format('EVSE {} became Available but transaction {} has no TransactionEvent Ended',
              evse_id, transaction_id),
       [{'ts': start_ts, 'unique_id': start_unique_id}, available]
FROM unended
