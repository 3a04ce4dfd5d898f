/*+++
id = "diagnostics-v201"
title = "Remotely initiate and get diagnostics reports"
criterion = """GetLog (DiagnosticsLog or SecurityLog, with its requestId) is answered Accepted with a
filename, then LogStatusNotifications with that requestId go from Uploading to Uploaded; where the
capture records uploads (the built-in endpoints), the file arrived and is a readable, non-empty log.
AcceptedCanceled (the new request cancels a running one) is accepted."""
function = 13
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 N01 Retrieve Log Information", "OCTT TC_N_25", "OCTT TC_N_34", "OCTT TC_N_35", "OCTT TC_N_36"]
[params]
diagnostics_timeout_s = 600   # statuses and the file within this after GetLog
+++*/
-- OCPP 2.0.1 N01.FR.xx: the Charging Station answers GetLogResponse (Accepted, Rejected,
-- AcceptedCanceled, with the filename) and reports the upload by LogStatusNotificationRequest with
-- the requestId of the GetLog.
WITH requests AS (
    SELECT *,
           TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id,
           json_extract_string(payload, '$.logType') AS log_type,
           json_extract_string(answer_payload, '$.filename') AS file_name
    FROM calls
    WHERE action = 'GetLog' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
),
followed AS (
    SELECT r.charge_point_id, r.unique_id, r.call_ts, r.answered, r.answer_type, r.error_code,
           r.status, r.request_id, r.log_type, r.file_name,
           min(l.ts) FILTER (WHERE l.status = 'Uploading') AS uploading_ts,
           min(l.ts) FILTER (WHERE l.status = 'Uploaded') AS uploaded_ts,
           arg_min(l.unique_id, l.ts) FILTER (WHERE l.status = 'Uploaded') AS uploaded_unique_id,
           coalesce(bool_or(l.status IN ('UploadFailure', 'BadMessage', 'NotSupportedOperation',
                                         'PermissionDenied')), false) AS failed,
           string_agg(l.status, ' -> ' ORDER BY l.ts) AS sequence
    FROM requests r
    LEFT JOIN log_status l
      ON l.charge_point_id = r.charge_point_id AND l.request_id = r.request_id
     AND l.ts >= r.call_ts
     AND (epoch_us(l.ts) - epoch_us(r.call_ts)) / 1e6 <= $diagnostics_timeout_s
    GROUP BY ALL
),
uploads AS (   -- files that arrived on the built-in endpoints, as the endpoint read them
    SELECT charge_point_id, ts, json_extract_string(detail, '$.file_name') AS upload_name,
           TRY_CAST(json_extract_string(detail, '$.size') AS BIGINT) AS upload_size,
           coalesce(TRY_CAST(json_extract_string(detail, '$.content.readable') AS BOOLEAN),
                    json_extract_string(detail, '$.content.kind') IS NULL) AS readable
    FROM frames
    WHERE event = 'upload'
),
judged AS (
    SELECT f.*,
           (SELECT arg_min({'name': u.upload_name, 'size': u.upload_size,
                            'readable': u.readable}, u.ts)
            FROM uploads u
            WHERE u.charge_point_id = f.charge_point_id AND u.ts >= f.call_ts
              AND (epoch_us(u.ts) - epoch_us(f.call_ts)) / 1e6 <= $diagnostics_timeout_s)
               AS upload,
           EXISTS (SELECT 1 FROM uploads u WHERE u.charge_point_id = f.charge_point_id)
               AS uploads_recorded
    FROM followed f
)
SELECT charge_point_id, format('GetLog({})', coalesce(log_type, '?')) AS "check",
       CASE WHEN answered AND status IN ('Accepted', 'AcceptedCanceled')
             AND coalesce(file_name, '') <> '' AND NOT failed AND uploading_ts IS NOT NULL
             AND uploaded_ts IS NOT NULL AND uploading_ts <= uploaded_ts
             AND (upload IS NOT NULL OR NOT uploads_recorded)
             AND (upload IS NULL OR (upload.readable AND upload.size > 0))
            THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'GetLog not answered'
            WHEN answer_type = 'CALLERROR' THEN 'GetLog answered ' || error_code
            WHEN status NOT IN ('Accepted', 'AcceptedCanceled') OR status IS NULL
                THEN 'GetLog answered ' || coalesce(status, 'without a status')
            WHEN coalesce(file_name, '') = '' THEN 'GetLog accepted without a filename'
            WHEN failed THEN format('log upload {} failed: {}', request_id, sequence)
            WHEN uploading_ts IS NULL OR uploaded_ts IS NULL
                THEN format('LogStatusNotification Uploading and Uploaded with requestId {} not '
                            || 'both received (got {})', request_id, coalesce(sequence, 'none'))
            WHEN uploading_ts > uploaded_ts
                THEN 'LogStatusNotifications out of order: ' || sequence
            WHEN upload IS NULL AND uploads_recorded
                THEN format('{}, but the file {} did not arrive', sequence, file_name)
            WHEN upload IS NOT NULL AND NOT (upload.readable AND upload.size > 0)
                THEN format('{}, but the file {} that arrived ({} bytes) is not a readable log',
                            sequence, upload.name, upload.size)
            ELSE format('{} (requestId {}), file {}', sequence, request_id,
                        coalesce(upload.name, file_name))
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': uploaded_ts, 'unique_id': uploaded_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
