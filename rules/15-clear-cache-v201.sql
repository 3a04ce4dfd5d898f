/*+++
id = "clear-cache-v201"
title = "Clear cache (if applicable)"
criterion = """After ClearCache, the charger answers with status Accepted. "If applicable": a charger
whose authorization cache is disabled (AuthCacheCtrlr.Enabled false, reported or read) and answers
Rejected is not judged (a note)."""
function = 15
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 C11 Clear Authorization Data in Authorization Cache", "OCTT TC_C_37", "OCTT TC_C_38"]
+++*/
-- OCPP 2.0.1 C11.FR.04: "When AuthCacheEnabled is false, the Charging Station SHALL respond with
-- ClearCacheResponse status Rejected" (AuthCacheCtrlr.Enabled in the device model).
WITH cache_setting AS (
    SELECT charge_point_id, arg_max(lower(value), ts) AS cache
    FROM device_variables
    WHERE key = 'AuthCacheCtrlr.Enabled' AND attribute_type = 'Actual'
      AND (source = 'NotifyReport' OR status = 'Accepted')
    GROUP BY charge_point_id
),
clear_cache AS (
    SELECT c.*, s.cache
    FROM calls c
    LEFT JOIN cache_setting s USING (charge_point_id)
    WHERE c.action = 'ClearCache' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
      AND c.ocpp_version IN ('2.0.1', '2.1')
)
SELECT charge_point_id, 'ClearCache' AS "check",
       CASE WHEN status = 'Accepted' THEN 'pass'
            WHEN status = 'Rejected' AND cache = 'false' THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'ClearCache not answered'
            WHEN answer_type = 'CALLERROR' THEN 'ClearCache answered ' || error_code
            WHEN status = 'Rejected' AND cache = 'false'
                THEN 'ClearCache answered Rejected; not applicable: the authorization cache is '
                     || 'disabled (AuthCacheCtrlr.Enabled false)'
            ELSE 'ClearCache answered ' || coalesce(status, 'without a status') END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': answer_ts, 'unique_id': unique_id}], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM clear_cache
