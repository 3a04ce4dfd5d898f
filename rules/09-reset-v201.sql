/*+++
id = "reset-v201"
title = "Reset CS (both Immediate and OnIdle reset)"
criterion = """After an Immediate or OnIdle Reset is accepted (or Scheduled, for OnIdle while a
transaction runs), the connection drops and the charger comes back online: a BootNotification with
reason RemoteReset on a new connection, then StatusNotifications, within a parameter. A transaction
running at an Immediate reset ends with stoppedReason ImmediateReset."""
function = 9
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 B11 Reset - Without Ongoing Transaction", "OCPP 2.0.1 B12 Reset - With Ongoing Transaction", "OCTT TC_B_20", "OCTT TC_B_21", "OCTT TC_B_22"]
[params]
boot_timeout_s = 300     # BootNotification within this after the Reset (or, when Scheduled, after its transaction ended)
reset_status_timeout_s = 60    # a StatusNotification within this after that BootNotification
+++*/
-- OCPP 2.0.1 B11.FR.xx: the Charging Station answers Accepted and resets; after the reboot it sends
-- BootNotificationRequest with reason RemoteReset. B12.FR.01/02: OnIdle with a transaction running is
-- answered Scheduled and waits for its end; Immediate ends it with stoppedReason ImmediateReset.
WITH connection_events AS (
    SELECT DISTINCT charge_point_id FROM frames WHERE event IN ('open', 'close')
),
resets AS (
    SELECT *, json_extract_string(payload, '$.type') AS type,
           TRY_CAST(json_extract_string(payload, '$.evseId') AS INTEGER) AS evse_id
    FROM calls
    WHERE action = 'Reset' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
),
booted AS (
    SELECT r.*, b.ts AS boot_ts, b.unique_id AS boot_unique_id,
           b.connection_id AS boot_connection_id, b.reason AS boot_reason
    FROM resets r
    ASOF LEFT JOIN (SELECT * FROM boots WHERE ocpp_version IN ('2.0.1', '2.1')) b
        ON b.charge_point_id = r.charge_point_id AND b.ts >= r.call_ts
),
judged AS (
    SELECT r.*,
           CASE WHEN boot_ts IS NOT NULL
                 AND ((epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6 <= $boot_timeout_s
                      OR r.status = 'Scheduled')
                THEN boot_ts END AS booted_ts,
           (SELECT arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts)
            FROM status_notifications n
            WHERE n.charge_point_id = r.charge_point_id AND n.ts >= r.boot_ts
              AND (epoch_us(n.ts) - epoch_us(r.boot_ts)) / 1e6 <= $reset_status_timeout_s)
               AS back_status,
           -- an Immediate reset's running transaction: its Ended event, and why it ended
           (SELECT arg_min({'ts': e.ts, 'unique_id': e.unique_id, 'reason': e.stopped_reason,
                            'transaction_id': e.transaction_id}, e.ts)
            FROM transaction_events e
            WHERE e.charge_point_id = r.charge_point_id AND e.event_type = 'Ended'
              AND e.ts > r.call_ts AND (r.boot_ts IS NULL OR e.ts < r.boot_ts)
              AND EXISTS (SELECT 1 FROM transaction_events s
                          WHERE s.charge_point_id = e.charge_point_id
                            AND s.transaction_id = e.transaction_id AND s.ts < r.call_ts))
               AS ended_tx
    FROM booted r
)
SELECT charge_point_id,
       coalesce(type, '?') || ' reset'
           || coalesce(format(' EVSE {}', evse_id), '') AS "check",
       CASE WHEN NOT answered OR answer_type = 'CALLERROR' THEN 'fail'
            WHEN status = 'Scheduled' AND booted_ts IS NULL THEN 'note'
            WHEN status NOT IN ('Accepted', 'Scheduled') OR status IS NULL THEN 'fail'
            WHEN evse_id IS NOT NULL THEN 'pass'   -- an EVSE reset does not reboot the station
            WHEN booted_ts IS NULL OR back_status IS NULL
              OR boot_reason IS DISTINCT FROM 'RemoteReset'
              OR (boot_connection_id = connection_id
                  AND charge_point_id IN (SELECT charge_point_id FROM connection_events))
                THEN 'fail'
            WHEN type = 'Immediate' AND ended_tx IS NOT NULL
             AND ended_tx.reason IS DISTINCT FROM 'ImmediateReset' THEN 'fail'
            WHEN boot_connection_id = connection_id THEN 'note'
            ELSE 'pass' END AS verdict,
       CASE WHEN NOT answered THEN format('{} Reset not answered', type)
            WHEN answer_type = 'CALLERROR' THEN format('{} Reset answered {}', type, error_code)
            WHEN status = 'Scheduled' AND booted_ts IS NULL
                THEN format('{} Reset Scheduled (a transaction runs); the reset after it is not '
                            || 'in the capture', type)
            WHEN status NOT IN ('Accepted', 'Scheduled') OR status IS NULL
                THEN format('{} Reset answered {}', type, coalesce(status, 'without a status'))
            WHEN evse_id IS NOT NULL
                THEN format('{} Reset of EVSE {} {}', type, evse_id, status)
            WHEN booted_ts IS NULL
                THEN format('{} Reset {}, but no BootNotification within {} s', type,
                            lower(status), $boot_timeout_s)
            WHEN boot_connection_id = connection_id
                 AND charge_point_id IN (SELECT charge_point_id FROM connection_events)
                THEN format('{} Reset accepted, BootNotification without the connection '
                            || 'dropping', type)
            WHEN boot_reason IS DISTINCT FROM 'RemoteReset'
                THEN format('{} Reset: back online, but BootNotification reason {}, not '
                            || 'RemoteReset', type, coalesce(boot_reason, 'missing'))
            WHEN back_status IS NULL
                THEN format('back online after {:.0f} s, but no StatusNotification within {} s '
                            || 'of the BootNotification',
                            (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6, $reset_status_timeout_s)
            WHEN type = 'Immediate' AND ended_tx IS NOT NULL
             AND ended_tx.reason IS DISTINCT FROM 'ImmediateReset'
                THEN format('Immediate reset ended transaction {} with stoppedReason {}, not '
                            || 'ImmediateReset', ended_tx.transaction_id, ended_tx.reason)
            WHEN boot_connection_id = connection_id
                THEN format('{} Reset accepted, BootNotification (RemoteReset) after {:.0f} s; '
                            || 'the capture has no connection events, so whether the connection '
                            || 'dropped cannot be seen: not judged', type,
                            (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6)
            ELSE format('{} reset: back online, BootNotification (RemoteReset) after {:.0f} s, '
                        || 'StatusNotification after {:.1f} s{}', type,
                        (epoch_us(boot_ts) - epoch_us(call_ts)) / 1e6,
                        (epoch_us(back_status.ts) - epoch_us(boot_ts)) / 1e6,
                        CASE WHEN ended_tx IS NOT NULL
                             THEN format(', transaction {} ended {}', ended_tx.transaction_id,
                                         ended_tx.reason) ELSE '' END)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': booted_ts, 'unique_id': boot_unique_id},
                    {'ts': back_status.ts, 'unique_id': back_status.unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
