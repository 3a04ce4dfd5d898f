/*+++
id = "get-configuration-v201"
title = "Get configuration (list parameters that can be read)"
criterion = """After GetBaseReport is accepted, the charger sends the report in NotifyReport parts
with its requestId: seqNo contiguous from 0, the last part with tbc false, and report entries
(reportData) over all parts; the number of entries is reported. A GetVariables is answered with a
result per variable; one whose variables are all unknown to the charger is that spec answer (a
note)."""
function = 4
ocpp_versions = ["2.0.1", "2.1"]
severity = "error"
references = ["OCPP 2.0.1 B07 Get Base Report", "OCPP 2.0.1 B06 Get Variables", "OCTT TC_B_12", "OCTT TC_B_13", "OCTT TC_B_14", "OCTT TC_B_06", "OCTT TC_B_07", "OCTT TC_B_08"]
[params]
report_timeout_s = 300   # every part of the report within this after GetBaseReport
+++*/
-- OCPP 2.0.1 B07.FR.xx: after accepting GetBaseReport the Charging Station sends NotifyReport
-- messages with the requestId; "tbc: to be continued ... more messages follow"; seqNo numbers them
-- from 0. EmptyResultSet: nothing to report for that base.
WITH requests AS (
    SELECT *,
           TRY_CAST(json_extract_string(payload, '$.requestId') AS BIGINT) AS request_id,
           json_extract_string(payload, '$.reportBase') AS report_base
    FROM calls
    WHERE action = 'GetBaseReport' AND direction = 'cs_to_cp' AND NOT orphan_answer
      AND ocpp_version IN ('2.0.1', '2.1')
),
parts AS (
    SELECT r.charge_point_id, r.unique_id, r.call_ts, p.seq_no, p.tbc, p.entries, p.ts,
           p.unique_id AS part_unique_id
    FROM requests r
    JOIN notify_reports p
      ON p.charge_point_id = r.charge_point_id AND p.request_id = r.request_id
     AND p.ts >= r.call_ts AND (epoch_us(p.ts) - epoch_us(r.call_ts)) / 1e6 <= $report_timeout_s
),
reports AS (
    SELECT r.*,
           count(p.seq_no) AS part_count,
           coalesce(sum(p.entries), 0) AS entries,
           list(p.seq_no ORDER BY p.seq_no) FILTER (WHERE p.seq_no IS NOT NULL) AS seq_nos,
           arg_max(p.tbc, p.seq_no) AS last_tbc,
           max(p.ts) AS last_ts, arg_max(p.part_unique_id, p.ts) AS last_unique_id
    FROM requests r
    LEFT JOIN parts p ON p.charge_point_id = r.charge_point_id AND p.unique_id = r.unique_id
                     AND p.call_ts = r.call_ts
    GROUP BY ALL
),
judged AS (
    SELECT *,
           coalesce(seq_nos = range(0, part_count)::BIGINT[], false) AS contiguous
    FROM reports
),
read AS (
    SELECT c.charge_point_id, c.unique_id, c.call_ts, c.answer_ts, c.answered, c.answer_type,
           c.error_code,
           count(v.key) AS results,
           count(v.key) FILTER (WHERE v.status = 'Accepted') AS accepted,
           count(v.key) FILTER (WHERE v.status IN ('UnknownComponent', 'UnknownVariable'))
               AS unknown
    FROM calls c
    LEFT JOIN device_variables v
      ON v.source = 'GetVariables' AND v.connection_id = c.connection_id
     AND v.unique_id = c.unique_id
    WHERE c.action = 'GetVariables' AND c.direction = 'cs_to_cp' AND NOT c.orphan_answer
      AND c.ocpp_version IN ('2.0.1', '2.1')
    GROUP BY ALL
)
SELECT charge_point_id, format('GetBaseReport({})', coalesce(report_base, '?')) AS "check",
       CASE WHEN status = 'EmptyResultSet' THEN 'note'
            WHEN status = 'Accepted' AND entries > 0 AND contiguous
             AND last_tbc IS NOT DISTINCT FROM false THEN 'pass'
            ELSE 'fail' END AS verdict,
       CASE WHEN NOT answered THEN 'GetBaseReport not answered'
            WHEN answer_type = 'CALLERROR' THEN 'GetBaseReport answered ' || error_code
            WHEN status = 'EmptyResultSet'
                THEN format('GetBaseReport({}) answered EmptyResultSet: nothing to report',
                            report_base)
            WHEN status IS DISTINCT FROM 'Accepted'
                THEN 'GetBaseReport answered ' || coalesce(status, 'without a status')
            WHEN part_count = 0
                THEN format('GetBaseReport {} accepted, but no NotifyReport with requestId {} '
                            || 'within {} s', report_base, request_id, $report_timeout_s)
            WHEN NOT contiguous
                THEN format('NotifyReport parts of request {} with seqNo {}: not contiguous from 0',
                            request_id, array_to_string(seq_nos, ', '))
            WHEN last_tbc IS DISTINCT FROM false
                THEN format('NotifyReport of request {}: last part (seqNo {}) still says tbc, the '
                            || 'report never ended', request_id, seq_nos[-1])
            WHEN entries = 0 THEN format('NotifyReport of request {} without any reportData',
                                         request_id)
            ELSE format('{} report entries in {} NotifyReport part(s) (seqNo 0..{})', entries,
                        part_count, part_count - 1)
       END AS detail,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': last_ts, 'unique_id': last_unique_id}], lambda e: e.ts IS NOT NULL)
           AS evidence
FROM judged
UNION ALL
SELECT charge_point_id, 'GetVariables',
       CASE WHEN answer_type = 'CALLRESULT' AND accepted > 0 THEN 'pass'
            WHEN answer_type = 'CALLRESULT' AND results > 0 AND unknown = results THEN 'note'
            ELSE 'fail' END,
       CASE WHEN NOT answered THEN 'GetVariables not answered'
            WHEN answer_type = 'CALLERROR' THEN 'GetVariables answered ' || error_code
            WHEN results = 0 THEN 'GetVariables answered without any getVariableResult'
            WHEN accepted = 0 AND unknown = results
                THEN format('GetVariables of {} variable(s) the charger does not have: '
                            || 'UnknownComponent/UnknownVariable, as OCPP 2.0.1 B06 asks', results)
            ELSE format('{} of {} variables read', accepted, results) END,
       list_filter([{'ts': call_ts, 'unique_id': unique_id},
                    {'ts': answer_ts, 'unique_id': unique_id}], lambda e: e.ts IS NOT NULL)
FROM read
