/*+++
id = "cable-status-v201"
title = "Charging cable connection status"
criterion = """A cable plugged in shows as the connector going Occupied (StatusNotification) and a
TransactionEvent reporting it (triggerReason CablePluggedIn or EVDetected, or chargingState
EVConnected/Charging) on that EVSE; a cable pulled out shows as the connector going Available and
the transaction's chargingState leaving Charging (EVDeparted, or an Ended event). An Occupied
connector with no TransactionEvent about the cable fails."""
function = 11
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 G01 Status Notification", "OCPP 2.0.1 E01 S2 (TxStartPoint EVConnected)", "OCPP 2.0.1 E06 S2 (TxStopPoint EVConnected)", "OCTT TC_E_09", "OCTT TC_E_14", "OCTT TC_E_20", "OCTT TC_F_24"]
[params]
plug_event_timeout_s = 30   # the TransactionEvent about the cable within this of the status change
+++*/
-- OCPP 2.0.1 E02.FR.01: when TxStartPoint includes EVConnected, plugging the cable starts a
-- transaction: TransactionEventRequest with triggerReason CablePluggedIn; G01: the connector's
-- status changes to Occupied. In 2.0.1 the charging state lives in transactionInfo.chargingState.
WITH changes AS (
    SELECT * FROM status_notifications
    WHERE ocpp_version IN ('2.0.1', '2.1') AND previous_status IS DISTINCT FROM status
      AND status IN ('Occupied', 'Available')
      AND previous_status IN ('Available', 'Occupied')
),
judged AS (
    SELECT c.*,
           (SELECT arg_min({'ts': e.ts, 'unique_id': e.unique_id,
                            'what': coalesce(e.trigger_reason, '?') || '/'
                                    || coalesce(e.charging_state, e.event_type)}, e.ts)
            FROM transaction_events e
            WHERE e.charge_point_id = c.charge_point_id
              AND (e.evse_id IS NULL OR e.evse_id = c.evse_id)
              AND abs(epoch_us(e.ts) - epoch_us(c.ts)) / 1e6 <= $plug_event_timeout_s
              AND CASE c.status
                      WHEN 'Occupied' THEN e.trigger_reason IN ('CablePluggedIn', 'EVDetected')
                                        OR e.charging_state IN ('EVConnected', 'Charging')
                      ELSE e.trigger_reason = 'EVDeparted' OR e.event_type = 'Ended'
                           OR e.charging_state IN ('Idle', 'EVConnected')
                  END) AS event
    FROM changes c
)
SELECT charge_point_id,
       format('EVSE {} connector {} {}', evse_id, connector_id,
              CASE status WHEN 'Occupied' THEN 'plug in' ELSE 'unplug' END) AS "check",
       CASE WHEN event IS NOT NULL THEN 'pass'
            WHEN status = 'Occupied' THEN 'fail'
            ELSE 'note' END AS verdict,
       CASE WHEN event IS NOT NULL
                THEN format('{} -> {} with TransactionEvent {}', previous_status, status,
                            event.what)
            WHEN status = 'Occupied'
                THEN format('EVSE {} connector {} Occupied, but no TransactionEvent reports the '
                            || 'cable within {} s', evse_id, connector_id, $plug_event_timeout_s)
            ELSE format('EVSE {} connector {} Available again; no transaction event around it '
                        || '(none was running)', evse_id, connector_id)
       END AS detail,
       list_filter([{'ts': ts, 'unique_id': unique_id},
                    {'ts': event.ts, 'unique_id': event.unique_id}], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM judged
