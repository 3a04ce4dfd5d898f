/*+++
id = "trigger-message"
title = "TriggerMessage"
criterion = """After booting, a TriggerMessage requesting StatusNotification is answered Accepted
and followed by the StatusNotification (for the connector asked, when one is given)."""
function = 16
severity = "error"
references = ["OCPP 1.6 section 5.17 Trigger Message", "OCTT TC_054"]
[params]
trigger_status_timeout_s = 30   # the StatusNotification must follow within this
+++*/
-- OCPP 1.6 section 5.17: "the Charge Point SHALL first send the TriggerMessage response, before
-- sending the requested message."
WITH triggers AS (
    SELECT c.*,
           TRY_CAST(json_extract_string(c.payload, '$.connectorId') AS INTEGER) AS connector_id,
           (SELECT arg_min({'ts': n.ts, 'unique_id': n.unique_id}, n.ts)
            FROM status_notifications n
            WHERE n.charge_point_id = c.charge_point_id AND n.ts >= c.call_ts
              AND (TRY_CAST(json_extract_string(c.payload, '$.connectorId') AS INTEGER) IS NULL
                   OR n.connector_id
                      = TRY_CAST(json_extract_string(c.payload, '$.connectorId') AS INTEGER))
              AND (epoch_us(n.ts) - epoch_us(c.call_ts)) / 1e6 <= $trigger_status_timeout_s)
               AS notification
    FROM calls c
    WHERE c.action = 'TriggerMessage' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
      AND json_extract_string(c.payload, '$.requestedMessage') = 'StatusNotification'
)
SELECT charge_point_id, 'TriggerMessage(StatusNotification)' AS "check",
       CASE WHEN status = 'Accepted' AND notification IS NOT NULL THEN 'pass' ELSE 'fail' END
           AS verdict,
       CASE WHEN NOT answered THEN 'TriggerMessage(StatusNotification) not answered'
            WHEN answer_type = 'CALLERROR'
                THEN 'TriggerMessage(StatusNotification) answered ' || error_code
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'TriggerMessage(StatusNotification) answered '
                     || coalesce(status, 'without a status')
            WHEN notification IS NULL
                THEN format('accepted, but no StatusNotification within {} s', $trigger_status_timeout_s)
            ELSE format('accepted, StatusNotification received after {:.1f} s',
                        (epoch_us(notification.ts) - epoch_us(call_ts)) / 1e6)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id}, notification],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM triggers
