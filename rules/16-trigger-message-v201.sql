/*+++
id = "trigger-message-v201"
title = "TriggerMessage"
criterion = """A TriggerMessage requesting StatusNotification is answered Accepted and followed by
the StatusNotification (for the EVSE and connector asked, when given). Every other TriggerMessage
the charger accepts is honoured too: the requested message follows (a TransactionEvent with
triggerReason Trigger, a MeterValues, a Heartbeat, ...); Rejected or NotImplemented for another
message is a note."""
function = 16
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 F06 Trigger Message", "OCTT TC_F_11", "OCTT TC_F_12", "OCTT TC_F_13", "OCTT TC_F_14", "OCTT TC_F_20", "OCTT TC_F_23", "OCTT TC_F_24", "OCTT TC_F_27"]
[params]
trigger_status_timeout_s = 30   # the requested message must follow within this
+++*/
-- OCPP 2.0.1 F06.FR.xx: the Charging Station first sends TriggerMessageResponse, then the requested
-- message; a triggered TransactionEvent has triggerReason Trigger (F06.FR.xx). The certificate
-- messages are all sent as SignCertificate.
WITH triggers AS (
    SELECT c.*,
           json_extract_string(c.payload, '$.requestedMessage') AS requested,
           CASE WHEN json_extract_string(c.payload, '$.requestedMessage') LIKE 'Sign%Certificate'
                THEN 'SignCertificate'
                ELSE json_extract_string(c.payload, '$.requestedMessage') END AS requested_action,
           TRY_CAST(json_extract_string(c.payload, '$.evse.id') AS INTEGER) AS evse_id,
           TRY_CAST(json_extract_string(c.payload, '$.evse.connectorId') AS INTEGER)
               AS connector_id
    FROM calls c
    WHERE c.action = 'TriggerMessage' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
      AND c.ocpp_version IN ('2.0.1', '2.1')
),
honoured AS (
    SELECT t.*,
           (SELECT arg_min({'ts': m.ts, 'unique_id': m.unique_id}, m.ts)
            FROM messages m
            WHERE m.charge_point_id = t.charge_point_id AND m.message_type = 2
              AND m.direction = 'cp_to_cs' AND m.action = t.requested_action AND m.ts >= t.call_ts
              AND (t.evse_id IS NULL
                   OR t.requested_action NOT IN ('StatusNotification', 'MeterValues',
                                                 'TransactionEvent')
                   OR coalesce(TRY_CAST(json_extract_string(m.payload, '$.evseId') AS INTEGER),
                               TRY_CAST(json_extract_string(m.payload, '$.evse.id') AS INTEGER))
                      = t.evse_id)
              AND (t.connector_id IS NULL OR t.requested_action <> 'StatusNotification'
                   OR TRY_CAST(json_extract_string(m.payload, '$.connectorId') AS INTEGER)
                      = t.connector_id)
              AND (t.requested_action <> 'TransactionEvent'
                   OR json_extract_string(m.payload, '$.triggerReason') = 'Trigger')
              AND (t.requested_action <> 'MeterValues' OR m.payload LIKE '%"Trigger"%')
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
                            requested_action, coalesce(format(' for EVSE {}', evse_id), ''),
                            $trigger_status_timeout_s)
            ELSE format('TriggerMessage({}) accepted, {} received after {:.1f} s', requested,
                        requested_action, (epoch_us(notification.ts) - epoch_us(call_ts)) / 1e6)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id}, notification],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM honoured
