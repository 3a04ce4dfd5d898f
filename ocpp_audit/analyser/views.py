"""The analysts' stable SQL surface: DuckDB views over the ``frames`` view of a capture.

Every view is plain SQL over ``frames`` (no Python functions, literal parameters only), so the views
also work in a DuckDB file opened by another program, and stay streaming over captures of millions of
frames: JSON is read with DuckDB's JSON functions, lists with ``unnest``, pairs with window functions.
``VIEWS`` documents each view column by column; ``ocpp-audit query --views`` and the README print it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

logger = logging.getLogger(__name__)

# View parameters and their defaults (overridable with --param NAME=VALUE).
DEFAULT_PARAMS: dict[str, float] = {
    # A transaction message whose payload timestamp is older than its delivery by more than this
    # came from the charger's offline queue (OCPP 1.6 section 4.7: queued transaction messages are
    # delivered once the connection is back).
    "late_after_s": 60.0,
}


@dataclass(frozen=True)
class View:
    name: str
    description: str
    columns: tuple[tuple[str, str], ...]  # (column name, one-line meaning)
    sql: str


def _seconds(later: str, earlier: str) -> str:
    """SQL for the seconds from ``earlier`` to ``later`` (two TIMESTAMPTZ expressions)."""
    return f"((epoch_us({later}) - epoch_us({earlier})) / 1e6)"


_MESSAGES = View(
    "messages",
    "Every WebSocket message (event = 'message'), both directions, with its parsed fields.",
    (
        ("ts", "recorder's clock when the message arrived (UTC)"),
        ("charge_point_id", "the charger"),
        ("connection_id", "one WebSocket connection of the charger"),
        ("seq", "order of the event within its connection"),
        ("direction", "cp_to_cs (charger to backend) or cs_to_cp"),
        ("message_type", "2 CALL, 3 CALLRESULT, 4 CALLERROR; null if unreadable"),
        ("unique_id", "OCPP-J unique id"),
        ("action", "CALL action; for answers, the action of the CALL answered"),
        ("payload", "payload (or CALLERROR details) as JSON text, as on the wire"),
        ("error_code", "CALLERROR errorCode"),
        ("error_description", "CALLERROR errorDescription"),
        ("parse_error", "why the frame is not valid OCPP-J; null when well formed"),
        ("raw", "the text frame exactly as received"),
        ("raw_binary", "a binary frame exactly as received"),
        ("injected", "sent by ocpp-audit (active mode), or a charger's answer to it"),
        ("date", "UTC date partition"),
    ),
    """
    SELECT ts, charge_point_id, connection_id, seq, direction, message_type, unique_id, action,
           payload, error_code, error_description, parse_error, raw, raw_binary, injected, date
    FROM frames
    WHERE event = 'message'
    """,
)

# OCPP-J 1.6 section 4.1.1: a CALLRESULT or CALLERROR answers the CALL with the same unique id that
# travelled the other way on the same connection. Rows are paired per (connection, direction of the
# CALL, unique id) in arrival order: a CALL's answer is the next row of its key when that row is an
# answer; an answer whose previous row is not a CALL answers nothing we saw.
_CALLS = View(
    "calls",
    "Each CALL with its answer (CALLRESULT or CALLERROR); unanswered CALLs and answers to unknown"
    " ids are rows too.",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection the CALL travelled on"),
        ("direction", "direction of the CALL: cp_to_cs (charger asks) or cs_to_cp (backend asks)"),
        ("unique_id", "OCPP-J unique id"),
        ("action", "the CALL's action (for an answer to an unknown id: null)"),
        ("call_ts", "when the CALL arrived; null for an answer to an unknown id"),
        ("call_seq", "seq of the CALL in its connection"),
        ("payload", "the CALL's payload as JSON text"),
        ("injected", "the CALL was sent by ocpp-audit (active mode)"),
        ("answered", "an answer (CALLRESULT or CALLERROR) came back"),
        ("answer_type", "CALLRESULT or CALLERROR; null when unanswered"),
        ("answer_ts", "when the answer arrived"),
        ("answer_seq", "seq of the answer in its connection"),
        ("answer_payload", "the CALLRESULT payload (or CALLERROR details) as JSON text"),
        ("status", "the answer payload's status field (Accepted, Rejected, ...)"),
        ("error_code", "CALLERROR errorCode"),
        ("error_description", "CALLERROR errorDescription"),
        ("answer_parse_error", "why the answer is not valid OCPP-J, if it is not"),
        ("latency_s", "seconds from CALL to answer"),
        (
            "duplicate_id",
            "the previous CALL with this unique id and direction was still unanswered",
        ),
        ("orphan_answer", "an answer to a unique id with no CALL in flight (the row has no CALL)"),
    ),
    f"""
    WITH keyed AS (
        SELECT ts, charge_point_id, connection_id, seq, unique_id, action, payload, injected,
               message_type, error_code, error_description, parse_error,
               CASE WHEN message_type = 2 THEN direction
                    WHEN direction = 'cp_to_cs' THEN 'cs_to_cp' ELSE 'cp_to_cs' END AS call_direction
        FROM messages
        WHERE message_type IN (2, 3, 4) AND unique_id IS NOT NULL
    ),
    sequenced AS (
        SELECT *,
               lag(message_type) OVER w AS previous_type,
               lead(message_type) OVER w AS next_type,
               lead(ts) OVER w AS next_ts,
               lead(seq) OVER w AS next_seq,
               lead(payload) OVER w AS next_payload,
               lead(error_code) OVER w AS next_error_code,
               lead(error_description) OVER w AS next_error_description,
               lead(parse_error) OVER w AS next_parse_error
        FROM keyed
        WINDOW w AS (PARTITION BY connection_id, call_direction, unique_id ORDER BY seq)
    )
    SELECT charge_point_id, connection_id, call_direction AS direction, unique_id, action,
           ts AS call_ts, seq AS call_seq, payload, injected,
           coalesce(next_type IN (3, 4), false) AS answered,
           CASE next_type WHEN 3 THEN 'CALLRESULT' WHEN 4 THEN 'CALLERROR' END AS answer_type,
           CASE WHEN next_type IN (3, 4) THEN next_ts END AS answer_ts,
           CASE WHEN next_type IN (3, 4) THEN next_seq END AS answer_seq,
           CASE WHEN next_type IN (3, 4) THEN next_payload END AS answer_payload,
           CASE WHEN next_type = 3 THEN json_extract_string(next_payload, '$.status') END AS status,
           CASE WHEN next_type = 4 THEN next_error_code END AS error_code,
           CASE WHEN next_type = 4 THEN next_error_description END AS error_description,
           CASE WHEN next_type IN (3, 4) THEN next_parse_error END AS answer_parse_error,
           CASE WHEN next_type IN (3, 4) THEN {_seconds("next_ts", "ts")} END AS latency_s,
           coalesce(previous_type = 2, false) AS duplicate_id,
           false AS orphan_answer
    FROM sequenced
    WHERE message_type = 2
    UNION ALL
    SELECT charge_point_id, connection_id, call_direction, unique_id, action,
           NULL, NULL, NULL, injected,
           true,
           CASE message_type WHEN 3 THEN 'CALLRESULT' ELSE 'CALLERROR' END,
           ts, seq, payload,
           CASE WHEN message_type = 3 THEN json_extract_string(payload, '$.status') END,
           error_code, error_description, parse_error,
           NULL, false, true
    FROM sequenced
    WHERE message_type IN (3, 4) AND (previous_type IS NULL OR previous_type <> 2)
    """,
)

_CONNECTIONS = View(
    "connections",
    "One row per WebSocket connection: when it was open, how it ended, and the offline gap before it.",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection"),
        ("opened_at", "open event (or first event seen, when the capture starts mid-connection)"),
        ("closed_at", "close event (or last event seen, when the connection did not close)"),
        ("closed", "a close event was recorded"),
        ("close_code", "WebSocket close code (1006: dropped without a close frame)"),
        ("close_reason", "WebSocket close reason"),
        ("closed_by", "charger, backend or recorder"),
        ("messages", "number of messages on the connection"),
        ("path", "request path of the charger's URL"),
        ("subprotocol", "subprotocol the backend chose"),
        ("remote_address", "charger's address, host:port"),
        ("auth_user", "Basic-auth user name"),
        ("tls", "the charger connected with TLS"),
        ("offline_from", "end of the charger's previous connection (null for its first)"),
        ("offline_s", "seconds offline before this connection (0 when the previous overlapped)"),
    ),
    f"""
    WITH per_connection AS (
        SELECT connection_id,
               any_value(charge_point_id) AS charge_point_id,
               min(ts) FILTER (WHERE event = 'open') AS open_ts,
               max(ts) FILTER (WHERE event = 'close') AS close_ts,
               min(ts) AS first_ts,
               max(ts) AS last_ts,
               any_value(close_code) FILTER (WHERE event = 'close') AS close_code,
               any_value(close_reason) FILTER (WHERE event = 'close') AS close_reason,
               any_value(closed_by) FILTER (WHERE event = 'close') AS closed_by,
               count(*) FILTER (WHERE event = 'message') AS messages,
               any_value(path) FILTER (WHERE event = 'open') AS path,
               any_value(subprotocol) FILTER (WHERE event = 'open') AS subprotocol,
               any_value(remote_address) FILTER (WHERE event = 'open') AS remote_address,
               any_value(auth_user) FILTER (WHERE event = 'open') AS auth_user,
               any_value(tls) FILTER (WHERE event = 'open') AS tls
        FROM frames
        WHERE event <> 'refused' AND connection_id IS NOT NULL
        GROUP BY connection_id
    ),
    intervals AS (
        SELECT *,
               coalesce(open_ts, first_ts) AS opened_at,
               coalesce(close_ts, last_ts) AS closed_at
        FROM per_connection
    ),
    ordered AS (
        SELECT *,
               lag(closed_at) OVER (PARTITION BY charge_point_id ORDER BY opened_at, connection_id)
                   AS offline_from
        FROM intervals
    )
    SELECT charge_point_id, connection_id, opened_at, closed_at, close_ts IS NOT NULL AS closed,
           close_code, close_reason, closed_by, messages, path, subprotocol, remote_address,
           auth_user, tls, offline_from,
           CASE WHEN offline_from IS NOT NULL
                THEN greatest({_seconds("opened_at", "offline_from")}, 0) END AS offline_s
    FROM ordered
    """,
)

_BOOTS = View(
    "boots",
    "BootNotification requests (OCPP 1.6 section 4.2) with the backend's answer.",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection"),
        ("ts", "when the BootNotification arrived"),
        ("unique_id", "OCPP-J unique id"),
        ("vendor", "chargePointVendor"),
        ("model", "chargePointModel"),
        ("serial_number", "chargePointSerialNumber"),
        ("charge_box_serial_number", "chargeBoxSerialNumber (deprecated in 1.6)"),
        ("firmware_version", "firmwareVersion"),
        ("iccid", "iccid of the modem's SIM card"),
        ("imsi", "imsi of the modem's SIM card"),
        ("meter_type", "meterType"),
        ("meter_serial_number", "meterSerialNumber"),
        ("payload", "the request payload as JSON text"),
        ("answered", "the backend answered"),
        ("status", "registration status: Accepted, Pending or Rejected"),
        ("interval_s", "heartbeat interval the backend set, in seconds"),
        ("current_time", "the backend's currentTime"),
    ),
    """
    SELECT charge_point_id, connection_id, call_ts AS ts, unique_id,
           json_extract_string(payload, '$.chargePointVendor') AS vendor,
           json_extract_string(payload, '$.chargePointModel') AS model,
           json_extract_string(payload, '$.chargePointSerialNumber') AS serial_number,
           json_extract_string(payload, '$.chargeBoxSerialNumber') AS charge_box_serial_number,
           json_extract_string(payload, '$.firmwareVersion') AS firmware_version,
           json_extract_string(payload, '$.iccid') AS iccid,
           json_extract_string(payload, '$.imsi') AS imsi,
           json_extract_string(payload, '$.meterType') AS meter_type,
           json_extract_string(payload, '$.meterSerialNumber') AS meter_serial_number,
           payload, answered, status,
           TRY_CAST(json_extract_string(answer_payload, '$.interval') AS INTEGER) AS interval_s,
           TRY_CAST(json_extract_string(answer_payload, '$.currentTime') AS TIMESTAMPTZ)
               AS current_time
    FROM calls
    WHERE action = 'BootNotification' AND direction = 'cp_to_cs' AND NOT orphan_answer
    """,
)

_STATUS_NOTIFICATIONS = View(
    "status_notifications",
    "StatusNotification requests (OCPP 1.6 section 4.9), with the connector's previous status.",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection"),
        ("ts", "when the StatusNotification arrived"),
        ("unique_id", "OCPP-J unique id"),
        ("connector_id", "connectorId; 0 is the charge point as a whole"),
        ("status", "ChargePointStatus: Available, Preparing, Charging, ..."),
        ("error_code", "ChargePointErrorCode (NoError when there is none)"),
        ("info", "free text about the error"),
        ("vendor_id", "vendorId of a vendor-specific error"),
        ("vendor_error_code", "vendor-specific error code"),
        ("timestamp", "the payload's timestamp (the charger's clock)"),
        ("previous_status", "the status this connector reported before (null for the first)"),
        ("previous_ts", "when that previous status arrived"),
        ("injected", "sent in answer to an injected TriggerMessage"),
    ),
    """
    WITH notifications AS (
        SELECT charge_point_id, connection_id, ts, seq, unique_id,
               TRY_CAST(json_extract_string(payload, '$.connectorId') AS INTEGER) AS connector_id,
               json_extract_string(payload, '$.status') AS status,
               json_extract_string(payload, '$.errorCode') AS error_code,
               json_extract_string(payload, '$.info') AS info,
               json_extract_string(payload, '$.vendorId') AS vendor_id,
               json_extract_string(payload, '$.vendorErrorCode') AS vendor_error_code,
               TRY_CAST(json_extract_string(payload, '$.timestamp') AS TIMESTAMPTZ) AS timestamp,
               injected
        FROM messages
        WHERE message_type = 2 AND action = 'StatusNotification' AND direction = 'cp_to_cs'
    )
    SELECT charge_point_id, connection_id, ts, unique_id, connector_id, status, error_code, info,
           vendor_id, vendor_error_code, timestamp,
           lag(status) OVER w AS previous_status,
           lag(ts) OVER w AS previous_ts,
           injected
    FROM notifications
    WINDOW w AS (PARTITION BY charge_point_id, connector_id ORDER BY ts, seq)
    """,
)

# Each MeterValues / StopTransaction payload is parsed once into this structure (from_json), instead
# of one JSON parse per field of each of its sampledValues (10.6M frames: 18 s -> see the commit).
# from_json yields what json_extract_string yields for each field (first of duplicate keys, JSON text
# for a non-string value, NULL for a missing key or a non-object element), so malformed payloads give
# the same rows as before.
_METER_VALUE_TYPE = (
    '[{"timestamp": "VARCHAR", "sampledValue": [{"value": "VARCHAR", "context": "VARCHAR",'
    ' "format": "VARCHAR", "measurand": "VARCHAR", "phase": "VARCHAR", "location": "VARCHAR",'
    ' "unit": "VARCHAR"}]}]'
)
_METER_VALUES_TYPE = (
    f'{{"connectorId": "VARCHAR", "transactionId": "VARCHAR", "meterValue": {_METER_VALUE_TYPE}}}'
)
_STOP_TRANSACTION_TYPE = f'{{"transactionId": "VARCHAR", "transactionData": {_METER_VALUE_TYPE}}}'

_METER_SAMPLES = View(
    "meter_samples",
    "One row per sampledValue, from MeterValues and from StopTransaction transactionData"
    " (OCPP 1.6 section 7.31, with the spec's defaults filled in).",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection it was delivered on"),
        ("ts", "when the message arrived (recorder's clock)"),
        ("unique_id", "OCPP-J unique id of the message"),
        ("source", "MeterValues or StopTransaction"),
        ("connector_id", "connectorId (MeterValues only)"),
        ("transaction_id", "transactionId, when given"),
        ("timestamp", "the meterValue's timestamp (the charger's clock)"),
        ("measurand", "measurand (default Energy.Active.Import.Register)"),
        ("phase", "phase (L1, L2, L3, N, L1-N, ...), null when not given"),
        ("unit", "unit as given (the spec's default is Wh for energy)"),
        ("context", "context (default Sample.Periodic)"),
        ("location", "location (default Outlet)"),
        ("format", "Raw or SignedData (default Raw)"),
        ("value_text", "the value exactly as sent"),
        ("value", "the value as a number; null when it does not parse"),
    ),
    f"""
    WITH meter_values AS (
        SELECT charge_point_id, connection_id, ts, seq, unique_id, 'MeterValues' AS source,
               TRY_CAST(p.connectorId AS INTEGER) AS connector_id,
               TRY_CAST(p.transactionId AS BIGINT) AS transaction_id,
               unnest(p.meterValue) AS meter_value
        FROM (
            SELECT *, from_json(payload, '{_METER_VALUES_TYPE}') AS p
            FROM messages
            WHERE message_type = 2 AND action = 'MeterValues' AND direction = 'cp_to_cs'
        )
        UNION ALL
        SELECT charge_point_id, connection_id, ts, seq, unique_id, 'StopTransaction', NULL,
               TRY_CAST(p.transactionId AS BIGINT),
               unnest(p.transactionData)
        FROM (
            SELECT *, from_json(payload, '{_STOP_TRANSACTION_TYPE}') AS p
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
    """,
)

_TRANSACTIONS = View(
    "transactions",
    "Each StartTransaction with the transactionId the backend gave, its StopTransaction, and"
    " whether either was delivered late from the charger's offline queue.",
    (
        ("charge_point_id", "the charger"),
        ("transaction_id", "transactionId from the StartTransaction answer"),
        ("connector_id", "connectorId"),
        ("id_tag", "idTag that started it"),
        ("id_tag_status", "idTagInfo.status in the StartTransaction answer"),
        ("start_ts", "when the StartTransaction arrived"),
        ("start_unique_id", "unique id of the StartTransaction"),
        ("start_connection_id", "connection the StartTransaction arrived on"),
        ("start_timestamp", "StartTransaction timestamp (the charger's clock)"),
        ("meter_start", "meterStart, Wh"),
        ("reservation_id", "reservationId, when given"),
        ("start_late", "the StartTransaction came from the offline queue"),
        ("stop_ts", "when the StopTransaction arrived; null while running"),
        ("stop_unique_id", "unique id of the StopTransaction"),
        ("stop_connection_id", "connection the StopTransaction arrived on"),
        ("stop_timestamp", "StopTransaction timestamp (the charger's clock)"),
        ("meter_stop", "meterStop, Wh"),
        ("reason", "stop reason as sent (null when omitted)"),
        ("stop_reason", "stop reason with the spec's default: Local when omitted"),
        ("stop_id_tag", "idTag in the StopTransaction"),
        ("transaction_data", "number of meterValue elements in transactionData"),
        ("stop_late", "the StopTransaction came from the offline queue"),
    ),
    """
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
    gaps AS (
        SELECT charge_point_id, offline_from, opened_at AS offline_until
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
    """,
)

_CONFIGURATION = View(
    "configuration",
    "Configuration keys: each key of a GetConfiguration answer, and each ChangeConfiguration"
    " request with the charger's status (OCPP 1.6 sections 5.8, 5.3).",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection"),
        ("ts", "when the request was sent"),
        ("unique_id", "OCPP-J unique id of the request"),
        ("source", "GetConfiguration (a key reported) or ChangeConfiguration (a key set)"),
        ("key", "configuration key"),
        ("value", "value reported or requested"),
        ("readonly", "GetConfiguration: the key is read-only"),
        ("status", "ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported"),
        ("error_code", "CALLERROR errorCode when the charger answered with one"),
        ("answered", "the charger answered"),
        ("injected", "the request was sent by ocpp-audit"),
    ),
    """
    WITH reported AS (
        SELECT charge_point_id, connection_id, call_ts, unique_id, injected, answered,
               unnest(json_extract(answer_payload, '$.configurationKey[*]')) AS entry
        FROM calls
        WHERE action = 'GetConfiguration' AND direction = 'cs_to_cp' AND NOT orphan_answer
          AND answer_type = 'CALLRESULT'
    )
    SELECT charge_point_id, connection_id, call_ts AS ts, unique_id,
           'GetConfiguration' AS source,
           json_extract_string(entry, '$.key') AS key,
           json_extract_string(entry, '$.value') AS value,
           TRY_CAST(json_extract_string(entry, '$.readonly') AS BOOLEAN) AS readonly,
           NULL AS status, NULL AS error_code, answered, injected
    FROM reported
    UNION ALL
    SELECT charge_point_id, connection_id, call_ts, unique_id, 'ChangeConfiguration',
           json_extract_string(payload, '$.key'), json_extract_string(payload, '$.value'),
           NULL, status, error_code, answered, injected
    FROM calls
    WHERE action = 'ChangeConfiguration' AND direction = 'cs_to_cp' AND NOT orphan_answer
    """,
)

_FIRMWARE_STATUS = View(
    "firmware_status",
    "FirmwareStatusNotification requests (OCPP 1.6 section 4.5).",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection"),
        ("ts", "when the notification arrived"),
        ("unique_id", "OCPP-J unique id"),
        (
            "status",
            "Downloaded, DownloadFailed, Downloading, Idle, InstallationFailed, Installing,"
            " Installed",
        ),
    ),
    """
    SELECT charge_point_id, connection_id, ts, unique_id,
           json_extract_string(payload, '$.status') AS status
    FROM messages
    WHERE message_type = 2 AND action = 'FirmwareStatusNotification' AND direction = 'cp_to_cs'
    """,
)

_DIAGNOSTICS_STATUS = View(
    "diagnostics_status",
    "DiagnosticsStatusNotification requests (OCPP 1.6 section 4.4) and diagnostics files that"
    " arrived on the built-in endpoints (upload events).",
    (
        ("charge_point_id", "the charger"),
        ("connection_id", "the connection"),
        ("ts", "when the notification (or the file) arrived"),
        ("unique_id", "OCPP-J unique id (null for an upload)"),
        ("event", "status (a DiagnosticsStatusNotification) or upload (a file arrived)"),
        ("status", "Idle, Uploaded, UploadFailed or Uploading; null for an upload"),
        ("file_name", "upload: name of the file received"),
        ("size", "upload: size of the file received, bytes"),
    ),
    """
    SELECT charge_point_id, connection_id, ts, unique_id, 'status' AS event,
           json_extract_string(payload, '$.status') AS status,
           NULL::VARCHAR AS file_name, NULL::BIGINT AS size
    FROM messages
    WHERE message_type = 2 AND action = 'DiagnosticsStatusNotification' AND direction = 'cp_to_cs'
    UNION ALL
    SELECT charge_point_id, connection_id, ts, NULL, 'upload', NULL,
           json_extract_string(detail, '$.file_name'),
           TRY_CAST(json_extract_string(detail, '$.size') AS BIGINT)
    FROM frames
    WHERE event = 'upload'
    """,
)

# In dependency order: each view reads only ``frames`` and the views before it.
VIEWS: tuple[View, ...] = (
    _MESSAGES,
    _CALLS,
    _CONNECTIONS,
    _BOOTS,
    _STATUS_NOTIFICATIONS,
    _METER_SAMPLES,
    _TRANSACTIONS,
    _CONFIGURATION,
    _FIRMWARE_STATUS,
    _DIAGNOSTICS_STATUS,
)


def view_params(params: Mapping[str, object] | None = None) -> dict[str, float]:
    """The view parameters: defaults, overridden by the known names in ``params``."""
    values = dict(DEFAULT_PARAMS)
    for name, value in (params or {}).items():
        if name not in values:
            continue  # a rule's parameter, not a view's
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"view parameter {name} must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"view parameter {name} must be a finite number, not {value!r}")
        values[name] = number
    return values


def view_sql(view: View, params: Mapping[str, object] | None = None) -> str:
    """The view's SELECT with its parameters written in as literals (so a stored view keeps them)."""
    sql = view.sql
    for name, value in view_params(params).items():
        sql = sql.replace(f"${name}", repr(float(value)))
    return sql


def create_views(
    con: duckdb.DuckDBPyConnection, params: Mapping[str, object] | None = None
) -> None:
    """Create every view of ``VIEWS`` on ``con``, which must already have a ``frames`` view."""
    for view in VIEWS:
        logger.debug("creating view %s", view.name)
        con.execute(f"CREATE OR REPLACE VIEW {view.name} AS {view_sql(view, params)}")
    # The protocol-schema rule calls ocpp_schema_error(); DuckDB cannot validate JSON Schema itself.
    # No view uses it, so views stored in a DuckDB file stay plain SQL.
    try:
        from ocpp_audit.protocol import schema_validation

        schema_validation.register(con)
    except (ImportError, duckdb.Error) as error:
        logger.warning("schema validation unavailable (protocol-schema cannot run): %s", error)
