"""protocol/answers.py: the comparison replay and compare share, and transactionIds carried over."""

from __future__ import annotations

from ocpp_audit.protocol.answers import Answer, TransactionIds, compare_answers, parse_ignore


def test_transaction_ids_replace_a_known_id_except_in_start_transaction() -> None:
    ids = TransactionIds()
    ids.assigned(1, 9000)
    stop = {"transactionId": 1, "meterStop": 5}
    assert ids.substitute("StopTransaction", stop) == (1, 9000)
    assert stop == {"transactionId": 9000, "meterStop": 5}
    start = {"transactionId": 1}
    assert ids.substitute("StartTransaction", start) is None and start == {"transactionId": 1}
    unknown = {"transactionId": 2}
    assert ids.substitute("MeterValues", unknown) is None and unknown == {"transactionId": 2}
    assert ids.substitute("MeterValues", {"transactionId": [1]}) is None  # garbage: untouched


def test_transaction_ids_forget_the_oldest_beyond_max_kept() -> None:
    ids = TransactionIds(max_kept=2)
    for n in range(3):
        ids.assigned(n, n + 100)
    assert len(ids) == 2
    assert ids.substitute("StopTransaction", {"transactionId": 0}) is None
    assert ids.substitute("StopTransaction", {"transactionId": 2}) == (2, 102)


def test_differences_name_both_sides() -> None:
    ignore = [parse_ignore("$..currentTime")]
    primary = Answer(3, {"interval": 60, "currentTime": "a"})
    mirror = Answer(3, {"interval": 300, "currentTime": "b"})
    [difference] = compare_answers(primary, mirror, ignore)
    assert difference.describe("primary", "new") == "$.interval: primary 60, new 300"
    assert difference.describe() == "$.interval: recorded 60, target 300"
    [missing] = compare_answers(primary, None, ignore)
    assert missing.describe("primary", "new") == "no answer from the new (primary CALLRESULT)"
