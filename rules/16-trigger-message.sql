/*+++
id = "trigger-message"
title = "TriggerMessage"
criterion = """After booting, a TriggerMessage requesting StatusNotification is answered Accepted
and followed by the StatusNotification (for the connector asked, when one is given). Every other
TriggerMessage the charger accepts is honoured too: the requested message follows (an accepted
trigger never honoured fails); a Rejected or NotImplemented for another message is a note."""
function = 16
severity = "error"
references = ["OCPP 1.6 section 5.17 Trigger Message", "OCTT TC_054"]
[params]
trigger_status_timeout_s = 30   # the requested message must follow within this
+++*/
-- OCPP 1.6 section 5.17: "the Charge Point SHALL first send the TriggerMessage response, before
-- sending the requested message." Accepted means it "will send the requested notification".
WITH triggers AS (
    SELECT c.*,
           json_extract_string(c.payload, '$.requestedMessage') AS requested,
           TRY_CAST(json_extract_string(c.payload, '$.connectorId') AS INTEGER) AS connector_id
    FROM calls c
    WHERE c.action = 'TriggerMessage' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
),
honoured AS (
    SELECT t.*,
           (SELECT arg_min({'ts': m.ts, 'unique_id': m.unique_id}, m.ts)
            FROM messages m
            WHERE m.charge_point_id = t.charge_point_id AND m.message_type = 2
              AND m.direction = 'cp_to_cs' AND m.action = t.requested AND m.ts >= t.call_ts
              -- StatusNotification and MeterValues are for the connector asked, when one is given
              AND (t.connector_id IS NULL
                   OR t.requested NOT IN ('StatusNotification', 'MeterValues')
                   OR TRY_CAST(json_extract_string(m.payload, '$.connectorId') AS INTEGER)
                      = t.connector_id)
              -- triggered meter values carry the context Trigger (OCPP 1.6 section 7.30), or
              -- come before the charger's next transaction message: a transaction's periodic
              -- samples later on are not the answer to the trigger
              AND (t.requested <> 'MeterValues'
                   OR m.payload LIKE '%"Trigger"%'
                   OR NOT EXISTS (
                       SELECT 1 FROM messages x
                       WHERE x.charge_point_id = t.charge_point_id AND x.message_type = 2
                         AND x.direction = 'cp_to_cs'
                         AND x.action IN ('StartTransaction', 'StopTransaction')
                         AND x.ts > t.call_ts AND x.ts < m.ts))
              AND (epoch_us(m.ts) - epoch_us(t.call_ts)) / 1e6 <= $trigger_status_timeout_s)
               AS notification
    FROM triggers t
)
SELECT charge_point_id, format('TriggerMessage({})', coalesce(requested, '?')) AS "check",
       CASE WHEN status = 'Accepted' AND notification IS NOT NULL THEN 'pass'
            WHEN requested IS DISTINCT FROM 'StatusNotification' AND answered
             AND (status IN ('Rejected', 'NotImplemented') OR error_code = 'NotImplemented')
                THEN 'note'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN format('TriggerMessage({}) not answered', requested)
            WHEN answer_type = 'CALLERROR'
                THEN format('TriggerMessage({}) answered {}', requested, error_code)
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN format('TriggerMessage({}) answered {}', requested,
                            coalesce(status, 'without a status'))
            WHEN notification IS NULL
                THEN format('TriggerMessage({}) accepted, but no {}{} within {} s', requested,
                            requested, coalesce(format(' for connector {}', connector_id), ''),
                            $trigger_status_timeout_s)
            ELSE format('TriggerMessage({}) accepted, {} received after {:.1f} s', requested,
                        requested, (epoch_us(notification.ts) - epoch_us(call_ts)) / 1e6)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id}, notification],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM honoured
