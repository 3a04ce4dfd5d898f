/*+++
id = "heartbeat-v201"
title = "Heartbeat (automatic)"
criterion = """Heartbeats are received; while connected, heartbeats are never further apart than
the interval the backend set (BootNotification answer, or an accepted SetVariables of
OCPPCommCtrlr.HeartbeatInterval) plus a tolerance, and never more than 1 hour apart. After a
TriggerMessage(Heartbeat) a Heartbeat follows."""
function = 2
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 G02 Heartbeat", "OCPP 2.0.1 B01.FR.04 (interval from BootNotificationResponse)", "OCPP 2.0.1 F06 Trigger Message", "OCTT TC_F_20"]
[params]
heartbeat_tolerance_s = 2          # fixed slack on top of the interval the backend set
heartbeat_tolerance_ratio = 0.2    # plus this share of the interval (network and timer jitter)
max_interval_s = 3600    # the platform's ceiling: a heartbeat at least every hour
trigger_timeout_s = 30   # a triggered Heartbeat must follow within this
+++*/
-- OCPP 2.0.1 G02.FR.01: the Charging Station sends a Heartbeat when no other message was sent for
-- the configured interval; the interval comes from BootNotificationResponse (B01.FR.04) or
-- OCPPCommCtrlr.HeartbeatInterval. A charger that sends Heartbeats anyway is judged on them.
WITH -- A capture without open/close rows (an imported log without connection lines) cannot show
-- whether the charger was connected: what depends on it is a note, never a failure.
connection_events AS (
    SELECT DISTINCT charge_point_id FROM frames WHERE event IN ('open', 'close')
),
intervals AS (
    SELECT charge_point_id, ts, interval_s, 'BootNotification' AS source
    FROM boots
    WHERE status = 'Accepted' AND interval_s > 0 AND ocpp_version IN ('2.0.1', '2.1')
    UNION ALL
    SELECT charge_point_id, ts, TRY_CAST(value AS INTEGER), 'SetVariables'
    FROM device_variables
    WHERE source = 'SetVariables' AND key = 'OCPPCommCtrlr.HeartbeatInterval'
      AND attribute_type = 'Actual' AND status = 'Accepted' AND TRY_CAST(value AS INTEGER) > 0
),
beats AS (
    SELECT charge_point_id, connection_id, call_ts AS ts, unique_id,
           lag(call_ts) OVER w AS previous_ts,
           lag(unique_id) OVER w AS previous_unique_id
    FROM calls
    WHERE action = 'Heartbeat' AND direction = 'cp_to_cs' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
    WINDOW w AS (PARTITION BY connection_id ORDER BY call_seq)
),
gaps AS (
    SELECT b.*,
           (epoch_us(b.ts) - epoch_us(b.previous_ts)) / 1e6 AS gap_s,
           least(greatest(coalesce(at_start.interval_s, at_end.interval_s),
                          coalesce(at_end.interval_s, at_start.interval_s))
                     * (1 + $heartbeat_tolerance_ratio) + $heartbeat_tolerance_s,
                 $max_interval_s + $heartbeat_tolerance_s) AS allowed_s,
           greatest(coalesce(at_start.interval_s, at_end.interval_s),
                    coalesce(at_end.interval_s, at_start.interval_s)) AS interval_s
    FROM (SELECT * FROM beats WHERE previous_ts IS NOT NULL) b
    ASOF LEFT JOIN intervals at_start
        ON at_start.charge_point_id = b.charge_point_id AND b.previous_ts >= at_start.ts
    ASOF LEFT JOIN intervals at_end
        ON at_end.charge_point_id = b.charge_point_id AND b.ts >= at_end.ts
),
silent AS (   -- connections that stayed up longer than allowed without a single Heartbeat
    SELECT c.charge_point_id, c.connection_id, c.opened_at,
           (epoch_us(c.closed_at) - epoch_us(c.opened_at)) / 1e6 AS connected_s,
           least(coalesce(i.interval_s * (1 + $heartbeat_tolerance_ratio), $max_interval_s),
                 $max_interval_s) + $heartbeat_tolerance_s AS allowed_s
    FROM connections c
    ASOF LEFT JOIN intervals i ON i.charge_point_id = c.charge_point_id AND c.closed_at >= i.ts
    WHERE c.ocpp_version IN ('2.0.1', '2.1') AND NOT EXISTS (SELECT 1 FROM beats b WHERE b.connection_id = c.connection_id)
),
triggers AS (
    SELECT t.*, h.ts AS heartbeat_ts, h.unique_id AS heartbeat_unique_id
    FROM (SELECT * FROM calls
          WHERE action = 'TriggerMessage' AND direction = 'cs_to_cp' AND NOT orphan_answer
            AND ocpp_version IN ('2.0.1', '2.1')
            AND json_extract_string(payload, '$.requestedMessage') = 'Heartbeat') t
    ASOF LEFT JOIN beats h ON h.charge_point_id = t.charge_point_id AND h.ts >= t.call_ts
)
SELECT charge_point_id, 'cadence' AS "check",
       CASE WHEN charge_point_id IN (SELECT charge_point_id FROM connection_events) THEN 'fail'
            ELSE 'note' END AS verdict,
       CASE WHEN charge_point_id IN (SELECT charge_point_id FROM connection_events)
            THEN format('heartbeats {:.0f} s apart while connected (allowed {:.0f} s{})', gap_s,
                        allowed_s,
                        CASE WHEN interval_s IS NULL THEN ', no interval set by the backend'
                             ELSE format(', interval {} s', interval_s) END)
            ELSE format('heartbeats {:.0f} s apart (allowed {:.0f} s); the capture has no '
                        || 'connection events, so whether the charger was connected in between '
                        || 'cannot be seen: not judged', gap_s, allowed_s) END AS detail,
       [{'ts': previous_ts, 'unique_id': previous_unique_id},
        {'ts': ts, 'unique_id': unique_id}] AS evidence
FROM gaps
WHERE gap_s > allowed_s
UNION ALL
SELECT charge_point_id, 'cadence', 'pass',
       format('{} heartbeats, largest gap {:.0f} s (interval {})',
              (SELECT count(*) FROM beats b WHERE b.charge_point_id = gaps.charge_point_id),
              max(gap_s), coalesce(max(interval_s)::VARCHAR || ' s', 'not set')),
       NULL
FROM gaps
GROUP BY charge_point_id
HAVING NOT bool_or(gap_s > allowed_s)   -- no pass line beside its own failures
UNION ALL
SELECT charge_point_id, 'heartbeats received',
       CASE WHEN charge_point_id IN (SELECT charge_point_id FROM connection_events) THEN 'fail'
            ELSE 'note' END,
       format('no Heartbeat in {:.0f} s connected (allowed {:.0f} s)', connected_s, allowed_s)
       || CASE WHEN charge_point_id IN (SELECT charge_point_id FROM connection_events) THEN ''
               ELSE '; the capture has no connection events, so the span is a guess: not judged'
          END,
       NULL
FROM silent
WHERE connected_s > allowed_s
UNION ALL
SELECT charge_point_id, 'TriggerMessage(Heartbeat)',
       CASE WHEN status = 'Accepted' AND heartbeat_ts IS NOT NULL
             AND (epoch_us(heartbeat_ts) - epoch_us(call_ts)) / 1e6 <= $trigger_timeout_s
            THEN 'pass' ELSE 'fail' END,
       CASE WHEN NOT answered THEN 'TriggerMessage(Heartbeat) not answered'
            WHEN answer_type = 'CALLERROR' THEN 'TriggerMessage(Heartbeat) answered ' || error_code
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'TriggerMessage(Heartbeat) answered ' || coalesce(status, 'without a status')
            WHEN heartbeat_ts IS NULL
              OR (epoch_us(heartbeat_ts) - epoch_us(call_ts)) / 1e6 > $trigger_timeout_s
                THEN format('no Heartbeat within {} s of TriggerMessage(Heartbeat)',
                            $trigger_timeout_s)
            ELSE format('Heartbeat {:.1f} s after TriggerMessage(Heartbeat)',
                        (epoch_us(heartbeat_ts) - epoch_us(call_ts)) / 1e6)
       END,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': heartbeat_ts, 'unique_id': heartbeat_unique_id}], lambda e: e.ts IS NOT NULL)
FROM triggers
