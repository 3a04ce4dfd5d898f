/*+++
id = "clear-cache"
title = "Clear cache (if applicable)"
criterion = "After ClearCache, the charger answers with status Accepted."
function = 15
severity = "error"
references = ["OCPP 1.6 section 5.4 Clear Cache", "OCTT TC_061"]
+++*/
-- OCPP 1.6 section 5.4: "the Charge Point SHALL respond with a ClearCache.conf PDU ... Accepted if
-- the Charge Point has executed the request, otherwise rejected."
SELECT charge_point_id, 'ClearCache' AS "check",
       CASE WHEN status = 'Accepted' THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'ClearCache not answered'
            WHEN answer_type = 'CALLERROR' THEN 'ClearCache answered ' || error_code
            ELSE 'ClearCache answered ' || coalesce(status, 'without a status') END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': answer_ts, 'unique_id': unique_id}], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM calls
WHERE action = 'ClearCache' AND direction = 'cs_to_cp' AND NOT orphan_answer
