/*+++
id = "change-configuration"
title = "Set configuration (set parameters that can be configured)"
criterion = """After ChangeConfiguration (per key) the charger answers Accepted (NotSupported and
Rejected fail). The keys changed are reported, and whether a changed HeartbeatInterval shows in the
heartbeat cadence (a note)."""
function = 5
severity = "error"
references = ["OCPP 1.6 section 5.3 Change Configuration", "OCTT TC_021"]
[params]
heartbeat_tolerance_s = 2          # fixed slack when comparing the new HeartbeatInterval ...
heartbeat_tolerance_ratio = 0.2    # ... plus this share of it, with the cadence that follows
+++*/
-- OCPP 1.6 section 5.3: the Charge Point answers Accepted, Rejected, RebootRequired or
-- NotSupported. RebootRequired is an acceptance that takes effect after a reboot.
WITH changes AS (
    SELECT *
    FROM configuration
    WHERE source = 'ChangeConfiguration'
),
beats AS (
    SELECT charge_point_id, call_ts AS ts, unique_id,
           lag(call_ts) OVER (PARTITION BY connection_id ORDER BY call_seq) AS previous_ts
    FROM calls
    WHERE action = 'Heartbeat' AND direction = 'cp_to_cs' AND NOT orphan_answer
),
cadence AS (
    SELECT c.*, b.ts AS beat_ts, b.unique_id AS beat_unique_id,
           (epoch_us(b.ts) - epoch_us(b.previous_ts)) / 1e6 AS gap_s
    FROM (SELECT * FROM changes WHERE key = 'HeartbeatInterval' AND status = 'Accepted') c
    ASOF LEFT JOIN (SELECT * FROM beats WHERE previous_ts IS NOT NULL) b
        ON b.charge_point_id = c.charge_point_id AND b.previous_ts >= c.ts
)
SELECT charge_point_id,
       'ChangeConfiguration ' || coalesce(key, '(no key)') AS "check",
       CASE WHEN status IN ('Accepted', 'RebootRequired') THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN format('{} = {}: not answered', key, value)
            WHEN error_code IS NOT NULL
                THEN format('{} = {}: answered {}', key, value, error_code)
            ELSE format('{} = {}: {}', key, value, coalesce(status, 'no status'))
       END AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM changes
UNION ALL
SELECT charge_point_id, 'HeartbeatInterval in cadence', 'note',
       CASE WHEN gap_s IS NULL
                THEN format('HeartbeatInterval set to {} s; no two heartbeats after it to compare',
                            value)
            WHEN gap_s <= TRY_CAST(value AS DOUBLE) * (1 + $heartbeat_tolerance_ratio)
                          + $heartbeat_tolerance_s
                THEN format('HeartbeatInterval set to {} s shows in the cadence '
                            || '(next heartbeats {:.0f} s apart)', value, gap_s)
            ELSE format('HeartbeatInterval set to {} s does not show in the cadence '
                        || '(next heartbeats {:.0f} s apart)', value, gap_s)
       END,
       list_filter([{'ts': ts, 'unique_id': unique_id},
                    {'ts': beat_ts, 'unique_id': beat_unique_id}], lambda e: e.ts IS NOT NULL)
FROM cadence
