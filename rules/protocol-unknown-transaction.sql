/*+++
id = "protocol-unknown-transaction"
title = "MeterValues and StopTransaction for known transactions"
criterion = """Every MeterValues with a transactionId and every StopTransaction refers to a
transaction whose StartTransaction answer gave that transactionId and that is not stopped yet: no
second StopTransaction for a stopped transaction, no live MeterValues after its StopTransaction
(queued ones delivered after the stop are function 14's)."""
severity = "warning"   # a capture that starts mid-transaction shows the same, without a fault
references = ["OCPP 1.6 section 4.7 Meter Values", "OCPP 1.6 section 4.10 Stop Transaction"]
+++*/
WITH known AS (
    SELECT DISTINCT charge_point_id, transaction_id
    FROM transactions
    WHERE transaction_id IS NOT NULL
),
stopped AS (   -- the first StopTransaction of each transaction
    SELECT charge_point_id, transaction_id, min(stop_ts) AS stop_ts,
           arg_min(stop_unique_id, stop_ts) AS stop_unique_id
    FROM transactions
    WHERE transaction_id IS NOT NULL AND stop_ts IS NOT NULL
    GROUP BY ALL
),
refs AS (
    SELECT m.charge_point_id, m.ts, m.unique_id, m.action,
           coalesce(TRY_CAST(m.fields[2] AS TIMESTAMPTZ) < c.opened_at - INTERVAL 1 SECOND, false)
               AS queued,
           TRY_CAST(m.fields[1] AS BIGINT) AS transaction_id,
           m.fields[1] AS transaction_text
    FROM (   -- each payload parsed once for both fields
        SELECT *, json_extract_string(payload, ['$.transactionId', '$.meterValue[0].timestamp'])
                      AS fields
        FROM messages
        WHERE message_type = 2 AND direction = 'cp_to_cs'
          AND action IN ('MeterValues', 'StopTransaction')
    ) m
    LEFT JOIN connections c ON c.connection_id = m.connection_id
    WHERE m.fields[1] IS NOT NULL
)
SELECT r.charge_point_id, r.action AS "check", 'fail' AS verdict,
       format('{} for unknown transaction {}', r.action, r.transaction_text) AS detail,
       [{'ts': r.ts, 'unique_id': r.unique_id}] AS evidence
FROM refs r
LEFT JOIN known k
    ON k.charge_point_id = r.charge_point_id AND k.transaction_id = r.transaction_id
WHERE k.transaction_id IS NULL
UNION ALL
-- After the first StopTransaction of a transaction: a second StopTransaction, or live MeterValues
-- (queued ones, sampled before the connection they came on was opened, are function 14's).
SELECT r.charge_point_id, r.action, 'fail',
       CASE r.action
           WHEN 'StopTransaction'
               THEN format('second StopTransaction for transaction {}, already stopped',
                           r.transaction_text)
           ELSE format('MeterValues for transaction {} after its StopTransaction',
                       r.transaction_text) END,
       [{'ts': s.stop_ts, 'unique_id': s.stop_unique_id}, {'ts': r.ts, 'unique_id': r.unique_id}]
FROM refs r
JOIN stopped s ON s.charge_point_id = r.charge_point_id AND s.transaction_id = r.transaction_id
WHERE r.ts > s.stop_ts
  AND (r.action = 'StopTransaction'
       OR NOT r.queued)
UNION ALL
SELECT charge_point_id, 'transactions', 'pass',
       format('{} MeterValues/StopTransaction, all for known transactions', count(*)), NULL
FROM refs r
GROUP BY charge_point_id
HAVING NOT bool_or(
    NOT EXISTS (SELECT 1 FROM known k
                WHERE k.charge_point_id = r.charge_point_id
                  AND k.transaction_id = r.transaction_id)
    OR EXISTS (SELECT 1 FROM stopped s
               WHERE s.charge_point_id = r.charge_point_id
                 AND s.transaction_id = r.transaction_id AND r.ts > s.stop_ts
                 AND (r.action = 'StopTransaction' OR NOT r.queued)))
