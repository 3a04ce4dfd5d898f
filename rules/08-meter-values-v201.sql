/*+++
id = "meter-values-v201"
title = "Receive meter reading"
criterion = """Meter values come with the start and end of each transaction (context
Transaction.Begin on an event of the transaction, Transaction.End on its Ended event); while the
transaction's chargingState is Charging, TransactionEvent Updated samples are at most 30 s apart and
at the configured SampledDataCtrlr.TxUpdatedInterval, judged by the samples' timestamps; Voltage,
Current.Import and Power.Active.Import are present. A transaction that ran while the charger was
offline is function 14's business for what it lost: noted here, not charged twice."""
function = 8
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 J02 Sending transaction related Meter Values", "OCTT TC_J_07", "OCTT TC_J_08", "OCTT TC_J_09", "OCTT TC_J_10"]
[params]
max_gap_s = 30        # the platform's ceiling between samples while Charging
sample_tolerance_s = 5       # slack on top of the configured TxUpdatedInterval
+++*/
-- OCPP 2.0.1 J02.FR.01: during a transaction the Charging Station sends TransactionEventRequest
-- Updated with meter values every SampledDataCtrlr.TxUpdatedInterval seconds; J02.FR.09/10: the
-- TxStartedMeasurands come with context Transaction.Begin, the TxEndedMeasurands with
-- Transaction.End in the Ended event.
WITH tx AS (
    SELECT charge_point_id, transaction_id,
           min(ts) AS start_ts, arg_min(unique_id, ts) AS start_unique_id,
           min(timestamp) AS start_timestamp,
           max(ts) FILTER (WHERE event_type = 'Ended') AS stop_ts,
           arg_max(unique_id, ts) FILTER (WHERE event_type = 'Ended') AS stop_unique_id,
           max(timestamp) FILTER (WHERE event_type = 'Ended') AS stop_timestamp
    FROM transaction_events
    WHERE transaction_id IS NOT NULL
    GROUP BY ALL
),
samples AS (
    SELECT * FROM meter_samples
    WHERE source = 'TransactionEvent' AND transaction_ref IS NOT NULL
      AND ocpp_version IN ('2.0.1', '2.1')
),
per_tx AS (
    SELECT t.*,
           EXISTS (SELECT 1 FROM connections c   -- ran while the charger was offline
                   WHERE c.charge_point_id = t.charge_point_id AND c.offline_s > 0
                     AND c.offline_from < coalesce(t.stop_timestamp, c.opened_at)
                     AND c.opened_at > t.start_timestamp)
           OR EXISTS (SELECT 1 FROM transaction_events e
                      WHERE e.charge_point_id = t.charge_point_id
                        AND e.transaction_id = t.transaction_id AND e.offline) AS ran_offline,
           coalesce(bool_or(s.context = 'Transaction.Begin'), false) AS has_begin,
           coalesce(bool_or(s.context = 'Transaction.End'), false) AS has_end,
           list(DISTINCT s.measurand) FILTER (WHERE s.context = 'Sample.Periodic') AS measurands,
           count(s.timestamp) AS sample_count,
           count(s.timestamp) FILTER (WHERE s.context = 'Sample.Periodic') AS periodic_count
    FROM tx t
    LEFT JOIN samples s
      ON s.charge_point_id = t.charge_point_id AND s.transaction_ref = t.transaction_id
    GROUP BY ALL
),
instants AS (   -- distinct sample times per transaction, by the charger's clock
    SELECT charge_point_id, transaction_ref AS transaction_id, timestamp,
           min(ts) AS ts, min(unique_id) AS unique_id
    FROM samples
    WHERE timestamp IS NOT NULL
    GROUP BY ALL
),
holes AS (
    SELECT *,
           lag(timestamp) OVER w AS previous_timestamp,
           lag(unique_id) OVER w AS previous_unique_id,
           lag(ts) OVER w AS previous_ts
    FROM instants
    WINDOW w AS (PARTITION BY charge_point_id, transaction_id ORDER BY timestamp)
),
states AS (   -- each change of the transaction's chargingState, by the charger's clock
    SELECT charge_point_id, transaction_id, timestamp, charging_state
    FROM transaction_events
    WHERE charging_state IS NOT NULL AND timestamp IS NOT NULL
    QUALIFY charging_state IS DISTINCT FROM lag(charging_state) OVER (
        PARTITION BY charge_point_id, transaction_id ORDER BY timestamp, seq_no)
),
tx_intervals AS (   -- SampledDataCtrlr.TxUpdatedInterval as reported, read or set (accepted)
    SELECT charge_point_id, ts, TRY_CAST(value AS INTEGER) AS interval_s
    FROM device_variables
    WHERE key = 'SampledDataCtrlr.TxUpdatedInterval' AND attribute_type = 'Actual'
      AND (source = 'NotifyReport' OR status = 'Accepted')
      AND TRY_CAST(value AS INTEGER) > 0
),
-- A gap counts from the later of the previous sample and the moment charging began: the Updated
-- events are due every TxUpdatedInterval while the energy flows (the state at the gap's end).
judged AS (
    SELECT h.*,
           (epoch_us(h.timestamp) - epoch_us(greatest(h.previous_timestamp, n.timestamp))) / 1e6
               AS gap_s,
           i.interval_s
    FROM (SELECT * FROM holes WHERE previous_timestamp IS NOT NULL) h
    ASOF JOIN states n
        ON n.charge_point_id = h.charge_point_id AND n.transaction_id = h.transaction_id
       AND h.timestamp > n.timestamp
    ASOF LEFT JOIN tx_intervals i
        ON i.charge_point_id = h.charge_point_id AND h.previous_timestamp >= i.ts
    WHERE n.charging_state = 'Charging'
      AND NOT EXISTS (SELECT 1 FROM connections c
                      WHERE c.charge_point_id = h.charge_point_id AND c.offline_s > 0
                        AND c.offline_from < h.timestamp AND c.opened_at > h.previous_timestamp)
)
SELECT charge_point_id, 'start and stop' AS "check",
       CASE WHEN has_begin AND has_end THEN 'pass' WHEN ran_offline THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN has_begin AND has_end
                THEN format('transaction {}: meter values at start and stop', transaction_id)
            WHEN ran_offline
                THEN format('transaction {} ran while the charger was offline: its missing '
                            || 'meter values are judged by function 14', transaction_id)
            WHEN has_end
                THEN format('transaction {}: no meter value at start (Transaction.Begin)',
                            transaction_id)
            WHEN has_begin
                THEN format('transaction {}: no meter value at stop (Transaction.End in the '
                            || 'Ended event)', transaction_id)
            ELSE format('transaction {}: no meter values at start or stop', transaction_id)
       END AS detail,
       [{'ts': start_ts, 'unique_id': start_unique_id},
        {'ts': stop_ts, 'unique_id': stop_unique_id}] AS evidence
FROM per_tx
WHERE stop_ts IS NOT NULL
UNION ALL
SELECT charge_point_id, 'measurands',
       CASE WHEN len(missing) = 0 THEN 'pass' ELSE 'fail' END,
       CASE WHEN len(missing) = 0
            THEN format('transaction {}: Voltage, Current.Import and Power.Active.Import present',
                        transaction_id)
            ELSE format('transaction {}: {} missing in periodic samples (got {})', transaction_id,
                        array_to_string(missing, ', '), array_to_string(list_sort(measurands), ', '))
       END,
       [{'ts': start_ts, 'unique_id': start_unique_id}]
FROM (SELECT *,
             list_filter(['Voltage', 'Current.Import', 'Power.Active.Import'],
                         lambda m: NOT list_contains(coalesce(measurands, []), m)) AS missing
      FROM per_tx
      WHERE periodic_count > 0)
UNION ALL
SELECT charge_point_id, 'samples received', CASE WHEN ran_offline THEN 'note' ELSE 'fail' END,
       format('transaction {} lasted {:.0f} s without any meter value{}', transaction_id,
              (epoch_us(stop_timestamp) - epoch_us(start_timestamp)) / 1e6,
              CASE WHEN ran_offline
                   THEN ' (it ran while the charger was offline: judged by function 14)'
                   ELSE '' END),
       [{'ts': start_ts, 'unique_id': start_unique_id},
        {'ts': stop_ts, 'unique_id': stop_unique_id}]
FROM per_tx
WHERE sample_count = 0
  AND (epoch_us(stop_timestamp) - epoch_us(start_timestamp)) / 1e6 > $max_gap_s
UNION ALL
SELECT charge_point_id, 'interval while Charging', 'fail',
       format('transaction {}: meter values {:.0f} s apart while Charging (at most {} s)',
              transaction_id, gap_s, $max_gap_s),
       [{'ts': previous_ts, 'unique_id': previous_unique_id}, {'ts': ts, 'unique_id': unique_id}]
FROM judged
WHERE gap_s > $max_gap_s
UNION ALL
SELECT charge_point_id, 'configured interval', 'fail',
       format('transaction {}: meter values {:.0f} s apart, TxUpdatedInterval is {} s',
              transaction_id, gap_s, interval_s),
       [{'ts': previous_ts, 'unique_id': previous_unique_id}, {'ts': ts, 'unique_id': unique_id}]
FROM judged
WHERE interval_s IS NOT NULL AND gap_s > interval_s + $sample_tolerance_s
UNION ALL
SELECT charge_point_id, 'interval while Charging', 'pass',
       format('transaction {}: largest gap while Charging {:.0f} s{}', transaction_id, max(gap_s),
              CASE WHEN max(interval_s) IS NOT NULL
                   THEN format(' (TxUpdatedInterval {} s)', max(interval_s)) ELSE '' END),
       NULL
FROM judged
GROUP BY charge_point_id, transaction_id
