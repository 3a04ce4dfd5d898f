/*+++
name = "device_variables"
description = """\
OCPP 2.0.1 and 2.1 device model variables: each variable attribute of a NotifyReport part, each \
GetVariables result and each SetVariables item with its result (B05-B09), keyed component.variable."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the request (or the NotifyReport part) was sent"
unique_id = "OCPP-J unique id of the request (or of the NotifyReport part)"
source = "NotifyReport (reported), GetVariables (read) or SetVariables (set)"
request_id = "NotifyReport: requestId of the report"
component = "component.name (OCPPCommCtrlr, SampledDataCtrlr, AuthCacheCtrlr, ...)"
component_instance = "component.instance"
evse_id = "component.evse.id"
variable = "variable.name (HeartbeatInterval, TxUpdatedInterval, Enabled, ...)"
variable_instance = "variable.instance"
key = "component.variable, the name 1.6 keys map to (OCPPCommCtrlr.HeartbeatInterval)"
attribute_type = "Actual, Target, MinSet or MaxSet (default Actual)"
value = "the value reported, read or requested"
mutability = "NotifyReport: ReadOnly, WriteOnly or ReadWrite"
status = "GetVariables/SetVariables: attributeStatus of the item (Accepted, Rejected, UnknownComponent, UnknownVariable, NotSupportedAttributeType, RebootRequired)"
error_code = "CALLERROR errorCode when the charger answered the request with one"
answered = "the charger answered (NotifyReport: always true)"
injected = "the request was sent by ocpp-audit"
ocpp_version = "the connection's OCPP version"
+++*/
-- OCPP 2.0.1 SetVariablesResponse: one setVariableResult per setVariableData, matched by component,
-- variable and attributeType (B05.FR.xx); a result's attributeStatus is the verdict per item.
WITH reported AS (
    SELECT charge_point_id, connection_id, ts, unique_id, ocpp_version,
           TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id,
           unnest(json_extract(payload, '$.reportData[*]')) AS entry
    FROM messages
    WHERE message_type = 2 AND action = 'NotifyReport' AND direction = 'cp_to_cs'
      AND ocpp_version IN ('2.0.1', '2.1')
),
attributes AS (
    SELECT * EXCLUDE (entry), entry,
           unnest(coalesce(json_extract(entry, '$.variableAttribute[*]'), [NULL::JSON]))
               AS attribute
    FROM reported
),
read AS (
    SELECT charge_point_id, connection_id, call_ts, unique_id, injected, answered, ocpp_version,
           unnest(json_extract(answer_payload, '$.getVariableResult[*]')) AS item
    FROM calls
    WHERE action = 'GetVariables' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND answer_type = 'CALLRESULT' AND ocpp_version IN ('2.0.1', '2.1')
),
set_requests AS (
    SELECT charge_point_id, connection_id, call_ts, unique_id, injected, answered, ocpp_version,
           answer_payload, error_code,
           unnest(json_extract(payload, '$.setVariableData[*]')) AS item
    FROM calls
    WHERE action = 'SetVariables' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
),
set_items AS (
    SELECT s.*,
           (SELECT json_extract_string(r, '$.attributeStatus')
            FROM (SELECT unnest(json_extract(s.answer_payload, '$.setVariableResult[*]')) AS r)
            WHERE json_extract_string(r, '$.component.name')
                      IS NOT DISTINCT FROM json_extract_string(s.item, '$.component.name')
              AND json_extract_string(r, '$.component.instance')
                      IS NOT DISTINCT FROM json_extract_string(s.item, '$.component.instance')
              AND json_extract_string(r, '$.variable.name')
                      IS NOT DISTINCT FROM json_extract_string(s.item, '$.variable.name')
              AND json_extract_string(r, '$.variable.instance')
                      IS NOT DISTINCT FROM json_extract_string(s.item, '$.variable.instance')
              AND coalesce(json_extract_string(r, '$.attributeType'), 'Actual')
                      = coalesce(json_extract_string(s.item, '$.attributeType'), 'Actual')
            LIMIT 1) AS status
    FROM set_requests s
)
SELECT charge_point_id, connection_id, ts, unique_id, 'NotifyReport' AS source, request_id,
       json_extract_string(entry, '$.component.name') AS component,
       json_extract_string(entry, '$.component.instance') AS component_instance,
       TRY_CAST(json_extract_string(entry, '$.component.evse.id') AS INTEGER) AS evse_id,
       json_extract_string(entry, '$.variable.name') AS variable,
       json_extract_string(entry, '$.variable.instance') AS variable_instance,
       json_extract_string(entry, '$.component.name') || '.'
           || json_extract_string(entry, '$.variable.name') AS key,
       coalesce(json_extract_string(attribute, '$.type'), 'Actual') AS attribute_type,
       json_extract_string(attribute, '$.value') AS value,
       json_extract_string(attribute, '$.mutability') AS mutability,
       NULL AS status, NULL AS error_code, true AS answered, false AS injected, ocpp_version
FROM attributes
UNION ALL
SELECT charge_point_id, connection_id, call_ts, unique_id, 'GetVariables', NULL,
       json_extract_string(item, '$.component.name'),
       json_extract_string(item, '$.component.instance'),
       TRY_CAST(json_extract_string(item, '$.component.evse.id') AS INTEGER),
       json_extract_string(item, '$.variable.name'),
       json_extract_string(item, '$.variable.instance'),
       json_extract_string(item, '$.component.name') || '.'
           || json_extract_string(item, '$.variable.name'),
       coalesce(json_extract_string(item, '$.attributeType'), 'Actual'),
       json_extract_string(item, '$.attributeValue'), NULL,
       json_extract_string(item, '$.attributeStatus'), NULL, answered, injected, ocpp_version
FROM read
UNION ALL
SELECT charge_point_id, connection_id, call_ts, unique_id, 'SetVariables', NULL,
       json_extract_string(item, '$.component.name'),
       json_extract_string(item, '$.component.instance'),
       TRY_CAST(json_extract_string(item, '$.component.evse.id') AS INTEGER),
       json_extract_string(item, '$.variable.name'),
       json_extract_string(item, '$.variable.instance'),
       json_extract_string(item, '$.component.name') || '.'
           || json_extract_string(item, '$.variable.name'),
       coalesce(json_extract_string(item, '$.attributeType'), 'Actual'),
       json_extract_string(item, '$.attributeValue'), NULL, status, error_code, answered,
       injected, ocpp_version
FROM set_items
