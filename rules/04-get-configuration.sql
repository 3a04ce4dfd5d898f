/*+++
id = "get-configuration"
title = "Get configuration (list parameters that can be read)"
criterion = """After GetConfiguration the charger answers with the list of its configuration keys
(a non-empty configurationKey list); the number of keys is reported. A request for keys the charger
does not have, answered with them in unknownKey, is that spec answer: a note."""
function = 4
severity = "error"
references = ["OCPP 1.6 section 5.8 Get Configuration", "OCTT TC_019"]
+++*/
-- OCPP 1.6 section 5.8: "If the list of keys in the request PDU is empty or missing, the Charge Point
-- SHALL return a list of all configuration settings in GetConfiguration.conf."
WITH requests AS (
    SELECT c.*, coalesce(n.keys, 0) AS keys,
           coalesce(json_array_length(c.payload, '$.key'), 0) AS requested,
           coalesce(json_array_length(c.answer_payload, '$.unknownKey'), 0) AS unknown
    FROM calls c
    LEFT JOIN (SELECT connection_id, unique_id, count(*) AS keys
               FROM configuration
               WHERE source = 'GetConfiguration'
               GROUP BY ALL) n
        ON n.connection_id = c.connection_id AND n.unique_id = c.unique_id
    WHERE c.action = 'GetConfiguration' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
)
SELECT charge_point_id,
       'GetConfiguration' AS "check",
       CASE WHEN answer_type = 'CALLRESULT' AND keys > 0 THEN 'pass'
            -- section 5.8: "Keys in the request PDU that are not recognized by the Charge Point
            -- SHALL be placed in the unknownKey list"
            WHEN answer_type = 'CALLRESULT' AND requested > 0 AND unknown = requested THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'GetConfiguration not answered'
            WHEN answer_type = 'CALLERROR' THEN 'GetConfiguration answered ' || error_code
            WHEN keys = 0 AND requested > 0 AND unknown = requested
                THEN format('GetConfiguration of {} key(s) the charger does not have: all in '
                            || 'unknownKey, as OCPP 1.6 section 5.8 asks', requested)
            WHEN keys = 0 THEN 'GetConfiguration answered without any configurationKey'
            WHEN requested > 0 THEN format('{} keys (of {} requested)', keys, requested)
            ELSE format('{} keys', keys)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': answer_ts, 'unique_id': unique_id}], lambda e: e.ts IS NOT NULL) AS evidence
FROM requests
