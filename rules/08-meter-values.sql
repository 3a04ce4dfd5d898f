/*+++
id = "meter-values"
title = "Receive meter reading"
criterion = """Meter values are received at the start and stop of each transaction
(Transaction.Begin / Transaction.End, or StopTransaction transactionData); while Charging they are
at most 30 s apart and at the configured MeterValueSampleInterval, judged by the samples'
timestamps; Voltage, Current.Import and Power.Active.Import are present. A transaction that ran while
the charger was offline is function 14's business for the meter values it lost (holes in the gap,
no Begin/End, none at all): noted here, not charged twice."""
function = 8
severity = "error"
references = ["OCPP 1.6 section 4.7 Meter Values", "OCPP 1.6 section 7.31 SampledValue", "OCPP 1.6 section 9.1.17 MeterValueSampleInterval", "OCTT TC_034"]
[params]
max_gap_s = 30        # the platform's ceiling between samples while Charging
sample_tolerance_s = 5       # slack on top of the configured MeterValueSampleInterval
+++*/
WITH tx AS (
    SELECT *
    FROM transactions
    WHERE transaction_id IS NOT NULL
),
-- The samples are summed up per transaction and per sample time before they meet the
-- transactions: a join of every sample with its transaction, read twice, cost most of the rule.
sample_totals AS (
    SELECT charge_point_id, transaction_id,
           bool_or(context = 'Transaction.Begin') AS has_begin,
           bool_or(context = 'Transaction.End' OR source = 'StopTransaction') AS has_end,
           list(DISTINCT measurand) FILTER (WHERE context = 'Sample.Periodic') AS measurands,
           count(timestamp) AS sample_count,
           count(timestamp) FILTER (WHERE context = 'Sample.Periodic') AS periodic_count
    FROM meter_samples
    WHERE transaction_id IS NOT NULL
    GROUP BY ALL
),
per_tx AS (   -- (DISTINCT: one row per transaction, as grouping the joined samples gave)
    SELECT DISTINCT t.charge_point_id, t.transaction_id, t.start_ts, t.start_unique_id, t.stop_ts,
           t.stop_unique_id, t.start_timestamp, t.stop_timestamp,
           EXISTS (SELECT 1 FROM connections c   -- ran while the charger was offline
                   WHERE c.charge_point_id = t.charge_point_id AND c.offline_s > 0
                     AND c.offline_from < coalesce(t.stop_timestamp, c.opened_at)
                     AND c.opened_at > t.start_timestamp) AS ran_offline,
           coalesce(s.has_begin, false) AS has_begin, coalesce(s.has_end, false) AS has_end,
           s.measurands, coalesce(s.sample_count, 0) AS sample_count,
           coalesce(s.periodic_count, 0) AS periodic_count
    FROM tx t
    LEFT JOIN sample_totals s
        ON s.charge_point_id = t.charge_point_id AND s.transaction_id = t.transaction_id
),
instants AS (   -- distinct sample times per transaction, by the charger's clock
    SELECT charge_point_id, transaction_id, tx_connector, timestamp,
           min(ts) AS ts, min(unique_id) AS unique_id
    FROM (
        SELECT s.charge_point_id, s.transaction_id,
               coalesce(s.connector_id, t.connector_id) AS tx_connector, s.timestamp, s.ts,
               s.unique_id
        FROM (SELECT charge_point_id, transaction_id, connector_id, timestamp,
                     min(ts) AS ts, min(unique_id) AS unique_id
              FROM meter_samples
              WHERE timestamp IS NOT NULL AND transaction_id IS NOT NULL
              GROUP BY ALL) s
        JOIN tx t ON t.charge_point_id = s.charge_point_id AND t.transaction_id = s.transaction_id
    )
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
sample_intervals AS (   -- MeterValueSampleInterval as reported or as set (accepted)
    SELECT charge_point_id, ts, TRY_CAST(value AS INTEGER) AS interval_s
    FROM configuration
    WHERE key = 'MeterValueSampleInterval'
      AND (source = 'GetConfiguration' OR status = 'Accepted')
      AND TRY_CAST(value AS INTEGER) > 0
),
judged AS (
    SELECT h.*,
           (epoch_us(h.timestamp) - epoch_us(h.previous_timestamp)) / 1e6 AS gap_s,
           i.interval_s
    FROM (SELECT * FROM holes WHERE previous_timestamp IS NOT NULL) h
    ASOF JOIN status_notifications n
        ON n.charge_point_id = h.charge_point_id AND n.connector_id = h.tx_connector
       AND h.previous_timestamp >= n.ts
    ASOF LEFT JOIN sample_intervals i
        ON i.charge_point_id = h.charge_point_id AND h.previous_timestamp >= i.ts
    WHERE n.status = 'Charging'
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
                THEN format('transaction {}: no meter value at stop (Transaction.End or '
                            || 'transactionData)', transaction_id)
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
       format('transaction {}: meter values {:.0f} s apart, MeterValueSampleInterval is {} s',
              transaction_id, gap_s, interval_s),
       [{'ts': previous_ts, 'unique_id': previous_unique_id}, {'ts': ts, 'unique_id': unique_id}]
FROM judged
WHERE interval_s IS NOT NULL AND gap_s > interval_s + $sample_tolerance_s
UNION ALL
SELECT charge_point_id, 'interval while Charging', 'pass',
       format('transaction {}: largest gap while Charging {:.0f} s{}', transaction_id, max(gap_s),
              CASE WHEN max(interval_s) IS NOT NULL
                   THEN format(' (MeterValueSampleInterval {} s)', max(interval_s)) ELSE '' END),
       NULL
FROM judged
GROUP BY charge_point_id, transaction_id
