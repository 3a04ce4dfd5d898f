/*+++
id = "offline-replay-v201"
title = "Get past charge transactions (offline replay)"
criterion = """When the charger reconnects after being offline, the TransactionEvents it queued are
delivered: no seqNo gap in any transaction (seqNo contiguous from 0), every event that happened while
the charger was offline carries offline = true, and the queued events come in order (seqNo and
timestamp rising) after the reconnect. A lost event (seqNo gap) fails; so does an event from the
offline period without the offline flag, or one delivered out of order."""
function = 14
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 E12 Inform CSMS of an Offline Occurred Transaction", "OCPP 2.0.1 E01 (seqNo)", "OCTT TC_E_53", "OCTT TC_E_29", "OCTT TC_E_31"]
[params]
clock_tolerance_s = 1.0   # an event stamped less than this before the reconnect was not queued
+++*/
-- OCPP 2.0.1 E12.FR.xx: TransactionEvents of events that occurred while offline are sent after the
-- connection is back, with offline = true; TransactionEventRequest seqNo "helps with determining if
-- all messages of a transaction have been received" (E01-E07: numbered from 0 per transaction).
WITH connection_events AS (
    SELECT DISTINCT charge_point_id FROM frames WHERE event IN ('open', 'close')
),
gaps AS (
    SELECT charge_point_id, offline_from, opened_at AS offline_until, offline_s
    FROM connections
    WHERE offline_s > 0 AND ocpp_version IN ('2.0.1', '2.1')
),
events AS (
    SELECT e.*,
           EXISTS (SELECT 1 FROM gaps g
                   WHERE g.charge_point_id = e.charge_point_id
                     AND e.timestamp > g.offline_from
                     AND e.timestamp < g.offline_until
                         - to_microseconds(CAST($clock_tolerance_s * 1e6 AS BIGINT)))
               AS in_gap
    FROM transaction_events e
    WHERE e.transaction_id IS NOT NULL
),
per_tx AS (
    SELECT charge_point_id, transaction_id,
           min(ts) AS first_ts, arg_min(unique_id, ts) AS first_unique_id,
           max(ts) AS last_ts, arg_max(unique_id, ts) AS last_unique_id,
           list(DISTINCT seq_no ORDER BY seq_no) FILTER (WHERE seq_no IS NOT NULL) AS seq_nos,
           bool_or(in_gap OR offline) AS offline_event,
           min(timestamp) AS first_timestamp, max(timestamp) AS last_timestamp,
           count(*) FILTER (WHERE in_gap) AS offline_events,
           bool_or(event_type = 'Ended') AS ended
    FROM events
    GROUP BY ALL
),
missing AS (
    SELECT *,
           -- it had an event in an offline period, or it ran through one (events before and
           -- after it, or none after it yet)
           offline_event OR EXISTS (
               SELECT 1 FROM gaps g
               WHERE g.charge_point_id = per_tx.charge_point_id
                 AND g.offline_from > per_tx.first_timestamp
                 AND (g.offline_until < per_tx.last_timestamp OR NOT per_tx.ended))
               AS touched_offline,
           list_filter(range(0, coalesce(list_max(seq_nos), -1) + 1)::BIGINT[],
                       lambda n: NOT list_contains(seq_nos, n)) AS lost
    FROM per_tx
),
delivered AS (   -- each transaction's events in delivery order
    SELECT *,
           lag(seq_no) OVER w AS previous_seq_no_delivered,
           lag(timestamp) OVER w AS previous_timestamp,
           lag(unique_id) OVER w AS previous_unique_id,
           lag(ts) OVER w AS previous_ts
    FROM events
    WINDOW w AS (PARTITION BY charge_point_id, transaction_id ORDER BY ts, seq)
)
SELECT charge_point_id, format('transaction {} events', transaction_id) AS "check",
       CASE WHEN len(lost) > 0 THEN 'fail' ELSE 'pass' END AS verdict,
       CASE WHEN len(lost) > 0
            THEN format('transaction {}: seqNo {} never received (events lost)', transaction_id,
                        array_to_string(lost, ', '))
            ELSE format('transaction {}: seqNo 0..{} contiguous, {} event(s) from the offline '
                        || 'period replayed with offline = true', transaction_id,
                        list_max(seq_nos), offline_events) END AS detail,
       [{'ts': first_ts, 'unique_id': first_unique_id},
        {'ts': last_ts, 'unique_id': last_unique_id}] AS evidence
FROM missing
WHERE touched_offline OR len(lost) > 0
UNION ALL
SELECT charge_point_id, format('transaction {} offline flag', transaction_id), 'fail',
       format('TransactionEvent {} (seqNo {}, {}) happened while the charger was offline but '
              || 'has offline = false', event_type, seq_no,
              strftime(timestamp, '%Y-%m-%dT%H:%M:%SZ')),
       [{'ts': ts, 'unique_id': unique_id}]
FROM events
WHERE in_gap AND NOT offline
UNION ALL
SELECT charge_point_id, format('transaction {} delivery order', transaction_id), 'fail',
       format('TransactionEvent seqNo {} ({}) delivered after seqNo {} ({}): not in order', seq_no,
              strftime(timestamp, '%Y-%m-%dT%H:%M:%SZ'), previous_seq_no_delivered,
              strftime(previous_timestamp, '%Y-%m-%dT%H:%M:%SZ')),
       [{'ts': previous_ts, 'unique_id': previous_unique_id}, {'ts': ts, 'unique_id': unique_id}]
FROM delivered
WHERE (late OR offline) AND seq_no < previous_seq_no_delivered
UNION ALL
SELECT DISTINCT charge_point_id, 'connections', 'note',
       'the capture has no connection events (a log imported without connection lines): '
       || 'offline periods cannot be seen; seqNo gaps still are',
       []::STRUCT(ts TIMESTAMPTZ, unique_id VARCHAR)[]
FROM transaction_events
WHERE charge_point_id NOT IN (SELECT charge_point_id FROM connection_events)
