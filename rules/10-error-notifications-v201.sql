/*+++
id = "error-notifications-v201"
title = "Any hardware related notifications or error conditions"
criterion = """An error condition is reported in a NotifyEvent against a component and variable
(Problem, ...), with its detail (techCode or techInfo); a connector reported Faulted in a
StatusNotification has a NotifyEvent that says why, within a parameter. Faulted without such a
NotifyEvent, or a Problem event without techCode and techInfo, fails."""
function = 10
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 N07 Alert Event", "OCPP 2.0.1 G05 Lock Failure", "OCPP 2.0.1 G01 Status Notification", "OCTT TC_N_21", "OCTT TC_G_20"]
[params]
fault_event_window_s = 60   # a Faulted status and the NotifyEvent explaining it, at most this apart
+++*/
-- OCPP 2.0.1: StatusNotificationRequest has no error fields; the error itself is an event of the
-- device model (NotifyEventRequest eventData: component, variable, actualValue, techCode?,
-- techInfo?). techCode/techInfo are optional in the spec; the platform asks for the error's detail.
WITH problems AS (
    SELECT * FROM notify_events
    WHERE NOT cleared AND trigger IN ('Alerting', 'Delta')
      AND (variable = 'Problem' AND lower(coalesce(actual_value, '')) = 'true'
           OR event_notification_type = 'HardWiredNotification')
),
faulted AS (
    SELECT s.*,
           (SELECT arg_min({'ts': e.ts, 'unique_id': e.unique_id,
                            'what': e.component || '.' || e.variable
                                    || coalesce(' ' || e.tech_code, '')}, e.ts)
            FROM notify_events e
            WHERE e.charge_point_id = s.charge_point_id
              AND (e.evse_id IS NULL OR e.evse_id = s.evse_id)
              AND abs(epoch_us(e.ts) - epoch_us(s.ts)) / 1e6 <= $fault_event_window_s) AS event
    FROM status_notifications s
    WHERE s.status = 'Faulted' AND s.ocpp_version IN ('2.0.1', '2.1')
)
SELECT charge_point_id,
       format('{}.{}', component, variable)
           || coalesce(format(' EVSE {}', evse_id), '') AS "check",
       CASE WHEN variable = 'Problem' AND coalesce(tech_code, '') = ''
             AND coalesce(tech_info, '') = '' THEN 'fail'
            ELSE 'pass' END AS verdict,
       CASE WHEN variable = 'Problem' AND coalesce(tech_code, '') = ''
             AND coalesce(tech_info, '') = ''
                THEN format('{} reports a Problem without techCode or techInfo', component)
            ELSE format('{}.{} = {} ({}){}{}', component, variable, actual_value, trigger,
                        coalesce(', techCode ' || tech_code, ''),
                        coalesce(', ' || tech_info, ''))
       END AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM problems
UNION ALL
SELECT charge_point_id, format('EVSE {} connector {} Faulted', evse_id, connector_id),
       CASE WHEN event IS NULL THEN 'fail' ELSE 'pass' END,
       CASE WHEN event IS NULL
            THEN format('EVSE {} connector {} Faulted without a NotifyEvent saying why within {} s',
                        evse_id, connector_id, $fault_event_window_s)
            ELSE format('EVSE {} connector {} Faulted, NotifyEvent {}', evse_id, connector_id,
                        event.what) END,
       list_filter([{'ts': ts, 'unique_id': unique_id},
                    {'ts': event.ts, 'unique_id': event.unique_id}], lambda e: e.ts IS NOT NULL)
FROM faulted
