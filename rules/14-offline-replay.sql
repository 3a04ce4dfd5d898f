/*+++
id = "offline-replay"
title = "Get past charge transactions (offline replay)"
criterion = """When the charger reconnects after being offline, the transaction messages it queued
are delivered automatically, in chronological order: for every transaction running during the
offline gap, StartTransaction/StopTransaction and the meter values covering the gap at the sample
interval. "Start and stop received, meter values not received" fails. Queued messages come after the
reconnect, before anything newer, in chronological order, across connections: a queued
MeterValues delivered after its transaction's StopTransaction (say, only after a later reboot)
fails."""
function = 14
severity = "error"
references = ["OCPP 1.6 section 4.7 (transaction-related messages are queued while offline)", "OCPP 1.6 section 3.3 Transaction-related messages", "OCTT TC_036"]
[params]
late_after_s = 60          # view parameter: older than delivery by this = from the offline queue
sample_interval_s = 60     # sample interval when no MeterValueSampleInterval is known
min_coverage = 0.8         # share of the expected samples in the gap that must arrive
+++*/
-- OCPP 1.6 section 3.3: "The Charge Point SHOULD deliver transaction-related messages to the Central
-- System in chronological order", queued while offline and delivered "as soon as possible" after.
WITH -- A capture without open/close rows (an imported log without connection lines) cannot show
-- whether the charger was connected: what depends on it is a note, never a failure.
connection_events AS (
    SELECT DISTINCT charge_point_id FROM frames WHERE event IN ('open', 'close')
),
gaps AS (
    SELECT charge_point_id, connection_id, offline_from, opened_at AS offline_until, offline_s
    FROM connections
    WHERE offline_s > 0
),
sample_intervals AS (
    SELECT charge_point_id, ts, TRY_CAST(value AS INTEGER) AS interval_s
    FROM configuration
    WHERE key = 'MeterValueSampleInterval'
      AND (source = 'GetConfiguration' OR status = 'Accepted')
      AND TRY_CAST(value AS INTEGER) > 0
),
affected AS (   -- transactions running during a gap, by the charger's clock
    SELECT g.*, t.transaction_id, t.start_ts, t.start_unique_id, t.stop_ts, t.stop_unique_id,
           greatest(g.offline_from, t.start_timestamp) AS covered_from,
           least(g.offline_until, coalesce(t.stop_timestamp, g.offline_until)) AS covered_until
    FROM gaps g
    JOIN transactions t
      ON t.charge_point_id = g.charge_point_id
     AND t.start_timestamp < g.offline_until
     AND (t.stop_timestamp IS NULL OR t.stop_timestamp > g.offline_from)
     AND t.transaction_id IS NOT NULL
),
-- The charger's own cadence while online: a charger that samples more sparsely than configured
-- fails function 8 for that, and is judged here only on whether it replayed what it sampled.
periodic AS (
    SELECT charge_point_id, transaction_id, timestamp,
           lag(timestamp) OVER (PARTITION BY charge_point_id, transaction_id ORDER BY timestamp)
               AS previous_timestamp
    FROM (SELECT DISTINCT charge_point_id, transaction_id, timestamp
          FROM meter_samples
          WHERE context IN ('Sample.Periodic', 'Transaction.Begin') AND timestamp IS NOT NULL
            AND transaction_id IS NOT NULL)
),
cadence AS (
    SELECT charge_point_id,
           median((epoch_us(timestamp) - epoch_us(previous_timestamp)) / 1e6) AS observed_s
    FROM periodic
    WHERE previous_timestamp IS NOT NULL
    GROUP BY charge_point_id
),
with_interval AS (
    SELECT a.*,
           greatest(coalesce(i.interval_s, $sample_interval_s), coalesce(c.observed_s, 0))
               AS interval_s
    FROM affected a
    LEFT JOIN cadence c ON c.charge_point_id = a.charge_point_id
    ASOF LEFT JOIN sample_intervals i
        ON i.charge_point_id = a.charge_point_id AND a.offline_from >= i.ts
),
covered AS (
    SELECT w.*,
           (epoch_us(covered_until) - epoch_us(covered_from)) / 1e6 AS covered_s,
           floor((epoch_us(covered_until) - epoch_us(covered_from)) / 1e6 / interval_s)
               AS expected,
           (SELECT count(DISTINCT s.timestamp)
            FROM meter_samples s
            WHERE s.charge_point_id = w.charge_point_id AND s.transaction_id = w.transaction_id
              AND s.timestamp >= w.covered_from AND s.timestamp <= w.covered_until) AS received
    FROM with_interval w
),
-- Every transaction message of a charger that was offline, in delivery order across its
-- connections: a queued one (stamped before the connection it came on was opened, so it waited in
-- the charger's queue) must not come after a newer one, even on a later connection.
replayed AS (
    SELECT m.charge_point_id, m.connection_id, m.ts, m.seq, m.unique_id, m.action, c.opened_at,
           TRY_CAST(json_extract_string(m.payload, '$.transactionId') AS BIGINT)
               AS transaction_id,
           coalesce(TRY_CAST(json_extract_string(m.payload, '$.timestamp') AS TIMESTAMPTZ),
                    TRY_CAST(json_extract_string(m.payload, '$.meterValue[0].timestamp')
                             AS TIMESTAMPTZ)) AS payload_ts
    FROM messages m
    JOIN connections c ON c.connection_id = m.connection_id
    WHERE m.message_type = 2 AND m.direction = 'cp_to_cs'
      AND m.action IN ('StartTransaction', 'StopTransaction', 'MeterValues')
      AND m.charge_point_id IN (SELECT charge_point_id FROM gaps)
),
ordered AS (
    SELECT *,
           coalesce(payload_ts < opened_at - INTERVAL 1 SECOND, false) AS queued,
           lag(payload_ts) OVER w AS previous_payload_ts,
           lag(action) OVER w AS previous_action,
           lag(unique_id) OVER w AS previous_unique_id,
           lag(ts) OVER w AS previous_ts
    FROM replayed
    WINDOW w AS (PARTITION BY charge_point_id ORDER BY ts, seq)
),
after_stop AS (   -- queued MeterValues of a transaction that arrived after its StopTransaction
    SELECT r.*, t.stop_ts, t.stop_unique_id, t.stop_connection_id
    FROM ordered r
    JOIN transactions t
      ON t.charge_point_id = r.charge_point_id AND t.transaction_id = r.transaction_id
    WHERE r.action = 'MeterValues' AND r.queued AND t.stop_ts IS NOT NULL AND r.ts > t.stop_ts
)
SELECT charge_point_id,
       format('transaction {} offline {:.0f} s', transaction_id, offline_s) AS "check",
       CASE WHEN expected < 1 OR received >= expected * $min_coverage THEN 'pass'
            ELSE 'fail' END AS verdict,
       CASE WHEN stop_ts IS NULL THEN 'start received, stop not (yet) received'
            ELSE 'start and stop received' END
       || CASE WHEN expected < 1
               THEN format(' (no meter values due in {:.0f} s offline)', covered_s)
               WHEN received = 0 THEN ', meter values not received'
               WHEN received < expected * $min_coverage
                   THEN format(', meter values incomplete ({} of {} expected)', received,
                               expected::BIGINT)
               ELSE format(', meter values received ({} samples in the gap, {} expected)',
                           received, expected::BIGINT) END AS detail,
       list_filter([{'ts': start_ts, 'unique_id': start_unique_id},
                    {'ts': stop_ts, 'unique_id': stop_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM covered
UNION ALL
SELECT charge_point_id, 'delivery order', 'fail',
       format('queued {} ({}) delivered after {} ({}): not in chronological order', action,
              strftime(payload_ts, '%Y-%m-%dT%H:%M:%SZ'), previous_action,
              strftime(previous_payload_ts, '%Y-%m-%dT%H:%M:%SZ')),
       [{'ts': previous_ts, 'unique_id': previous_unique_id}, {'ts': ts, 'unique_id': unique_id}]
FROM ordered
WHERE queued AND payload_ts < previous_payload_ts - INTERVAL 1 SECOND
UNION ALL
SELECT charge_point_id, format('transaction {} delivery', transaction_id), 'fail',
       format('queued MeterValues of transaction {} (sampled {}) delivered after its '
              || 'StopTransaction{}', transaction_id,
              strftime(payload_ts, '%Y-%m-%dT%H:%M:%SZ'),
              CASE WHEN connection_id <> stop_connection_id
                   THEN ', on a later connection' ELSE '' END),
       [{'ts': stop_ts, 'unique_id': stop_unique_id}, {'ts': ts, 'unique_id': unique_id}]
FROM after_stop
UNION ALL
SELECT DISTINCT charge_point_id, 'connections', 'note',
       'the capture has no connection events (a log imported without connection lines): '
       || 'offline periods and their replay cannot be seen',
       []::STRUCT(ts TIMESTAMPTZ, unique_id VARCHAR)[]
FROM frames
WHERE charge_point_id NOT IN (SELECT charge_point_id FROM connection_events)
  AND charge_point_id IS NOT NULL
