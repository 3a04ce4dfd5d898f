/*+++
id = "change-availability"
title = "Change availability"
criterion = """After ChangeAvailability Inoperative the connector's status changes to Unavailable,
after Operative to Available, shown by a StatusNotification per connector concerned. A
StatusNotification is received for every connector, including connector 0, with a valid status, and
with an errorCode other than NoError when Faulted."""
function = 3
severity = "error"
references = ["OCPP 1.6 section 5.2 Change Availability", "OCPP 1.6 section 4.9 Status Notification", "OCTT TC_013", "OCTT TC_014"]
[params]
availability_timeout_s = 60   # the StatusNotification must follow the accepted request within this
+++*/
-- OCPP 1.6 section 5.2: "When an availability change requested with a ChangeAvailability.req PDU has
-- happened, the Charge Point SHALL inform Central System of its new availability status with a
-- StatusNotification.req". connectorId 0 means the charge point as a whole.
WITH requests AS (
    SELECT *,
           TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id,
           json_extract_string(payload, '$.type') AS type,
           CASE json_extract_string(payload, '$.type')
               WHEN 'Inoperative' THEN 'Unavailable' WHEN 'Operative' THEN 'Available' END
               AS expected
    FROM calls
    WHERE action = 'ChangeAvailability' AND direction = 'cs_to_cp' AND NOT orphan_answer
),
judged AS (
    SELECT r.*,
           (SELECT arg_min({'ts': s.ts, 'unique_id': s.unique_id}, s.ts)
            FROM status_notifications s
            WHERE s.charge_point_id = r.charge_point_id
              AND (r.connector_id = 0 OR s.connector_id = r.connector_id)
              AND s.status = r.expected
              AND s.ts >= r.call_ts
              AND (epoch_us(s.ts) - epoch_us(r.call_ts)) / 1e6 <= $availability_timeout_s) AS shown,
           (SELECT arg_max(s.status, s.ts)
            FROM status_notifications s
            WHERE s.charge_point_id = r.charge_point_id
              AND s.connector_id = r.connector_id
              AND s.ts < r.call_ts) AS status_before
    FROM requests r
),
statuses AS (
    SELECT *
    FROM status_notifications
),
per_charger AS (
    SELECT charge_point_id,
           list(DISTINCT connector_id ORDER BY connector_id) AS connectors,
           bool_or(connector_id = 0) AS has_connector_0,
           min(ts) AS first_ts,
           arg_min(unique_id, ts) AS first_unique_id
    FROM statuses
    GROUP BY charge_point_id
)
SELECT charge_point_id,
       format('{} connector {}', coalesce(type, '?'), connector_id) AS "check",
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
            WHEN expected IS NULL THEN format('unknown availability type {}', type)
            WHEN shown IS NOT NULL
                THEN format('{} -> StatusNotification {} after {:.1f} s', type, expected,
                            (epoch_us(shown.ts) - epoch_us(call_ts)) / 1e6)
            WHEN status_before = expected
                THEN format('connector {} was already {}', connector_id, expected)
            ELSE format('{} accepted, but no StatusNotification {} for connector {} within {} s',
                        type, expected, connector_id, $availability_timeout_s)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id}, shown], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM judged
UNION ALL
SELECT charge_point_id, 'connectors reported',
       CASE WHEN has_connector_0 THEN 'pass' ELSE 'fail' END,
       CASE WHEN has_connector_0
            THEN 'StatusNotification for connectors ' || array_to_string(connectors, ', ')
            ELSE 'no StatusNotification for connector 0 (the charge point itself); seen for '
                 || array_to_string(connectors, ', ') END,
       [{'ts': first_ts, 'unique_id': first_unique_id}]
FROM per_charger
UNION ALL
-- OCPP 1.6 section 7.7 ChargePointStatus, and 7.6: an error is reported with its errorCode.
SELECT charge_point_id, 'valid status', 'fail',
       CASE WHEN status = 'Faulted'
            THEN format('connector {} Faulted with errorCode {}', connector_id,
                        coalesce(error_code, 'missing'))
            ELSE format('connector {}: {} is not a valid status', connector_id,
                        coalesce(status, 'no status')) END,
       [{'ts': ts, 'unique_id': unique_id}]
FROM statuses
WHERE status IS NULL
   OR status NOT IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE',
                     'Finishing', 'Reserved', 'Unavailable', 'Faulted')
   OR (status = 'Faulted' AND coalesce(error_code, 'NoError') = 'NoError')
