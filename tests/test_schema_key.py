"""The shape key of protocol-schema (``ocpp_schema_key``): payloads with one key get one verdict.

The rule validates one payload per key and charges the rows of failing keys, so the key must never
put a valid and an invalid payload together. Payloads here are mutations of real ones (digits
changed, digits inserted) for shape-keyed schemas and for exact-keyed ones (numeric bounds,
``multipleOf``), in OCPP 1.6, 2.0.1 and 2.1; every group of one key must be all valid or all invalid,
judged one by one by ``ocpp_schema_error``.
"""

from __future__ import annotations

import json
import random

import duckdb

from ocpp_audit.protocol import schema_validation

T = "2024-05-01T10:00:00Z"
# (OCPP version, message type, action, a payload)
TEMPLATES: list[tuple[str, int, str, dict]] = [
    ("1.6", 2, "MeterValues", {"connectorId": 1, "transactionId": 12, "meterValue": [
        {"timestamp": T, "sampledValue": [
            {"value": "230.1", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
            {"value": "16.0", "measurand": "Current.Import", "phase": "L2", "unit": "A"}]}]}),
    ("1.6", 2, "StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                      "status": "Available", "timestamp": T}),
    ("1.6", 2, "Authorize", {"idTag": "ABCDEFGHIJ012345678"}),  # maxLength 20
    ("1.6", 3, "BootNotification", {"status": "Accepted", "currentTime": T, "interval": 300}),
    ("1.6", 2, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "W", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 11000.5, "numberPhases": 3}]}}}),
    ("1.6", 2, "RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG12345"}),
    ("2.0.1", 2, "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
        {"value": 230.1, "measurand": "Voltage", "phase": "L1-N"}]}]}),
    ("2.0.1", 2, "BootNotification", {"reason": "PowerUp", "chargingStation": {
        "model": "M1", "vendorName": "V2"}}),
    ("2.0.1", 2, "SetChargingProfile", {"evseId": 1, "chargingProfile": {
        "id": 3, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": [{
            "id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0, "numberPhases": 3}]}]}}),  # numberPhases <= 3
    ("2.0.1", 2, "NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": {
        "requestedEnergyTransfer": "DC", "dcChargingParameters": {
            "evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": 100}}}),  # maximum 100
    ("2.1", 2, "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": T, "sampledValue": [
        {"value": 230.1, "measurand": "Voltage", "phase": "L1-N"}]}]}),
    ("2.1", 6, "NotifyPeriodicEventStream", {"id": 1, "pending": 0, "basetime": T,
                                            "data": [{"t": 1.5, "v": "230"}]}),
]  # fmt: skip


def mutations(text: str, rng: random.Random, count: int) -> list[str]:
    """``count`` variants of ``text``. Mostly a digit 1-9 becomes another digit 1-9, which keeps
    the digit-masked text, so the variants share a key unless a kept digit or an exact key tells
    them apart: the case the key must get right. Now and then a zero changes or a digit is added."""
    variants = [text]
    for _ in range(count):
        out = []
        for char in text:
            if char in "123456789" and rng.random() < 0.3:
                char = rng.choice("123456789")
            elif char.isdigit() and rng.random() < 0.01:
                char = rng.choice("0123456789")
            out.append(char)
            if char.isalnum() and rng.random() < 0.005:
                out.append(rng.choice("0123456789"))
        variants.append("".join(out))
    return variants


def mixed_groups(rows: list[tuple[str, int, str, str]]) -> list[tuple]:
    """Groups of one (action, message type, key) holding both valid and invalid payloads."""
    con = duckdb.connect()
    try:
        schema_validation.register(con)
        con.execute(
            "CREATE TABLE t (ocpp_version VARCHAR, message_type TINYINT, action VARCHAR,"
            " payload VARCHAR)"
        )
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        return con.execute(
            "SELECT action, message_type, min(payload), max(payload) FROM ("
            "  SELECT *, ocpp_schema_key(action, message_type, payload, ocpp_version) AS key,"
            "         ocpp_schema_error(action, message_type, payload, ocpp_version) IS NULL"
            "             AS valid FROM t)"
            " GROUP BY action, message_type, key HAVING count(DISTINCT valid) > 1"
        ).fetchall()
    finally:
        con.close()


def test_one_key_never_holds_a_valid_and_an_invalid_payload() -> None:
    rng = random.Random(16)
    rows: list[tuple[str, int, str, str]] = []
    for version, message_type, action, payload in TEMPLATES:
        for text in mutations(json.dumps(payload, separators=(",", ":")), rng, 150):
            try:
                json.loads(text)
            except ValueError:
                continue  # a malformed frame never reaches the schema check
            rows.append((version, message_type, action, text))
    verdicts = {
        (v, m, a): {schema_validation.schema_error(a, m, p, v) is None for v2, m2, a2, p in rows
                    if (v2, m2, a2) == (v, m, a)}
        for v, m, a, _ in TEMPLATES
    }  # fmt: skip
    # the mutations make both valid and invalid payloads of most templates
    assert sum(len(seen) == 2 for seen in verdicts.values()) >= 6, verdicts
    assert mixed_groups(rows) == []


def test_a_digit_that_decides_a_bound_keeps_its_payload_apart() -> None:
    # stateOfCharge 100 is valid, 200 is not (OCPP 2.0.1 DCChargingParametersType: maximum 100);
    # their digit-masked texts are equal, so only the exact key of the schema splits them.
    version, message_type, action, payload = TEMPLATES[9]
    text = json.dumps(payload, separators=(",", ":"))
    too_full = text.replace('"stateOfCharge":100', '"stateOfCharge":200')
    assert too_full != text
    rows = [(version, message_type, action, text), (version, message_type, action, too_full)]
    assert [schema_validation.schema_error(action, message_type, p, version) is None
            for *_, p in rows] == [True, False]  # fmt: skip
    assert mixed_groups(rows) == []


def test_the_exact_key_test_is_the_schema_name_lookup_turned_around() -> None:
    """exact_keyed_sql tests the action per version and message type; it must say what looking the
    row's schema name up in exact_keyed_schemas() says, for every action any schema names."""
    exact = set(schema_validation.exact_keyed_schemas())
    actions = {"Heartbeat", "NoSuchAction"}
    for version in schema_validation.VERSIONS:
        for name in schema_validation.schema_names(version):
            actions |= {name, name.removesuffix("Response"), name.removesuffix("Request")}
    rows = [
        (version, message_type, action)
        for version in (*schema_validation.VERSIONS, None)
        for message_type in (2, 3, 6)
        for action in sorted(actions)
    ]
    known = "CASE WHEN v IN ('2.0.1', '2.1') THEN v ELSE '1.6' END"
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (v VARCHAR, m TINYINT, a VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        got = con.execute(
            f"SELECT v, m, a, {schema_validation.exact_keyed_sql('a', 'm', known)} FROM t"
        ).fetchall()
    finally:
        con.close()
    expected = {
        (v, m, a): f"{v or '1.6'}:{schema_validation.schema_name(a, m, v)}" in exact
        for v, m, a in rows
    }
    assert {(v, m, a): bool(flag) for v, m, a, flag in got} == expected
    assert sum(expected.values()) >= len(exact)  # every exact-keyed schema is reached
