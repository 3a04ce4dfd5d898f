/*+++
name = "messages"
description = "Every WebSocket message (event = 'message'), both directions, with its parsed fields."
[columns]
ts = "recorder's clock when the message arrived (UTC)"
charge_point_id = "the charger"
connection_id = "one WebSocket connection of the charger"
seq = "order of the event within its connection"
direction = "cp_to_cs (charger to backend) or cs_to_cp"
message_type = "2 CALL, 3 CALLRESULT, 4 CALLERROR, 5 CALLRESULTERROR, 6 SEND (2.1); null if unreadable"
unique_id = "OCPP-J unique id"
action = "CALL action; for answers, the action of the CALL answered"
payload = "payload (or CALLERROR details) as JSON text, as on the wire"
error_code = "CALLERROR errorCode"
error_description = "CALLERROR errorDescription"
parse_error = "why the frame is not valid OCPP-J; null when well formed"
raw = "the text frame exactly as received"
raw_binary = "a binary frame exactly as received"
injected = "sent by ocpp-audit (active mode), or a charger's answer to it"
date = "UTC date partition"
ocpp_version = "1.6, 2.0.1 or 2.1: the connection's negotiated version; null when none"
answers_seq = "CALLRESULT/CALLERROR: seq of the CALL it answers, as the recorder paired them; -1: none in flight; null before schema 1.3"
reused_id = "CALL: its unique id was already in flight the same way; null before schema 1.3"
schema_error = "the payload's schema verdict judged at seal time: '' valid, else why not; null when not judged then (the protocol-schema rule judges it itself)"
+++*/
SELECT ts, charge_point_id, connection_id, seq, direction, message_type, unique_id, action,
       payload, error_code, error_description, parse_error, raw, raw_binary, injected, date,
       ocpp_version, answers_seq, reused_id, schema_error
FROM frames
WHERE event = 'message'
