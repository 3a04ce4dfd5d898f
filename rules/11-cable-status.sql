/*+++
id = "cable-status"
title = "Charging cable connection status"
criterion = """Connector status changes follow the transitions OCPP 1.6 allows (section 4.9)
through Preparing, Charging, SuspendedEV/EVSE and Finishing; a cable plugged in without a
transaction times out from Preparing to Available (or Finishing) around the charger's
ConnectionTimeOut. A Faulted after Preparing is a fault, not a timeout; leaving Preparing well before
ConnectionTimeOut is an unplugged cable (a note)."""
function = 11
severity = "error"
references = ["OCPP 1.6 section 4.9 Status Notification (transition table)", "OCPP 1.6 section 9.1.6 ConnectionTimeOut", "OCTT TC_007"]
[params]
preparing_timeout_s = 300   # longest a connector may stay Preparing without a transaction
connection_timeout_tolerance_s = 15   # slack around ConnectionTimeOut for the timeout to count
+++*/
-- OCPP 1.6 section 4.9, the table of status transitions for connectors 1 and up (A1..I8).
-- A repeated status is not a transition, and a reboot (BootNotification) resets the connector.
WITH allowed(from_status, to_status) AS (
    VALUES
    ('Available', 'Preparing'), ('Available', 'Charging'), ('Available', 'SuspendedEV'),
    ('Available', 'SuspendedEVSE'), ('Available', 'Reserved'), ('Available', 'Unavailable'),
    ('Available', 'Faulted'),
    ('Preparing', 'Available'), ('Preparing', 'Charging'), ('Preparing', 'SuspendedEV'),
    ('Preparing', 'SuspendedEVSE'), ('Preparing', 'Finishing'), ('Preparing', 'Faulted'),
    ('Charging', 'Available'), ('Charging', 'SuspendedEV'), ('Charging', 'SuspendedEVSE'),
    ('Charging', 'Finishing'), ('Charging', 'Unavailable'), ('Charging', 'Faulted'),
    ('SuspendedEV', 'Available'), ('SuspendedEV', 'Charging'), ('SuspendedEV', 'SuspendedEVSE'),
    ('SuspendedEV', 'Finishing'), ('SuspendedEV', 'Unavailable'), ('SuspendedEV', 'Faulted'),
    ('SuspendedEVSE', 'Available'), ('SuspendedEVSE', 'Charging'),
    ('SuspendedEVSE', 'SuspendedEV'), ('SuspendedEVSE', 'Finishing'),
    ('SuspendedEVSE', 'Unavailable'), ('SuspendedEVSE', 'Faulted'),
    ('Finishing', 'Available'), ('Finishing', 'Preparing'), ('Finishing', 'Unavailable'),
    ('Finishing', 'Faulted'),
    ('Reserved', 'Available'), ('Reserved', 'Preparing'), ('Reserved', 'Unavailable'),
    ('Reserved', 'Faulted'),
    ('Unavailable', 'Available'), ('Unavailable', 'Preparing'), ('Unavailable', 'Charging'),
    ('Unavailable', 'SuspendedEV'), ('Unavailable', 'SuspendedEVSE'), ('Unavailable', 'Faulted'),
    ('Faulted', 'Available'), ('Faulted', 'Preparing'), ('Faulted', 'Charging'),
    ('Faulted', 'SuspendedEV'), ('Faulted', 'SuspendedEVSE'), ('Faulted', 'Finishing'),
    ('Faulted', 'Reserved'), ('Faulted', 'Unavailable')
),
statuses AS (
    SELECT s.*,
           lead(s.status) OVER w AS next_status,
           lead(s.ts) OVER w AS next_ts,
           lead(s.unique_id) OVER w AS next_unique_id
    FROM status_notifications s
    WHERE s.connector_id > 0
    WINDOW w AS (PARTITION BY s.charge_point_id, s.connector_id ORDER BY s.ts)
),
transitions AS (
    SELECT s.*, a.from_status IS NOT NULL AS is_allowed
    FROM statuses s
    LEFT JOIN allowed a ON a.from_status = s.previous_status AND a.to_status = s.status
    WHERE s.previous_status IS NOT NULL AND s.previous_status <> s.status
      AND NOT EXISTS (SELECT 1 FROM boots b
                      WHERE b.charge_point_id = s.charge_point_id
                        AND b.ts > s.previous_ts AND b.ts <= s.ts)
),
-- OCPP 1.6 section 9.1.6 ConnectionTimeOut: "Interval (from successful authorization) until
-- incipient charging session is automatically canceled due to failure of EV user to (correctly)
-- insert the charging cable connector(s) into the appropriate connector(s)."
connection_timeout AS (
    SELECT charge_point_id, arg_max(TRY_CAST(value AS DOUBLE), ts) AS timeout_s
    FROM configuration
    WHERE key = 'ConnectionTimeOut'
      AND (source = 'GetConfiguration' OR status IN ('Accepted', 'RebootRequired'))
    GROUP BY charge_point_id
),
capture_end AS (
    SELECT charge_point_id, max(ts) AS last_ts FROM frames GROUP BY charge_point_id
),
preparing AS (   -- each stretch of Preparing and how it ended
    SELECT s.*, e.last_ts, c.timeout_s,
           (epoch_us(coalesce(s.next_ts, e.last_ts)) - epoch_us(s.ts)) / 1e6 AS lasted_s
    FROM statuses s
    JOIN capture_end e USING (charge_point_id)
    LEFT JOIN connection_timeout c USING (charge_point_id)
    WHERE s.status = 'Preparing'
      AND (s.previous_status IS DISTINCT FROM 'Preparing')
)
SELECT charge_point_id, format('connector {}', connector_id) AS "check", 'fail' AS verdict,
       format('{} -> {} is not an allowed transition (OCPP 1.6 section 4.9)',
              previous_status, status) AS detail,
       [{'ts': previous_ts, 'unique_id': NULL}, {'ts': ts, 'unique_id': unique_id}] AS evidence
FROM transitions
WHERE NOT is_allowed
  AND previous_status IN (SELECT from_status FROM allowed)
  AND status IN (SELECT from_status FROM allowed)
UNION ALL
SELECT charge_point_id, format('connector {} plug-in timeout', connector_id),
       CASE WHEN coalesce(next_status, 'Preparing') NOT IN ('Available', 'Finishing') THEN 'fail'
            WHEN timeout_s IS NULL THEN 'pass'
            WHEN lasted_s < timeout_s - $connection_timeout_tolerance_s THEN 'note'
            WHEN lasted_s > timeout_s + $connection_timeout_tolerance_s THEN 'fail'
            ELSE 'pass' END,
       CASE WHEN coalesce(next_status, 'Preparing') NOT IN ('Available', 'Finishing')
                THEN format('connector {} stayed Preparing for {:.0f} s without a transaction',
                            connector_id, lasted_s)
                     || coalesce(format(' (then {})', next_status), '')
            WHEN timeout_s IS NULL
                THEN format('Preparing timed out to {} after {:.0f} s (no transaction started; '
                            || 'ConnectionTimeOut not in the capture, so not compared)',
                            next_status, lasted_s)
            WHEN lasted_s < timeout_s - $connection_timeout_tolerance_s
                THEN format('Preparing -> {} after {:.0f} s, before ConnectionTimeOut {:.0f} s: '
                            || 'the cable was unplugged, not a timeout', next_status, lasted_s,
                            timeout_s)
            WHEN lasted_s > timeout_s + $connection_timeout_tolerance_s
                THEN format('Preparing timed out to {} only after {:.0f} s, beyond '
                            || 'ConnectionTimeOut {:.0f} s', next_status, lasted_s, timeout_s)
            ELSE format('Preparing timed out to {} after {:.0f} s (ConnectionTimeOut {:.0f} s, '
                        || 'no transaction started)', next_status, lasted_s, timeout_s) END,
       list_filter([{'ts': ts, 'unique_id': unique_id},
                    {'ts': next_ts, 'unique_id': next_unique_id}], lambda e: e.ts IS NOT NULL)
FROM preparing
WHERE next_status IN ('Available', 'Finishing')
   OR (lasted_s > $preparing_timeout_s
       AND coalesce(next_status, 'Preparing') NOT IN
           ('Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing'))
UNION ALL
SELECT charge_point_id, 'transitions', 'pass',
       format('{} status changes through {}, all allowed by OCPP 1.6 section 4.9', count(*),
              array_to_string(list_sort(list(DISTINCT status)), ', ')),
       NULL
FROM transitions
GROUP BY charge_point_id
HAVING bool_or(status = 'Preparing' OR previous_status = 'Preparing')
