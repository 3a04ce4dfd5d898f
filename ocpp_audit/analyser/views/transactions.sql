/*+++
name = "transactions"
description = """\
Each StartTransaction with the transactionId the backend gave, its StopTransaction, and whether \
either was delivered late from the charger's offline queue."""
[columns]
charge_point_id = "the charger"
transaction_id = "transactionId from the StartTransaction answer"
connector_id = "connectorId"
id_tag = "idTag that started it"
id_tag_status = "idTagInfo.status in the StartTransaction answer"
start_ts = "when the StartTransaction arrived"
start_unique_id = "unique id of the StartTransaction"
start_connection_id = "connection the StartTransaction arrived on"
start_timestamp = "StartTransaction timestamp (the charger's clock)"
meter_start = "meterStart, Wh"
reservation_id = "reservationId, when given"
start_late = "the StartTransaction came from the offline queue"
stop_ts = "when the StopTransaction arrived; null while running"
stop_unique_id = "unique id of the StopTransaction"
stop_connection_id = "connection the StopTransaction arrived on"
stop_timestamp = "StopTransaction timestamp (the charger's clock)"
meter_stop = "meterStop, Wh"
reason = "stop reason as sent (null when omitted)"
stop_reason = "stop reason with the spec's default: Local when omitted"
stop_id_tag = "idTag in the StopTransaction"
transaction_data = "number of meterValue elements in transactionData"
stop_late = "the StopTransaction came from the offline queue"
[params]
# A transaction message whose payload timestamp is older than its delivery by more than this came
# from the charger's offline queue (OCPP 1.6 section 4.7: queued transaction messages are delivered
# once the connection is back).
late_after_s = 60.0
# The charger's clock is not the recorder's: timestamps often have whole seconds or milliseconds,
# cut rather than rounded, and clocks drift. A message stamped less than this before the reconnect
# was sent on the new connection, not kept in the queue.
clock_tolerance_s = 1.0
+++*/
WITH starts AS (
    SELECT charge_point_id, connection_id, call_ts, unique_id,
           TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id,
           json_extract_string(payload, '$.idTag') AS id_tag,
           TRY_CAST(json_extract_string(payload, '$.meterStart') AS BIGINT) AS meter_start,
           TRY_CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMPTZ) AS timestamp,
           TRY_CAST(json_extract_string(payload, '$.reservationId') AS BIGINT)
               AS reservation_id,
           TRY_CAST(json_extract_string(answer_payload, '$.transactionId') AS BIGINT)
               AS transaction_id,
           json_extract_string(answer_payload, '$.idTagInfo.status') AS id_tag_status
    FROM calls
    WHERE action = 'StartTransaction' AND direction = 'cp_to_cs' AND NOT orphan_answer
),
stops AS (
    SELECT charge_point_id, connection_id, ts AS call_ts, unique_id,
           TRY_CAST(json_extract_string(payload, '$.transactionId') AS BIGINT)
               AS transaction_id,
           TRY_CAST(json_extract_string(payload, '$.meterStop') AS BIGINT) AS meter_stop,
           TRY_CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMPTZ) AS timestamp,
           json_extract_string(payload, '$.reason') AS reason,
           json_extract_string(payload, '$.idTag') AS id_tag,
           coalesce(json_array_length(payload, '$.transactionData'), 0) AS transaction_data
    FROM messages
    WHERE message_type = 2 AND action = 'StopTransaction' AND direction = 'cp_to_cs'
),
gaps AS (   -- offline gaps, less the charger clock's tolerance at the reconnect
    SELECT charge_point_id, offline_from,
           opened_at - to_microseconds(CAST($clock_tolerance_s * 1e6 AS BIGINT)) AS offline_until
    FROM connections
    WHERE offline_s > 0
),
paired AS (
    SELECT s.*, p.connection_id AS stop_connection_id, p.call_ts AS stop_ts,
           p.unique_id AS stop_unique_id, p.meter_stop, p.timestamp AS stop_timestamp,
           p.reason, p.id_tag AS stop_id_tag, p.transaction_data
    FROM starts s
    LEFT JOIN stops p
      ON p.charge_point_id = s.charge_point_id
     AND p.transaction_id = s.transaction_id
     AND p.call_ts >= s.call_ts
    QUALIFY row_number() OVER (
        PARTITION BY s.connection_id, s.unique_id, s.call_ts ORDER BY p.call_ts) = 1
)
SELECT charge_point_id, transaction_id, connector_id, id_tag, id_tag_status,
       call_ts AS start_ts, unique_id AS start_unique_id, connection_id AS start_connection_id,
       timestamp AS start_timestamp, meter_start, reservation_id,
       coalesce(
           (epoch_us(call_ts) - epoch_us(timestamp)) / 1e6 > $late_after_s
           OR EXISTS (SELECT 1 FROM gaps g
                      WHERE g.charge_point_id = paired.charge_point_id
                        AND paired.timestamp > g.offline_from
                        AND paired.timestamp < g.offline_until),
           false) AS start_late,
       stop_ts, stop_unique_id, stop_connection_id, stop_timestamp, meter_stop, reason,
       CASE WHEN stop_ts IS NOT NULL THEN coalesce(reason, 'Local') END AS stop_reason,
       stop_id_tag, transaction_data,
       CASE WHEN stop_ts IS NOT NULL THEN coalesce(
           (epoch_us(stop_ts) - epoch_us(stop_timestamp)) / 1e6 > $late_after_s
           OR EXISTS (SELECT 1 FROM gaps g
                      WHERE g.charge_point_id = paired.charge_point_id
                        AND paired.stop_timestamp > g.offline_from
                        AND paired.stop_timestamp < g.offline_until),
           false) END AS stop_late
FROM paired
