/*+++
name = "connections"
description = """\
One row per WebSocket connection: when it was open, how it ended, and the offline gap before it."""
[columns]
charge_point_id = "the charger"
connection_id = "the connection"
opened_at = "open event (or first event seen, when the capture starts mid-connection)"
closed_at = "close event (or last event seen, when the connection did not close)"
closed = "a close event was recorded"
close_code = "WebSocket close code (1006: dropped without a close frame)"
close_reason = "WebSocket close reason"
closed_by = "charger, backend or recorder"
messages = "number of messages on the connection"
path = "request path of the charger's URL"
subprotocol = "subprotocol the backend chose"
remote_address = "charger's address, host:port"
auth_user = "Basic-auth user name"
tls = "the charger connected with TLS"
offline_from = "end of the charger's previous connection (null for its first)"
offline_s = "seconds offline before this connection (0 when the previous overlapped)"
ocpp_version = "1.6, 2.0.1 or 2.1, from the negotiated subprotocol; null when none"
+++*/
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
           any_value(tls) FILTER (WHERE event = 'open') AS tls,
           any_value(ocpp_version) AS ocpp_version
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
            THEN greatest(((epoch_us(opened_at) - epoch_us(offline_from)) / 1e6), 0) END AS offline_s,
       ocpp_version
FROM ordered
