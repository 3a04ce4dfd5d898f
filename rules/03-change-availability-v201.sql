/*+++
id = "change-availability-v201"
title = "Change availability"
criterion = """After ChangeAvailability Inoperative the EVSE (or connector, or the whole station when
no evse is given) reports Unavailable, after Operative Available, by a StatusNotification per
connector concerned. Scheduled (a transaction runs) is a note. Every StatusNotification carries an
evseId, a connectorId and a valid connectorStatus."""
function = 3
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 G03 Change Availability EVSE/Connector", "OCPP 2.0.1 G04 Change Availability Charging Station", "OCPP 2.0.1 G01 Status Notification", "OCTT TC_G_03", "OCTT TC_G_04", "OCTT TC_G_05", "OCTT TC_G_06", "OCTT TC_G_07", "OCTT TC_G_08", "OCTT TC_G_11", "OCTT TC_G_14", "OCTT TC_G_17"]
[params]
availability_timeout_s = 60   # the StatusNotification must follow the accepted request within this
+++*/
-- OCPP 2.0.1 G03.FR.01/G04.FR.01: on an accepted ChangeAvailability the Charging Station sends a
-- StatusNotification with the new status of each connector concerned; "Scheduled" when a transaction
-- is in progress (G03.FR.05).
WITH requests AS (
    SELECT *,
           TRY_CAST(json_extract_string(payload, '$.evse.id') AS INTEGER) AS evse_id,
           TRY_CAST(json_extract_string(payload, '$.evse.connectorId') AS INTEGER) AS connector_id,
           json_extract_string(payload, '$.operationalStatus') AS type,
           CASE json_extract_string(payload, '$.operationalStatus')
               WHEN 'Inoperative' THEN 'Unavailable' WHEN 'Operative' THEN 'Available' END
               AS expected
    FROM calls
    WHERE action = 'ChangeAvailability' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
),
statuses AS (
    SELECT * FROM status_notifications WHERE ocpp_version IN ('2.0.1', '2.1')
),
judged AS (
    SELECT r.*,
           coalesce('EVSE ' || r.evse_id || coalesce(' connector ' || r.connector_id, ''),
                    'charging station') AS target,
           (SELECT arg_min({'ts': s.ts, 'unique_id': s.unique_id}, s.ts)
            FROM statuses s
            WHERE s.charge_point_id = r.charge_point_id
              AND (r.evse_id IS NULL OR s.evse_id = r.evse_id)
              AND (r.connector_id IS NULL OR s.connector_id = r.connector_id)
              AND s.status = r.expected
              AND s.ts >= r.call_ts
              AND (epoch_us(s.ts) - epoch_us(r.call_ts)) / 1e6 <= $availability_timeout_s) AS shown,
           (SELECT arg_max(s.status, s.ts)
            FROM statuses s
            WHERE s.charge_point_id = r.charge_point_id
              AND (r.evse_id IS NULL OR s.evse_id = r.evse_id)
              AND (r.connector_id IS NULL OR s.connector_id = r.connector_id)
              AND s.ts < r.call_ts) AS status_before
    FROM requests r
),
per_charger AS (
    SELECT charge_point_id,
           list(DISTINCT format('{}/{}', evse_id, connector_id)
                ORDER BY format('{}/{}', evse_id, connector_id)) AS connectors,
           min(ts) AS first_ts, arg_min(unique_id, ts) AS first_unique_id
    FROM statuses
    GROUP BY charge_point_id
)
SELECT charge_point_id, format('{} {}', coalesce(type, '?'), target) AS "check",
       CASE WHEN status = 'Scheduled' THEN 'note'
            WHEN status = 'Accepted' AND (shown IS NOT NULL OR status_before = expected)
                THEN 'pass'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'ChangeAvailability not answered'
            WHEN answer_type = 'CALLERROR' THEN 'ChangeAvailability answered ' || error_code
            WHEN status = 'Scheduled'
                THEN 'Scheduled: a transaction is running, the change waits for its end'
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'ChangeAvailability answered ' || coalesce(status, 'without a status')
            WHEN expected IS NULL THEN format('unknown operationalStatus {}', type)
            WHEN shown IS NOT NULL
                THEN format('{} {} -> StatusNotification {} after {:.1f} s', type, target,
                            expected, (epoch_us(shown.ts) - epoch_us(call_ts)) / 1e6)
            WHEN status_before = expected THEN format('{} was already {}', target, expected)
            ELSE format('{} accepted, but no StatusNotification {} for {} within {} s', type,
                        expected, target, $availability_timeout_s)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id}, shown], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM judged
UNION ALL
SELECT charge_point_id, 'connectors reported', 'pass',
       'StatusNotification for EVSE/connector ' || array_to_string(connectors, ', '),
       [{'ts': first_ts, 'unique_id': first_unique_id}]
FROM per_charger
UNION ALL
-- OCPP 2.0.1 StatusNotificationRequest: evseId, connectorId and connectorStatus are required;
-- ConnectorStatusEnumType is Available, Occupied, Reserved, Unavailable or Faulted.
SELECT charge_point_id, 'valid status', 'fail',
       format('EVSE {} connector {}: {} is not a valid connectorStatus',
              coalesce(evse_id::VARCHAR, 'missing'), coalesce(connector_id::VARCHAR, 'missing'),
              coalesce(status, 'no status')),
       [{'ts': ts, 'unique_id': unique_id}]
FROM statuses
WHERE status IS NULL OR evse_id IS NULL OR connector_id IS NULL
   OR status NOT IN ('Available', 'Occupied', 'Reserved', 'Unavailable', 'Faulted')
