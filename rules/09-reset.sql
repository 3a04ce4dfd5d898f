/*+++
id = "reset"
title = "Reset CS (both hard and soft reset)"
criterion = """After a Hard or Soft Reset is accepted, the connection drops and the charger comes
back online: a BootNotification on a new connection, then StatusNotifications, within a
parameter."""
function = 9
severity = "error"
references = ["OCPP 1.6 section 5.14 Reset", "OCTT TC_004", "OCTT TC_005"]
[params]
boot_timeout_s = 300     # BootNotification within this after the Reset
reset_status_timeout_s = 60    # a StatusNotification within this after that BootNotification
+++*/
-- OCPP 1.6 section 5.14: "After receipt of a Reset.req, the Charge Point SHALL send a Reset.conf ...
-- and then reboot itself"; after a reboot it sends BootNotification (section 4.2).
WITH -- A capture without open/close rows (an imported log without connection lines) cannot show
-- whether the charger was connected: what depends on it is a note, never a failure.
connection_events AS (
    SELECT DISTINCT charge_point_id FROM frames WHERE event IN ('open', 'close')
),
resets AS (
    SELECT r.*, b.ts AS boot_ts, b.unique_id AS boot_unique_id,
           b.connection_id AS boot_connection_id
    FROM (SELECT *, json_extract_string(payload, '$.type') AS type
          FROM calls
          WHERE action = 'Reset' AND direction = 'cs_to_cp' AND NOT orphan_answer) r
    ASOF LEFT JOIN boots b ON b.charge_point_id = r.charge_point_id AND b.ts >= r.call_ts
),
judged AS (
    SELECT r.*,
           CASE WHEN boot_ts IS NOT NULL
                 AND (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6 <= $boot_timeout_s
                THEN boot_ts END AS booted_ts,
           (SELECT arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts)
            FROM status_notifications n
            WHERE n.charge_point_id = r.charge_point_id AND n.ts >= r.boot_ts
              AND (epoch_us(n.ts) - epoch_us(r.boot_ts)) / 1e6 <= $reset_status_timeout_s)
               AS back_status
    FROM resets r
)
SELECT charge_point_id,
       coalesce(type, '?') || ' reset' AS "check",
       CASE WHEN NOT answered OR answer_type = 'CALLERROR' THEN 'fail'
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'fail'
            WHEN booted_ts IS NULL OR back_status IS NULL OR (boot_connection_id = connection_id
                 AND charge_point_id IN (SELECT charge_point_id FROM connection_events))
                THEN 'fail'
            WHEN boot_connection_id = connection_id THEN 'note'
            ELSE 'pass' END AS verdict,
       CASE WHEN NOT answered THEN format('{} Reset not answered', type)
            WHEN answer_type = 'CALLERROR' THEN format('{} Reset answered {}', type, error_code)
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN format('{} Reset answered {}', type,
                            coalesce(status,
                                     'without a status'))
            WHEN booted_ts IS NULL
                THEN format('{} Reset accepted, but no BootNotification within {} s', type,
                            $boot_timeout_s)
            WHEN boot_connection_id = connection_id
                 AND charge_point_id IN (SELECT charge_point_id FROM connection_events)
                THEN format('{} Reset accepted, BootNotification without the connection dropping',
                            type)
            WHEN back_status IS NULL
                THEN format('back online after {:.0f} s, but no StatusNotification within {} s '
                            || 'of the BootNotification',
                            (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6, $reset_status_timeout_s)
            WHEN boot_connection_id = connection_id
                THEN format('{} Reset accepted, BootNotification after {:.0f} s, then a '
                            || 'StatusNotification; the capture has no connection events, so '
                            || 'whether the connection dropped cannot be seen: not judged', type,
                            (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6)
            ELSE format('{} reset: back online, BootNotification after {:.0f} s, '
                        || 'StatusNotification after {:.1f} s', type,
                        (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6,
                        (epoch_us(back_status.ts) - epoch_us(boot_ts)) / 1e6)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': booted_ts, 'unique_id': boot_unique_id}, back_status],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
