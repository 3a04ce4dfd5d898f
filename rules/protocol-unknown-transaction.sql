/*+++
id = "protocol-unknown-transaction"
title = "MeterValues and StopTransaction for known transactions"
criterion = """Every MeterValues with a transactionId and every StopTransaction refers to a
transaction whose StartTransaction answer gave that transactionId."""
severity = "warning"   # a capture that starts mid-transaction shows the same, without a fault
references = ["OCPP 1.6 section 4.7 Meter Values", "OCPP 1.6 section 4.10 Stop Transaction"]
+++*/
WITH known AS (
    SELECT DISTINCT charge_point_id, transaction_id
    FROM transactions
    WHERE transaction_id IS NOT NULL
),
refs AS (
    SELECT charge_point_id, ts, unique_id, action,
           TRY_CAST(json_extract_string(payload, '$.transactionId') AS BIGINT) AS transaction_id,
           json_extract_string(payload, '$.transactionId') AS transaction_text
    FROM messages
    WHERE message_type = 2 AND direction = 'cp_to_cs'
      AND action IN ('MeterValues', 'StopTransaction')
      AND json_extract_string(payload, '$.transactionId') IS NOT NULL
)
SELECT r.charge_point_id, r.action AS "check", 'fail' AS verdict,
       format('{} for unknown transaction {}', r.action, r.transaction_text) AS detail,
       [{'ts': r.ts, 'unique_id': r.unique_id}] AS evidence
FROM refs r
LEFT JOIN known k
    ON k.charge_point_id = r.charge_point_id AND k.transaction_id = r.transaction_id
WHERE k.transaction_id IS NULL
UNION ALL
SELECT charge_point_id, 'transactions', 'pass',
       format('{} MeterValues/StopTransaction, all for known transactions', count(*)), NULL
FROM refs
GROUP BY charge_point_id
