/*+++
id = "protocol-clock-drift"
title = "Charger clock in step with the recorder's"
criterion = """The timestamps the charger puts in its payloads (StatusNotification, and
StartTransaction/StopTransaction sent live) do not drift from the recorder's clock by more than a
parameter (median over the capture)."""
ocpp_versions = ["1.6", "2.0.1", "2.1"]
severity = "warning"   # the recorder's clock may itself be off; a drift skews billing, not protocol
references = ["OCPP 1.6 section 4.2 (currentTime in BootNotification.conf / Heartbeat.conf to sync the clock)"]
[params]
max_drift_s = 60   # largest tolerated median offset between the charger's clock and the recorder's
+++*/
-- Messages delivered late from the offline queue carry old timestamps on purpose; they are left out.
WITH stamps AS (
    SELECT charge_point_id, ts, unique_id, timestamp AS payload_ts
    FROM status_notifications
    WHERE timestamp IS NOT NULL
    UNION ALL
    SELECT charge_point_id, start_ts, start_unique_id, start_timestamp
    FROM transactions
    WHERE start_timestamp IS NOT NULL AND NOT start_late
    UNION ALL
    SELECT charge_point_id, stop_ts, stop_unique_id, stop_timestamp
    FROM transactions
    WHERE stop_timestamp IS NOT NULL AND NOT stop_late
),
per_charger AS (
    SELECT charge_point_id,
           median((epoch_us(payload_ts) - epoch_us(ts)) / 1e6) AS drift_s,
           count(*) AS samples,
           -- the worst timestamp as evidence; ties go to the earliest, so reports are repeatable
           arg_max({'ts': ts, 'unique_id': unique_id},
                   {'drift_us': abs(epoch_us(payload_ts) - epoch_us(ts)),
                    'earlier': -epoch_us(ts), 'unique_id': unique_id}) AS worst
    FROM stamps
    GROUP BY charge_point_id
)
SELECT charge_point_id, 'clock' AS "check",
       CASE WHEN abs(drift_s) > $max_drift_s THEN 'fail' ELSE 'pass' END AS verdict,
       format('charger clock {:.1f} s {} the recorder''s (median of {} timestamps, at most {} s)',
              abs(drift_s), CASE WHEN drift_s < 0 THEN 'behind' ELSE 'ahead of' END, samples,
              $max_drift_s) AS detail,
       [worst] AS evidence
FROM per_charger
