"""A socket-free generator of a fleet capture, written straight into Parquet parts.

For the analyser benchmark (10 million frames and more): a fleet of well-behaved OCPP 1.6-J
chargers, each on one connection for the whole period, doing what the simulator's ``good`` profile
does on a compressed clock: BootNotification and StatusNotification per connector at the start,
Heartbeats at the interval the boot answer gave, and a few charging sessions a day (Authorize,
StatusNotification Preparing / Charging, StartTransaction, periodic MeterValues with Energy and
Power, StopTransaction, StatusNotification Finishing / Available). Every CALL is answered.

The frames are built column-wise with pyarrow (no Python dict per row), one UTC day at a time, and
written as one part per day with the capture schema (``schema.arrow_schema()``), in the writer's order,
with the writer's encoding, so the analyser reads them like a recorded capture.

    from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
    stats = generate_fleet_capture(Path("captures/fleet"), chargers=1000, days=7)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ocpp_audit.capture.schema import COLUMN_NAMES, FRAMES_DIR, PARTITION_KEY, arrow_schema
from ocpp_audit.capture.writer import write_part
from ocpp_audit.lab.simulator.charger import NOMINAL_VOLTAGE, SUBPROTOCOL, SimulatedCharger
from ocpp_audit.protocol.constants import OcppVersion

__all__ = ["FleetStats", "generate_fleet_capture"]

logger = logging.getLogger(__name__)

DAY_US = 86_400 * 1_000_000
START_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
CHARGING_POWER_W = 11_000  # three phases, 16 A, 230 V: as ChargerTiming.charging_power_w


@dataclass
class FleetStats:
    frames: int
    chargers: int
    days: int
    parts: list[Path]


def _iso(ts_us: np.ndarray) -> pa.Array:
    """OCPP 1.6 dateTime strings (UTC, whole seconds) for microsecond timestamps."""
    seconds = pa.array(ts_us // 1_000_000, pa.timestamp("s"))
    return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _join(*parts: object) -> pa.Array:
    """Element-wise concatenation of string arrays and constant strings."""
    return pc.binary_join_element_wise(*parts, "")


@dataclass
class _Calls:
    """CALLs sent by chargers of one kind, with the answers the central system gave."""

    ts: np.ndarray  # int64 microseconds
    charger: np.ndarray  # int64 charger index
    action: str
    payload: pa.Array | str
    answer: pa.Array | str


def _day_calls(
    day: int,
    chargers: int,
    rng: np.random.Generator,
    heartbeat_s: int,
    sessions: int,
    meter_interval_s: int,
) -> list[_Calls]:
    day_start = START_US + day * DAY_US
    calls: list[_Calls] = []
    everyone = np.arange(chargers, dtype=np.int64)

    if day == 0:  # power on: BootNotification, then one StatusNotification per connector (0..2)
        boot_ts = day_start + rng.integers(0, 60_000_000, chargers)
        serial = _join("SIM-", _text(everyone))
        calls.append(
            _Calls(
                boot_ts,
                everyone,
                "BootNotification",
                _join(
                    f'{{"chargePointVendor":"{SimulatedCharger.vendor}",'
                    f'"chargePointModel":"{SimulatedCharger.model}","chargePointSerialNumber":"',
                    serial,
                    '","firmwareVersion":"1.0.0"}',
                ),
                _join(
                    '{"status":"Accepted","currentTime":"',
                    _iso(boot_ts),
                    f'","interval":{heartbeat_s}}}',
                ),
            )
        )
        for connector in range(3):
            ts = boot_ts + (connector + 1) * 200_000
            calls.append(
                _Calls(
                    ts,
                    everyone,
                    "StatusNotification",
                    _join(
                        f'{{"connectorId":{connector},"errorCode":"NoError",'
                        '"status":"Available","timestamp":"',
                        _iso(ts),
                        '"}',
                    ),
                    "{}",
                )
            )

    # Heartbeats every heartbeat_s, each charger at its own phase.
    beats = DAY_US // (heartbeat_s * 1_000_000)
    phase = (np.arange(chargers, dtype=np.int64) * 7_919_000) % (heartbeat_s * 1_000_000)
    hb_charger = np.repeat(everyone, beats)
    hb_ts = (
        day_start
        + 90_000_000
        + np.repeat(phase, beats)
        + np.tile(np.arange(beats, dtype=np.int64) * heartbeat_s * 1_000_000, chargers)
    )
    keep = hb_ts < day_start + DAY_US - 1_000_000
    hb_ts, hb_charger = hb_ts[keep], hb_charger[keep]
    calls.append(
        _Calls(hb_ts, hb_charger, "Heartbeat", "{}", _join('{"currentTime":"', _iso(hb_ts), '"}'))
    )

    # Charging sessions on connector 1: `sessions` a day, each in its own slot of the day.
    slot_us = DAY_US // sessions
    tx_charger = np.repeat(everyone, sessions)
    slot = np.tile(np.arange(sessions, dtype=np.int64), chargers)
    start = day_start + slot * slot_us + rng.integers(120_000_000, slot_us // 3, tx_charger.size)
    minutes = rng.integers(30, 120, tx_charger.size)  # session length
    tx_id = (day * chargers * sessions + np.arange(tx_charger.size, dtype=np.int64)) + 1
    meter_start = (day * sessions + slot) * 25_000 + tx_charger % 1000
    id_tag = _join("TAG", _text(tx_charger % 500))
    tx_text = _text(tx_id)

    def status(ts: np.ndarray, value: str) -> _Calls:
        return _Calls(
            ts,
            tx_charger,
            "StatusNotification",
            _join(
                '{"connectorId":1,"errorCode":"NoError","status":"' + value + '","timestamp":"',
                _iso(ts),
                '"}',
            ),
            "{}",
        )

    calls.append(status(start - 20_000_000, "Preparing"))
    calls.append(
        _Calls(
            start - 10_000_000,
            tx_charger,
            "Authorize",
            _join('{"idTag":"', id_tag, '"}'),
            '{"idTagInfo":{"status":"Accepted"}}',
        )
    )
    calls.append(
        _Calls(
            start,
            tx_charger,
            "StartTransaction",
            _join(
                '{"connectorId":1,"idTag":"',
                id_tag,
                '","meterStart":',
                _text(meter_start),
                ',"timestamp":"',
                _iso(start),
                '"}',
            ),
            _join('{"idTagInfo":{"status":"Accepted"},"transactionId":', tx_text, "}"),
        )
    )
    calls.append(status(start + 1_000_000, "Charging"))

    # MeterValues every meter_interval_s while charging (MeterValueSampleInterval), the first one
    # Transaction.Begin, the last one Transaction.End (OCPP 1.6 section 7.31 ReadingContext).
    samples = minutes * 60 // meter_interval_s
    sample = np.concatenate([np.arange(0, n + 1, dtype=np.int64) for n in samples])
    owner = np.repeat(np.arange(tx_charger.size), samples + 1)
    last = samples[owner]
    mv_ts = start[owner] + 500_000 + sample * meter_interval_s * 1_000_000
    energy = meter_start[owner] + sample * meter_interval_s * CHARGING_POWER_W // 3600
    power = CHARGING_POWER_W - (sample % 7) * 13
    current = 159 + sample % 3  # deciampere
    context = np.where(
        sample == 0,
        "Transaction.Begin",
        np.where(sample == last, "Transaction.End", "Sample.Periodic"),
    ).astype(object)
    context_text = pa.array(context, pa.string())
    calls.append(
        _Calls(
            mv_ts,
            tx_charger[owner],
            "MeterValues",
            _join(
                '{"connectorId":1,"transactionId":',
                _text(tx_id[owner]),
                ',"meterValue":[{"timestamp":"',
                _iso(mv_ts),
                '","sampledValue":[{"value":"',
                _text(energy),
                '","context":"',
                context_text,
                '","measurand":"Energy.Active.Import.Register","unit":"Wh"},{"value":"',
                _text(power),
                '","context":"',
                context_text,
                '","measurand":"Power.Active.Import","unit":"W"},{"value":"',
                _text(current // 10),
                ".",
                _text(current % 10),
                '","context":"',
                context_text,
                '","measurand":"Current.Import","unit":"A"},{"value":"',
                f"{NOMINAL_VOLTAGE:.1f}",
                '","context":"',
                context_text,
                '","measurand":"Voltage","unit":"V"}]}]}',
            ),
            "{}",
        )
    )
    stop = start + samples * meter_interval_s * 1_000_000 + 1_000_000
    meter_stop = meter_start + samples * meter_interval_s * CHARGING_POWER_W // 3600
    calls.append(
        _Calls(
            stop,
            tx_charger,
            "StopTransaction",
            _join(
                '{"transactionId":',
                tx_text,
                ',"idTag":"',
                id_tag,
                '","meterStop":',
                _text(meter_stop),
                ',"timestamp":"',
                _iso(stop),
                '","reason":"Local"}',
            ),
            '{"idTagInfo":{"status":"Accepted"}}',
        )
    )
    calls.append(status(stop + 1_000_000, "Finishing"))
    calls.append(status(stop + 30_000_000, "Available"))
    return calls


def _column(value: pa.Array | str, size: int) -> pa.Array:
    if isinstance(value, str):
        return pa.array(np.full(size, value, dtype=object), pa.string())
    return value


def _day_table(
    calls: list[_Calls], charger_ids: pa.Array, connection_ids: pa.Array,
    rng: np.random.Generator, next_uid: int,
) -> tuple[pa.Table, int]:  # fmt: skip
    """Two rows per CALL (the CALL, then its CALLRESULT 2..40 ms later), sorted by time."""
    pieces: list[pa.Table] = []
    for kind in calls:
        size = kind.ts.size
        uid = _text(np.arange(next_uid, next_uid + size, dtype=np.int64))
        next_uid += size
        payload, answer = _column(kind.payload, size), _column(kind.answer, size)
        call_raw = _join('[2,"', uid, f'","{kind.action}",', payload, "]")
        answer_raw = _join('[3,"', uid, '",', answer, "]")
        answer_ts = kind.ts + rng.integers(2_000, 40_000, size)
        for ts, direction, message_type, raw, body in (
            (kind.ts, "cp_to_cs", 2, call_raw, payload),
            (answer_ts, "cs_to_cp", 3, answer_raw, answer),
        ):
            pieces.append(
                pa.table(
                    {
                        "ts": pa.array(ts, pa.int64()),
                        "charger": pa.array(kind.charger, pa.int64()),
                        "direction": pa.array(np.full(size, direction, dtype=object), pa.string()),
                        "raw": raw,
                        "message_type": pa.array(np.full(size, message_type, np.int8)),
                        "unique_id": uid,
                        "action": pa.array(np.full(size, kind.action, dtype=object), pa.string()),
                        "payload": body,
                    }
                )
            )
    table = pa.concat_tables(pieces).sort_by([("ts", "ascending"), ("message_type", "ascending")])
    return table, next_uid


def _finish(
    table: pa.Table, charger_ids: pa.Array, connection_ids: pa.Array, seq_next: np.ndarray
) -> pa.Table:
    """Fill in the capture columns: event, ids, seq (per connection, continuing across days)."""
    size = table.num_rows
    charger = table.column("charger").to_numpy()
    # seq: rank of the row within its charger's rows, in time order, after the ones already written
    order = np.argsort(charger, kind="stable")
    counts = np.bincount(charger, minlength=seq_next.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(size, np.int64)
    rank[order] = np.arange(size, dtype=np.int64) - np.repeat(starts, counts)
    seq = seq_next[charger] + rank
    seq_next += counts
    # The recorder's pairing (schema 1.3): every CALL is answered, by the CALLRESULT with its
    # unique id (unique in the whole capture), and no id is reused.
    message_type = table.column("message_type").to_numpy()
    is_call = message_type == 2
    unique_id = table.column("unique_id")
    call_index = pc.index_in(unique_id, value_set=unique_id.filter(pa.array(is_call)))
    answered = np.where(
        message_type == 3, seq[is_call][call_index.to_numpy(zero_copy_only=False)], 0
    )
    answers_seq = pa.array(answered, pa.int64(), mask=message_type != 3)
    reused_id = pa.array(np.zeros(size, bool), mask=~is_call)
    columns: dict[str, pa.Array] = {
        "event": pa.array(np.full(size, "message", dtype=object), pa.string()),
        "ts": pa.array(table.column("ts").to_numpy(), pa.timestamp("us", tz="UTC")),
        "connection_id": connection_ids.take(charger),
        "charge_point_id": charger_ids.take(charger),
        "direction": table.column("direction"),
        "seq": pa.array(seq, pa.int64()),
        "raw": table.column("raw"),
        "message_type": table.column("message_type"),
        "unique_id": table.column("unique_id"),
        "action": table.column("action"),
        "payload": table.column("payload"),
        "answers_seq": answers_seq,
        "reused_id": reused_id,
        "injected": pa.array(np.zeros(size, bool)),
        "ocpp_version": pa.array(np.full(size, OcppVersion.V16.value, dtype=object), pa.string()),
    }
    schema = arrow_schema()
    arrays = [
        pa.chunked_array(columns[name]).cast(schema.field(name).type)
        if name in columns
        else pa.nulls(size, schema.field(name).type)
        for name in COLUMN_NAMES
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _events(
    event: str, ts_us: np.ndarray, charger_ids: pa.Array, connection_ids: pa.Array, seq: np.ndarray,
    extra: dict[str, pa.Array],
) -> pa.Table:  # fmt: skip
    schema = arrow_schema()
    size = ts_us.size
    columns: dict[str, pa.Array] = {
        "event": pa.array(np.full(size, event, dtype=object), pa.string()),
        "ts": pa.array(ts_us, pa.timestamp("us", tz="UTC")),
        "connection_id": connection_ids,
        "charge_point_id": charger_ids,
        "seq": pa.array(seq, pa.int64()),
        "injected": pa.array(np.zeros(size, bool)),
        "ocpp_version": pa.array(np.full(size, OcppVersion.V16.value, dtype=object), pa.string()),
        **extra,
    }
    arrays = [
        columns[name].cast(schema.field(name).type)
        if name in columns
        else pa.nulls(size, schema.field(name).type)
        for name in COLUMN_NAMES
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _write_part(table: pa.Table, frames_dir: Path, day: int) -> Path:
    date = np.datetime64(START_US + day * DAY_US, "us").astype("datetime64[D]")
    folder = frames_dir / f"{PARTITION_KEY}={date}"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"part-synthetic-{day:04d}.parquet"
    temporary = folder / f".part-synthetic-{day:04d}.parquet.tmp"
    write_part(table, temporary)
    os.replace(temporary, final)
    return final


def generate_fleet_capture(
    capture_dir: Path,
    *,
    chargers: int = 1000,
    days: int = 7,
    heartbeat_s: int = 300,
    sessions_per_day: int = 3,
    meter_interval_s: int = 30,
    seed: int = 6,
) -> FleetStats:
    """Write a fleet capture of ``chargers`` chargers over ``days`` UTC days into ``capture_dir``.

    About 1,500 frames per charger and day with the defaults (1,000 chargers x 7 days: > 10 M).
    Parts go to ``<capture_dir>/frames/date=YYYY-MM-DD/part-synthetic-NNNN.parquet``; an existing
    part of the same name is replaced, so a rerun with the same arguments gives the same capture.
    """
    if min(chargers, days, heartbeat_s, sessions_per_day, meter_interval_s) < 1:
        raise ValueError("chargers, days and the intervals must be at least 1")
    rng = np.random.default_rng(seed)
    frames_dir = Path(capture_dir) / FRAMES_DIR
    everyone = np.arange(chargers, dtype=np.int64)
    charger_ids = _join("SYN", pc.utf8_lpad(_text(everyone), 5, "0"))
    connection_ids = _join("synthetic-conn-", _text(everyone))
    seq_next = np.zeros(chargers, np.int64)
    parts: list[Path] = []
    frames = 0
    next_uid = 1
    for day in range(days):
        calls = _day_calls(day, chargers, rng, heartbeat_s, sessions_per_day, meter_interval_s)
        table, next_uid = _day_table(calls, charger_ids, connection_ids, rng, next_uid)
        extra: list[pa.Table] = []
        if day == 0:  # the connection opens just before the BootNotification
            extra.append(
                _events(
                    "open",
                    START_US + everyone,
                    charger_ids,
                    connection_ids,
                    seq_next.copy(),
                    {
                        "path": _join("/ocpp/", charger_ids),
                        "subprotocols_offered": pa.array([SUBPROTOCOL] * chargers),
                        "subprotocol": pa.array([SUBPROTOCOL] * chargers),
                        "remote_address": pa.array(["127.0.0.1:40000"] * chargers),
                        "tls": pa.array(np.zeros(chargers, bool)),
                    },
                )
            )
            seq_next += 1
        body = _finish(table, charger_ids, connection_ids, seq_next)
        if day == days - 1:  # the recorder stops at the end: 1001 going away
            end = START_US + days * DAY_US - 1_000_000 + everyone
            extra.append(
                _events(
                    "close",
                    end,
                    charger_ids,
                    connection_ids,
                    seq_next.copy(),
                    {
                        "close_code": pa.array(np.full(chargers, 1001, np.int32)),
                        "closed_by": pa.array(["recorder"] * chargers),
                    },
                )
            )
            seq_next += 1
        day_table = pa.concat_tables([*extra, body])
        parts.append(_write_part(day_table, frames_dir, day))
        frames += day_table.num_rows
        logger.info("day %d: %d rows", day, day_table.num_rows)
    return FleetStats(frames=frames, chargers=chargers, days=days, parts=parts)
