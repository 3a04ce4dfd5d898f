/*+++
name = "notify_events"
description = """\
OCPP 2.0.1 and 2.1 NotifyEvent requests (N07, and G05 for connector errors): one row per eventData, \
the error or alert against a component and variable."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
ts = "when the NotifyEvent arrived"
unique_id = "OCPP-J unique id"
seq_no = "seqNo of the NotifyEvent part"
event_id = "eventId"
timestamp = "the event's timestamp (the charger's clock)"
trigger = "Alerting, Delta or Periodic"
cause = "eventId of the event that caused this one"
actual_value = "actualValue of the variable (Problem: true, ...)"
tech_code = "techCode: the vendor's error code"
tech_info = "techInfo: the vendor's error text"
cleared = "the event's condition has cleared"
transaction_id = "transactionId the event relates to"
component = "component.name"
evse_id = "component.evse.id"
connector_id = "component.evse.connectorId"
variable = "variable.name (Problem, Fallback, ...)"
event_notification_type = "HardWiredNotification, HardWiredMonitor, PreconfiguredMonitor or CustomMonitor"
ocpp_version = "the connection's OCPP version"
+++*/
-- OCPP 2.0.1 NotifyEventRequest: {generatedAt, tbc, seqNo, eventData[{eventId, timestamp, trigger,
-- cause?, actualValue, techCode?, techInfo?, cleared?, transactionId?, component, variable,
-- variableMonitoringId?, eventNotificationType}]}.
WITH parts AS (
    SELECT charge_point_id, connection_id, ts, unique_id, ocpp_version,
           TRY_CAST(json_extract_string(payload, '$.seqNo') AS BIGINT) AS seq_no,
           unnest(json_extract(payload, '$.eventData[*]')) AS event
    FROM messages
    WHERE message_type = 2 AND action = 'NotifyEvent' AND direction = 'cp_to_cs'
      AND ocpp_version IN ('2.0.1', '2.1')
)
SELECT charge_point_id, connection_id, ts, unique_id, seq_no,
       TRY_CAST(json_extract_string(event, '$.eventId') AS BIGINT) AS event_id,
       TRY_CAST(json_extract_string(event, '$.timestamp') AS TIMESTAMPTZ) AS timestamp,
       json_extract_string(event, '$.trigger') AS trigger,
       TRY_CAST(json_extract_string(event, '$.cause') AS BIGINT) AS cause,
       json_extract_string(event, '$.actualValue') AS actual_value,
       json_extract_string(event, '$.techCode') AS tech_code,
       json_extract_string(event, '$.techInfo') AS tech_info,
       coalesce(TRY_CAST(json_extract_string(event, '$.cleared') AS BOOLEAN), false) AS cleared,
       json_extract_string(event, '$.transactionId') AS transaction_id,
       json_extract_string(event, '$.component.name') AS component,
       TRY_CAST(json_extract_string(event, '$.component.evse.id') AS INTEGER) AS evse_id,
       TRY_CAST(json_extract_string(event, '$.component.evse.connectorId') AS INTEGER)
           AS connector_id,
       json_extract_string(event, '$.variable.name') AS variable,
       json_extract_string(event, '$.eventNotificationType') AS event_notification_type,
       ocpp_version
FROM parts
