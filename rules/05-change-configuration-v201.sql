/*+++
id = "change-configuration-v201"
title = "Set configuration (set parameters that can be configured)"
criterion = """After SetVariables the charger answers per item: Accepted or RebootRequired pass;
Rejected, NotSupportedAttributeType or no result for the item fail. UnknownComponent or
UnknownVariable for a variable the charger does not have (absent from its full report or read as
unknown) is the spec's answer to a negative probe: a note. The variables set are reported by
component.variable."""
function = 5
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 B05 Set Variables", "OCTT TC_B_09", "OCTT TC_B_10"]
+++*/
-- OCPP 2.0.1 B05.FR.xx: the Charging Station answers each setVariableData with a setVariableResult
-- whose attributeStatus is Accepted, Rejected, UnknownComponent, UnknownVariable,
-- NotSupportedAttributeType or RebootRequired (the change takes effect after a reboot).
WITH known AS (   -- variables the charger showed it has: reported, or read as Accepted
    SELECT DISTINCT charge_point_id, key
    FROM device_variables
    WHERE source = 'NotifyReport' OR (source = 'GetVariables' AND status = 'Accepted')
),
unknown AS (      -- variables the charger said it does not have
    SELECT DISTINCT charge_point_id, key
    FROM device_variables
    WHERE source = 'GetVariables' AND status IN ('UnknownComponent', 'UnknownVariable')
),
full_reports AS ( -- a FullInventory or ConfigurationInventory report was received in full
    SELECT DISTINCT c.charge_point_id
    FROM calls c
    WHERE c.action = 'GetBaseReport' AND c.status = 'Accepted'
      AND json_extract_string(c.payload, '$.reportBase')
          IN ('FullInventory', 'ConfigurationInventory')
),
changes AS (
    SELECT v.*,
           v.status IN ('UnknownComponent', 'UnknownVariable') AND (
               EXISTS (SELECT 1 FROM unknown u
                       WHERE u.charge_point_id = v.charge_point_id AND u.key = v.key)
               OR (EXISTS (SELECT 1 FROM full_reports f WHERE f.charge_point_id = v.charge_point_id)
                   AND NOT EXISTS (SELECT 1 FROM known k
                                   WHERE k.charge_point_id = v.charge_point_id AND k.key = v.key))
           ) AS unknown_key
    FROM device_variables v
    WHERE v.source = 'SetVariables'
)
SELECT charge_point_id, 'SetVariables ' || coalesce(key, '(no variable)') AS "check",
       CASE WHEN status IN ('Accepted', 'RebootRequired') THEN 'pass'
            WHEN unknown_key THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN format('{} = {}: not answered', key, value)
            WHEN error_code IS NOT NULL THEN format('{} = {}: answered {}', key, value, error_code)
            WHEN status IS NULL
                THEN format('{} = {}: no setVariableResult for it in the answer', key, value)
            WHEN unknown_key
                THEN format('{} = {}: {}, a variable the charger does not have: the answer to '
                            || 'a negative probe', key, value, status)
            ELSE format('{} = {}: {}', key, value, status)
       END AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM changes
