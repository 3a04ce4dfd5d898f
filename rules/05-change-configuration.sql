/*+++
id = "change-configuration"
title = "Set configuration (set parameters that can be configured)"
criterion = """After ChangeConfiguration (per key) the charger answers Accepted (NotSupported and
Rejected fail). NotSupported for a key the charger does not have (reported in GetConfiguration's
unknownKey, or absent from a full GetConfiguration listing) is the spec's answer to a negative probe:
a note, not a failure. The keys changed are reported, and whether a changed HeartbeatInterval shows
in the heartbeat cadence (a note)."""
function = 5
severity = "error"
references = ["OCPP 1.6 section 5.3 Change Configuration", "OCTT TC_021"]
[params]
heartbeat_tolerance_s = 2          # fixed slack when comparing the new HeartbeatInterval ...
heartbeat_tolerance_ratio = 0.2    # ... plus this share of it, with the cadence that follows
+++*/
-- OCPP 1.6 section 5.3: the Charge Point answers Accepted, Rejected, RebootRequired or
-- NotSupported. RebootRequired is an acceptance that takes effect after a reboot. "If the key does
-- not exist, the Charge Point SHALL respond with status NotSupported": a NotSupported for a key the
-- charger showed it does not have is that answer, not a failure to configure it.
WITH get_configuration AS (
    SELECT charge_point_id, payload, answer_payload
    FROM calls
    WHERE action = 'GetConfiguration' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND answer_type = 'CALLRESULT'
),
unknown_keys AS (  -- keys the charger named in GetConfiguration.conf unknownKey
    SELECT DISTINCT charge_point_id, unnest(json_extract_string(answer_payload, '$.unknownKey[*]'))
           AS key
    FROM get_configuration
),
full_listings AS (  -- "If the list of keys in the request is empty or missing ... all keys"
    SELECT DISTINCT charge_point_id
    FROM get_configuration
    WHERE coalesce(json_array_length(json_extract(payload, '$.key')), 0) = 0
),
listed_keys AS (
    SELECT DISTINCT charge_point_id, key FROM configuration WHERE source = 'GetConfiguration'
),
changes AS (
    SELECT c.*,
           c.status = 'NotSupported' AND (
               EXISTS (SELECT 1 FROM unknown_keys u
                       WHERE u.charge_point_id = c.charge_point_id AND u.key = c.key)
               OR (EXISTS (SELECT 1 FROM full_listings f
                           WHERE f.charge_point_id = c.charge_point_id)
                   AND NOT EXISTS (SELECT 1 FROM listed_keys l
                                   WHERE l.charge_point_id = c.charge_point_id AND l.key = c.key))
           ) AS unknown_key,
           EXISTS (SELECT 1 FROM unknown_keys u
                   WHERE u.charge_point_id = c.charge_point_id AND u.key = c.key) AS named_unknown
    FROM configuration c
    WHERE c.source = 'ChangeConfiguration'
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
       CASE WHEN status IN ('Accepted', 'RebootRequired') THEN 'pass'
            WHEN unknown_key THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN format('{} = {}: not answered', key, value)
            WHEN error_code IS NOT NULL
                THEN format('{} = {}: answered {}', key, value, error_code)
            WHEN unknown_key AND named_unknown
                THEN format('{} = {}: NotSupported, a key the charger reported as unknown '
                            || '(GetConfiguration unknownKey): the answer to a negative probe',
                            key, value)
            WHEN unknown_key
                THEN format('{} = {}: NotSupported, a key its full GetConfiguration listing does '
                            || 'not have: the answer to a negative probe', key, value)
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
