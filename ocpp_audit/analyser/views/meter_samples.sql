/*+++
name = "meter_samples"
description = """\
One row per sampledValue, from MeterValues and from StopTransaction transactionData (OCPP 1.6 \
section 7.31), and in 2.0.1 from TransactionEvent meterValue and MeterValues (OCPP 2.0.1 J01, J02), \
with the spec's defaults filled in."""
# Each MeterValues / StopTransaction payload is parsed once into this structure (from_json), instead
# of one JSON parse per field of each of its sampledValues (10.6M frames: 18 s -> see the commit).
# from_json yields what json_extract_string yields for each field (first of duplicate keys, JSON text
# for a non-string value, NULL for a missing key or a non-object element), so malformed payloads give
# the same rows as before.
[columns]
charge_point_id = "the charger"
connection_id = "the connection it was delivered on"
ts = "when the message arrived (recorder's clock)"
unique_id = "OCPP-J unique id of the message"
source = "MeterValues, StopTransaction (1.6) or TransactionEvent (2.0.1)"
connector_id = "connectorId (1.6 MeterValues; 2.0.1 TransactionEvent evse.connectorId)"
transaction_id = "1.6: transactionId, when given; null in 2.0.1 (see transaction_ref)"
timestamp = "the meterValue's timestamp (the charger's clock)"
measurand = "measurand (default Energy.Active.Import.Register)"
phase = "phase (L1, L2, L3, N, L1-N, ...), null when not given"
unit = "unit as given (2.0.1: unitOfMeasure.unit; the spec's default is Wh for energy)"
context = "context (default Sample.Periodic)"
location = "location (default Outlet)"
format = "Raw or SignedData (default Raw)"
value_text = "the value exactly as sent"
value = "the value as a number; null when it does not parse"
evse_id = "2.0.1 and 2.1: evseId (MeterValues) or evse.id (TransactionEvent)"
transaction_ref = "the transaction's id as text: 1.6 transactionId, 2.0.1 transactionInfo.transactionId (charger-generated)"
event_type = "2.0.1 TransactionEvent eventType (Started, Updated, Ended); null otherwise"
ocpp_version = "the connection's OCPP version (null when none was negotiated)"
+++*/
WITH meter_values AS (
    SELECT charge_point_id, connection_id, ts, seq, unique_id, 'MeterValues' AS source,
           TRY_CAST(p.connectorId AS INTEGER) AS connector_id,
           TRY_CAST(p.transactionId AS BIGINT) AS transaction_id, ocpp_version,
           unnest(p.meterValue) AS meter_value
    FROM (
        SELECT *, from_json(payload, '{"connectorId": "VARCHAR", "transactionId": "VARCHAR", "meterValue": [{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR", "format": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "unit": "VARCHAR"}]}]}') AS p
        FROM messages
        WHERE message_type = 2 AND action = 'MeterValues' AND direction = 'cp_to_cs'
          AND coalesce(ocpp_version, '1.6') = '1.6'
    )
    UNION ALL
    SELECT charge_point_id, connection_id, ts, seq, unique_id, 'StopTransaction', NULL,
           TRY_CAST(p.transactionId AS BIGINT), ocpp_version,
           unnest(p.transactionData)
    FROM (
        SELECT *, from_json(payload, '{"transactionId": "VARCHAR", "transactionData": [{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR", "format": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "unit": "VARCHAR"}]}]}') AS p
        FROM messages
        WHERE message_type = 2 AND action = 'StopTransaction' AND direction = 'cp_to_cs'
          AND coalesce(ocpp_version, '1.6') = '1.6'
    )
),
-- OCPP 2.0.1 SampledValueType: value is a JSON number; the unit is in unitOfMeasure.
meter_values_2 AS (
    SELECT charge_point_id, connection_id, ts, seq, unique_id, 'MeterValues' AS source,
           NULL::INTEGER AS connector_id, TRY_CAST(p.evseId AS INTEGER) AS evse_id,
           NULL::VARCHAR AS transaction_ref, NULL::VARCHAR AS event_type, ocpp_version,
           unnest(p.meterValue) AS meter_value
    FROM (
        SELECT *, from_json(payload, '{"evseId": "VARCHAR", "meterValue": [{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "unitOfMeasure": {"unit": "VARCHAR"}}]}]}') AS p
        FROM messages
        WHERE message_type = 2 AND action = 'MeterValues' AND direction = 'cp_to_cs'
          AND ocpp_version IN ('2.0.1', '2.1')
    )
    UNION ALL
    SELECT charge_point_id, connection_id, ts, seq, unique_id, 'TransactionEvent',
           TRY_CAST(p.evse.connectorId AS INTEGER), TRY_CAST(p.evse.id AS INTEGER),
           p.transactionInfo.transactionId, p.eventType, ocpp_version,
           unnest(p.meterValue)
    FROM (
        SELECT *, from_json(payload, '{"eventType": "VARCHAR", "evse": {"id": "VARCHAR", "connectorId": "VARCHAR"}, "transactionInfo": {"transactionId": "VARCHAR"}, "meterValue": [{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "unitOfMeasure": {"unit": "VARCHAR"}}]}]}') AS p
        FROM messages
        WHERE message_type = 2 AND action = 'TransactionEvent' AND direction = 'cp_to_cs'
          AND ocpp_version IN ('2.0.1', '2.1')
    )
),
sampled AS (
    SELECT * EXCLUDE (meter_value),
           TRY_CAST(meter_value.timestamp AS TIMESTAMPTZ) AS timestamp,
           unnest(meter_value.sampledValue) AS sampled_value
    FROM meter_values
),
sampled_2 AS (
    SELECT * EXCLUDE (meter_value),
           TRY_CAST(meter_value.timestamp AS TIMESTAMPTZ) AS timestamp,
           unnest(meter_value.sampledValue) AS sampled_value
    FROM meter_values_2
)
SELECT charge_point_id, connection_id, ts, unique_id, source, connector_id, transaction_id,
       timestamp,
       coalesce(sampled_value.measurand, 'Energy.Active.Import.Register') AS measurand,
       sampled_value.phase AS phase,
       sampled_value.unit AS unit,
       coalesce(sampled_value.context, 'Sample.Periodic') AS context,
       coalesce(sampled_value.location, 'Outlet') AS location,
       coalesce(sampled_value.format, 'Raw') AS format,
       sampled_value.value AS value_text,
       TRY_CAST(trim(sampled_value.value) AS DOUBLE) AS value,
       NULL::INTEGER AS evse_id, transaction_id::VARCHAR AS transaction_ref,
       NULL::VARCHAR AS event_type, ocpp_version
FROM sampled
UNION ALL
-- OCPP 2.0.1 J01/E: context defaults to Sample.Periodic, measurand to
-- Energy.Active.Import.Register, location to Outlet (SampledValueType); signed values carry
-- signedMeterValue beside the number (format SignedData here).
SELECT charge_point_id, connection_id, ts, unique_id, source, connector_id, NULL::BIGINT,
       timestamp,
       coalesce(sampled_value.measurand, 'Energy.Active.Import.Register'),
       sampled_value.phase,
       sampled_value.unitOfMeasure.unit,
       coalesce(sampled_value.context, 'Sample.Periodic'),
       coalesce(sampled_value.location, 'Outlet'),
       'Raw',
       sampled_value.value,
       TRY_CAST(trim(sampled_value.value) AS DOUBLE),
       evse_id, transaction_ref, event_type, ocpp_version
FROM sampled_2
