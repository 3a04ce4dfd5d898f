"""Pseudonymisation a charger cannot slip past (issue 19): escaped keys, numeric tags, OCPP 2.0.1
idToken, and tags quoted in DataTransfer data and CALLERROR descriptions."""

from __future__ import annotations

import json

from ocpp_audit.protocol.frames import Call, parse
from ocpp_audit.recorder.pseudonymise import IdTagPseudonymiser

KEY = "test-key"


def test_escaped_key_is_still_an_idtag() -> None:
    p = IdTagPseudonymiser(KEY)
    raw = '[2,"1","Authorize",{"i\\u0064Tag":"04A2B3C4"}]'
    rewritten = p.rewrite(raw)
    assert "04A2B3C4" not in rewritten
    assert rewritten == raw.replace('"04A2B3C4"', json.dumps(p.pseudonym("04A2B3C4")))


def test_numeric_tag_stays_a_number_of_the_same_length() -> None:
    p = IdTagPseudonymiser(KEY)
    raw = '[2,"1","Authorize",{"idTag": 40012345, "x": 1}]'
    rewritten = p.rewrite(raw)
    frame = parse(rewritten)
    assert isinstance(frame, Call)
    tag = frame.payload["idTag"]
    assert isinstance(tag, int) and tag != 40012345 and len(str(tag)) == 8
    assert rewritten == raw.replace("40012345", str(tag))  # every other byte kept
    assert p.rewrite(raw) == rewritten  # the same tag, the same pseudonym


def test_ocpp201_id_token_is_replaced_inside_its_object() -> None:
    p = IdTagPseudonymiser(KEY)
    payload = {
        "idToken": {"idToken": "DEADBEEF01", "type": "ISO14443"},
        "groupIdToken": {"idToken": "GROUP-0001", "type": "Central"},
    }
    rewritten = json.loads(p.rewrite(json.dumps(payload)))
    assert rewritten["idToken"] == {"idToken": p.pseudonym("DEADBEEF01"), "type": "ISO14443"}
    assert rewritten["groupIdToken"]["idToken"] == p.pseudonym("GROUP-0001")


def test_seen_tags_are_replaced_in_datatransfer_data_and_callerror_descriptions() -> None:
    p = IdTagPseudonymiser(KEY)
    p.rewrite_row(
        {
            "event": "message",
            "message_type": 2,
            "action": "Authorize",
            "raw": '[2,"a","Authorize",{"idTag":"04A2B3C4"}]',
            "payload": '{"idTag":"04A2B3C4"}',
        }
    )
    error = p.rewrite_row(
        {
            "event": "message",
            "message_type": 4,
            "action": "Authorize",
            "raw": '[4,"a","GenericError","card 04A2B3C4 blocked",{}]',
            "error_description": "card 04A2B3C4 blocked",
        }
    )
    assert error["error_description"] == f"card {p.pseudonym('04A2B3C4')} blocked"
    assert "04A2B3C4" not in error["raw"]
    data = json.dumps({"vendorId": "acme", "data": json.dumps({"card": "04A2B3C4"})})
    transfer = p.rewrite_row(
        {
            "event": "message",
            "message_type": 2,
            "action": "DataTransfer",
            "raw": f'[2,"b","DataTransfer",{data}]',
            "payload": data,
        }
    )
    assert "04A2B3C4" not in transfer["raw"] and "04A2B3C4" not in transfer["payload"]
    # other frames' free text is left alone (a StatusNotification info is not rewritten)
    status = '{"connectorId":1,"errorCode":"NoError","status":"Available","info":"04A2B3C4"}'
    kept = p.rewrite_row(
        {
            "event": "message",
            "message_type": 2,
            "action": "StatusNotification",
            "raw": f'[2,"c","StatusNotification",{status}]',
            "payload": status,
        }
    )
    assert kept["payload"] == status
