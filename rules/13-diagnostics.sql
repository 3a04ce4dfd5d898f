/*+++
id = "diagnostics"
title = "Remotely initiate and get diagnostics reports"
criterion = """GetDiagnostics is answered with a fileName, then DiagnosticsStatusNotification
Uploading is followed by Uploaded; where the capture records uploads (the built-in FTP/HTTP
endpoints), the file arrived and is a diagnostics report: not empty, and a readable archive or log
of its type (a truncated gzip is not). Uploading before the GetDiagnostics answer is accepted (OCPP
1.6 does not order them) and said in the detail."""
function = 13
severity = "error"
references = ["OCPP 1.6 section 5.9 Get Diagnostics", "OCPP 1.6 section 4.4 Diagnostics Status Notification", "OCTT TC_045"]
[params]
diagnostics_timeout_s = 600   # statuses and the file within this after GetDiagnostics
+++*/
-- OCPP 1.6 section 6.29 GetDiagnostics.conf: fileName is "the name of the file with diagnostic
-- information that will be uploaded. This field is not present when no diagnostic information is
-- available."
WITH requests AS (
    SELECT *,
           json_extract_string(answer_payload, '$.fileName') AS file_name,
           lead(call_ts) OVER (PARTITION BY charge_point_id ORDER BY call_ts) AS next_request_ts
    FROM calls
    WHERE action = 'GetDiagnostics' AND direction = 'cs_to_cp' AND NOT orphan_answer
),
followed AS (
    SELECT r.charge_point_id, r.unique_id, r.call_ts, r.answered, r.answer_type, r.error_code,
           r.file_name,
           min(d.ts) FILTER (WHERE d.status = 'Uploading') AS uploading_ts,
           min(d.ts) FILTER (WHERE d.status = 'Uploaded') AS uploaded_ts,
           arg_min(d.unique_id, d.ts) FILTER (WHERE d.status = 'Uploaded') AS uploaded_unique_id,
           coalesce(bool_or(d.status = 'UploadFailed'), false) AS failed,
           string_agg(d.status, ' -> ' ORDER BY d.ts) FILTER (WHERE d.event = 'status')
               AS sequence,
           arg_min(d.file_name, d.ts) FILTER (WHERE d.event = 'upload') AS upload_name,
           arg_min(d.size, d.ts) FILTER (WHERE d.event = 'upload') AS upload_size,
           min(d.ts) FILTER (WHERE d.event = 'upload') AS upload_ts
    FROM requests r
    LEFT JOIN diagnostics_status d
        ON d.charge_point_id = r.charge_point_id AND d.ts >= r.call_ts
       AND (r.next_request_ts IS NULL OR d.ts < r.next_request_ts)
       AND (epoch_us(d.ts) - epoch_us(r.call_ts)) / 1e6 <= $diagnostics_timeout_s
    GROUP BY ALL
),
uploads AS (   -- what each file held, as the endpoint read it (recorder/diagnostics_file.py)
    SELECT charge_point_id, ts,
           json_extract_string(detail, '$.content.kind') AS kind,
           TRY_CAST(json_extract_string(detail, '$.content.readable') AS BOOLEAN) AS readable,
           json_extract_string(detail, '$.content.problem') AS problem
    FROM frames
    WHERE event = 'upload'
),
judged AS (
    SELECT f.*, u.kind, u.problem,
           -- uploads recorded before the file's content was: nothing says it is unreadable
           coalesce(u.readable, u.kind IS NULL) AS readable,
           r.answer_ts,
           EXISTS (SELECT 1 FROM diagnostics_status u
                   WHERE u.charge_point_id = f.charge_point_id AND u.event = 'upload')
               AS uploads_recorded
    FROM followed f
    JOIN requests r USING (charge_point_id, unique_id, call_ts)
    LEFT JOIN uploads u ON u.charge_point_id = f.charge_point_id AND u.ts = f.upload_ts
)
SELECT charge_point_id, 'GetDiagnostics' AS "check",
       CASE WHEN answered AND answer_type = 'CALLRESULT' AND coalesce(file_name, '') <> ''
             AND NOT failed AND uploading_ts IS NOT NULL AND uploaded_ts IS NOT NULL
             AND uploading_ts <= uploaded_ts
             AND (upload_name IS NOT NULL OR NOT uploads_recorded)
             AND (upload_name IS NULL OR (readable AND upload_size > 0))
            THEN 'pass' ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'GetDiagnostics not answered'
            WHEN answer_type = 'CALLERROR' THEN 'GetDiagnostics answered ' || error_code
            WHEN coalesce(file_name, '') = ''
                THEN 'GetDiagnostics answered without a fileName (no diagnostics available)'
            WHEN failed THEN 'diagnostics upload failed: ' || sequence
            WHEN uploading_ts IS NULL OR uploaded_ts IS NULL
                THEN 'DiagnosticsStatusNotification Uploading and Uploaded not both received (got '
                     || coalesce(sequence, 'none') || ')'
            WHEN uploading_ts > uploaded_ts
                THEN 'DiagnosticsStatusNotifications out of order: ' || sequence
            WHEN upload_name IS NULL AND uploads_recorded
                THEN format('{}, but the file {} did not arrive', sequence, file_name)
            WHEN upload_name IS NOT NULL AND NOT (readable AND upload_size > 0)
                THEN format('{}, but the file {} that arrived ({} bytes{}) is not a diagnostics '
                            || 'report: {}', sequence, upload_name, upload_size,
                            coalesce(', ' || kind, ''), coalesce(problem, 'empty file'))
            WHEN upload_name IS NOT NULL
                THEN format('{}, file {} arrived ({} bytes{})', sequence, upload_name,
                            upload_size, coalesce(', ' || kind || ', readable', ''))
            ELSE format('{}, file {}', sequence, file_name)
       END
       || CASE WHEN uploading_ts < answer_ts
               THEN ' (Uploading came before the GetDiagnostics answer: accepted, OCPP 1.6 does '
                    || 'not order them)'
               ELSE '' END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': uploaded_ts, 'unique_id': uploaded_unique_id}],
                   lambda e: e.ts IS NOT NULL) AS evidence
FROM judged
