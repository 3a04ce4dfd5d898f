/*+++
id = "error-notifications"
title = "Any hardware related notifications or error conditions"
criterion = """An error condition is reported in a StatusNotification with an errorCode other than
NoError and its details; errors on connector 0 are the charging station's own. Faulted without an
errorCode, or OtherError without info or vendorErrorCode, fails."""
function = 10
severity = "error"
references = ["OCPP 1.6 section 4.9 Status Notification", "OCPP 1.6 section 7.6 ChargePointErrorCode", "OCTT TC_026"]
+++*/
-- OCPP 1.6 section 7.6: OtherError is an "Other type of error. More information in vendorErrorCode."
-- Section 4.9: connectorId 0 reports the status of the Charge Point main controller.
SELECT charge_point_id,
       CASE WHEN connector_id = 0 THEN 'charge point (connector 0)'
            ELSE format('connector {}', connector_id) END AS "check",
       CASE WHEN status = 'Faulted' AND coalesce(error_code, 'NoError') = 'NoError' THEN 'fail'
            WHEN error_code = 'OtherError' AND coalesce(info, '') = ''
             AND coalesce(vendor_error_code, '') = '' THEN 'fail'
            ELSE 'pass' END AS verdict,
       CASE WHEN status = 'Faulted' AND coalesce(error_code, 'NoError') = 'NoError'
                THEN format('connector {} Faulted without an errorCode', connector_id)
            WHEN error_code = 'OtherError' AND coalesce(info, '') = ''
             AND coalesce(vendor_error_code, '') = ''
                THEN format('connector {}: OtherError without info or vendorErrorCode',
                            connector_id)
            ELSE format('{}: {} ({}){}{}',
                        CASE WHEN connector_id = 0 THEN 'the charge point itself'
                             ELSE format('connector {}', connector_id) END,
                        error_code, status,
                        CASE WHEN info IS NOT NULL THEN ', info ' || info ELSE '' END,
                        CASE WHEN vendor_error_code IS NOT NULL
                             THEN format(', vendor error {}{}', vendor_error_code,
                                         CASE WHEN vendor_id IS NOT NULL
                                              THEN ' (' || vendor_id || ')' ELSE '' END)
                             ELSE '' END)
       END AS detail,
       [{'ts': ts, 'unique_id': unique_id}] AS evidence
FROM status_notifications
WHERE coalesce(error_code, 'NoError') <> 'NoError' OR status = 'Faulted'
