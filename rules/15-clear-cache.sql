/*+++
id = "clear-cache"
title = "Clear cache (if applicable)"
criterion = """After ClearCache, the charger answers with status Accepted. "If applicable": a charger
that has no authorization cache (AuthorizationCacheEnabled absent from its full GetConfiguration
listing, or false) and answers Rejected is not judged (a note)."""
function = 15
severity = "error"
references = ["OCPP 1.6 section 5.4 Clear Cache", "OCTT TC_061"]
+++*/
-- OCPP 1.6 section 5.4: "the Charge Point SHALL respond with a ClearCache.conf PDU ... Accepted if
-- the Charge Point has executed the request, otherwise rejected." The cache is optional (section
-- 3.5.1: "Charge Points MAY implement an Authorization Cache"; configuration key
-- AuthorizationCacheEnabled, optional): without one there is nothing to clear.
WITH cache_setting AS (  -- the last AuthorizationCacheEnabled value the charger reported
    SELECT charge_point_id, arg_max(lower(value), ts) AS cache
    FROM configuration
    WHERE source = 'GetConfiguration' AND key = 'AuthorizationCacheEnabled'
    GROUP BY charge_point_id
),
full_listings AS (  -- GetConfiguration without keys: "all keys" (section 5.8), so a key not in it
    SELECT DISTINCT charge_point_id  -- is a key the charger does not have
    FROM calls
    WHERE action = 'GetConfiguration' AND direction = 'cs_to_cp' AND answer_type = 'CALLRESULT'
      AND coalesce(json_array_length(json_extract(payload, '$.key')), 0) = 0
),
clear_cache AS (
    SELECT c.*,
           coalesce(s.cache, CASE WHEN f.charge_point_id IS NOT NULL THEN 'absent' END) AS cache
    FROM calls c
    LEFT JOIN cache_setting s USING (charge_point_id)
    LEFT JOIN full_listings f USING (charge_point_id)
    WHERE c.action = 'ClearCache' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
)
SELECT charge_point_id, 'ClearCache' AS "check",
       CASE WHEN status = 'Accepted' THEN 'pass'
            WHEN status = 'Rejected' AND cache IN ('absent', 'false') THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'ClearCache not answered'
            WHEN answer_type = 'CALLERROR' THEN 'ClearCache answered ' || error_code
            WHEN status = 'Rejected' AND cache = 'absent'
                THEN 'ClearCache answered Rejected; not applicable: the charger has no '
                     || 'authorization cache (no AuthorizationCacheEnabled key)'
            WHEN status = 'Rejected' AND cache = 'false'
                THEN 'ClearCache answered Rejected; not applicable: the charger has no '
                     || 'authorization cache (AuthorizationCacheEnabled is false)'
            ELSE 'ClearCache answered ' || coalesce(status, 'without a status') END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': answer_ts, 'unique_id': unique_id}], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM clear_cache
