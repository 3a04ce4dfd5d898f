/*+++
name = "meter_samples"
description = """\
One row per sampledValue, from MeterValues and from StopTransaction transactionData (OCPP 1.6 \
section 7.31, with the spec's defaults filled in)."""
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
source = "MeterValues or StopTransaction"
connector_id = "connectorId (MeterValues only)"
transaction_id = "transactionId, when given"
timestamp = "the meterValue's timestamp (the charger's clock)"
measurand = "measurand (default Energy.Active.Import.Register)"
phase = "phase (L1, L2, L3, N, L1-N, ...), null when not given"
unit = "unit as given (the spec's default is Wh for energy)"
context = "context (default Sample.Periodic)"
location = "location (default Outlet)"
format = "Raw or SignedData (default Raw)"
value_text = "the value exactly as sent"
value = "the value as a number; null when it does not parse"
+++*/
WITH meter_values AS (
    SELECT charge_point_id, connection_id, ts, seq, unique_id, 'MeterValues' AS source,
           TRY_CAST(p.connectorId AS INTEGER) AS connector_id,
           TRY_CAST(p.transactionId AS BIGINT) AS transaction_id,
           unnest(p.meterValue) AS meter_value
    FROM (
        SELECT *, from_json(payload, '{"connectorId": "VARCHAR", "transactionId": "VARCHAR", "meterValue": [{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR", "format": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "unit": "VARCHAR"}]}]}') AS p
        FROM messages
        WHERE message_type = 2 AND action = 'MeterValues' AND direction = 'cp_to_cs'
    )
    UNION ALL
    SELECT charge_point_id, connection_id, ts, seq, unique_id, 'StopTransaction', NULL,
           TRY_CAST(p.transactionId AS BIGINT),
           unnest(p.transactionData)
    FROM (
        SELECT *, from_json(payload, '{"transactionId": "VARCHAR", "transactionData": [{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR", "format": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR", "unit": "VARCHAR"}]}]}') AS p
        FROM messages
        WHERE message_type = 2 AND action = 'StopTransaction' AND direction = 'cp_to_cs'
    )
),
sampled AS (
    SELECT * EXCLUDE (meter_value),
           TRY_CAST(meter_value.timestamp AS TIMESTAMPTZ) AS timestamp,
           unnest(meter_value.sampledValue) AS sampled_value
    FROM meter_values
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
       TRY_CAST(trim(sampled_value.value) AS DOUBLE) AS value
FROM sampled
