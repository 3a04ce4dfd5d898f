"""Text logs as people have them: pasted, bordered, pretty-printed, cut off, huge."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from ocpp_audit.importers import import_files, lines

HEAD = "2024-03-05 14:02:11,{ms:03d} INFO ocpp: CP1: "


def _rows(capture: Path) -> list[dict[str, object]]:
    relation = duckdb.connect().sql(
        f"SELECT event, connection_id, direction, raw, action, parse_error, close_code "
        f"FROM read_parquet('{capture}/frames/**/*.parquet') ORDER BY ts, seq"
    )
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _import(tmp_path: Path, text: str, fmt: str = "ocpp-log", **options: object):
    log = tmp_path / "x.log"
    log.write_text(text)
    summary = import_files([log], fmt, tmp_path / "capture", **options)  # type: ignore[arg-type]
    return summary, (_rows(tmp_path / "capture") if summary.rows else [])


def test_text_after_the_frame_is_not_part_of_it(tmp_path: Path) -> None:
    summary, rows = _import(
        tmp_path,
        HEAD.format(ms=1)
        + 'receive message [2,"1","Heartbeat",{}]   │\n'
        + HEAD.format(ms=2)
        + 'send [3,"1",{"currentTime":"x]"}]  \n',
    )
    assert [r["raw"] for r in rows] == ['[2,"1","Heartbeat",{}]', '[3,"1",{"currentTime":"x]"}]']
    assert rows[0]["parse_error"] is None
    assert summary.noted["text after a frame on its line, not part of it"] == 1  # not the spaces
    assert summary.skipped == Counter()


def test_pretty_printed_frame_with_a_brace_alone_on_a_line(tmp_path: Path) -> None:
    # its timestamp strings once read as the start of a new log line, cutting the frame there
    frame = (
        '[2,"mv1","MeterValues",\n{\n    "connectorId": 1,\n'
        '    "meterValue": [{"timestamp": "2024-03-05T13:02:11Z",\n'
        '        "sampledValue": [{"value": "12.5", "unit": "kWh"}]}]\n}\n]'
    )
    summary, rows = _import(
        tmp_path,
        HEAD.format(ms=1)
        + "receive message "
        + frame
        + "\n"
        + HEAD.format(ms=2)
        + 'send [3,"mv1",{}]\n',
    )
    assert [(r["raw"], r["action"], r["parse_error"]) for r in rows] == [
        (frame, "MeterValues", None),
        ('[3,"mv1",{}]', "MeterValues", None),
    ]
    assert summary.skipped == Counter()


def test_a_cut_off_frame_is_never_glued_to_the_next_line(tmp_path: Path) -> None:
    summary, rows = _import(
        tmp_path,
        HEAD.format(ms=1)
        + 'receive message [2,"1","BootNotification",{"chargePointVen\n'
        + HEAD.format(ms=2)
        + 'receive message [2,"2","Heartbeat",{}]\n',
    )
    assert [(r["raw"], r["parse_error"]) for r in rows] == [
        ('[2,"1","BootNotification",{"chargePointVen', "truncated in the log"),
        ('[2,"2","Heartbeat",{}]', None),
    ]
    assert summary.noted["frames truncated in the log, imported as malformed"] == 1


def test_a_brace_that_never_closes_stops_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lines, "MAX_FRAME_LINES", 50)
    text = HEAD.format(ms=1) + 'receive message [2,"1","DataTransfer",{\n' + '  "k": "v",\n' * 1000
    summary, rows = _import(tmp_path, text)
    assert len(rows) == 1 and rows[0]["parse_error"] == "truncated in the log"
    assert rows[0]["raw"].count("\n") == 49
    assert summary.skipped == Counter({"line after a frame, not part of it": 951})
    assert summary.noted["frames cut at 50 lines or 16777216 characters"] == 1


def test_joining_is_linear(tmp_path: Path) -> None:
    text = (
        HEAD.format(ms=1) + 'receive message [2,"1","DataTransfer",{\n' + '  "k": "v",\n' * 200_000
    )
    started = time.perf_counter()
    summary, rows = _import(tmp_path, text)
    assert time.perf_counter() - started < 20  # quadratic joining took minutes
    assert rows[0]["raw"].count("\n") == lines.MAX_FRAME_LINES - 1
    assert sum(summary.skipped.values()) == 200_001 - lines.MAX_FRAME_LINES


def test_an_over_long_line_is_cut_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lines, "MAX_LINE_CHARS", 1000)
    huge = '[2,"1","DataTransfer",{"data":"' + "x" * 5000 + '"}]'
    summary, rows = _import(
        tmp_path,
        HEAD.format(ms=1)
        + "receive message "
        + huge
        + "\n"
        + HEAD.format(ms=2)
        + 'receive message [2,"2","Heartbeat",{}]\n',
    )
    assert [r["parse_error"] for r in rows] == ["truncated in the log", None]
    assert huge.startswith(rows[0]["raw"]) and len(rows[0]["raw"]) < 1000
    assert summary.skipped == Counter({"rest of a line longer than 1000 characters": 1})


def test_every_connection_of_an_ocpp_log_is_its_own(tmp_path: Path) -> None:
    text = ""
    for number in range(3):
        text += (
            f"2024-03-05 14:0{number}:00,000 INFO websockets.server: connection open\n"
            f'2024-03-05 14:0{number}:01,000 INFO ocpp: CP1: receive message [2,"{number}","Heartbeat",{{}}]\n'
            f"2024-03-05 14:0{number}:02,000 INFO websockets.server: connection closed\n"
        )
    summary, rows = _import(tmp_path, text)
    assert [r["event"] for r in rows] == ["open", "message", "close"] * 3
    assert len({r["connection_id"] for r in rows}) == 3
    assert summary.skipped == Counter()
    assert summary.opens == summary.closes == 3


def test_a_close_with_two_chargers_connected_is_counted(tmp_path: Path) -> None:
    text = (
        '2024-03-05 14:00:01,000 INFO ocpp: CP1: receive message [2,"1","Heartbeat",{}]\n'
        '2024-03-05 14:00:01,000 INFO ocpp: CP2: receive message [2,"1","Heartbeat",{}]\n'
        "2024-03-05 14:00:02,000 INFO websockets.server: connection closed\n"
    )
    summary, rows = _import(tmp_path, text)
    assert [r["event"] for r in rows] == ["message", "message"]
    assert summary.skipped == Counter(
        {"connection closed, several chargers connected: whose is unknown": 1}
    )


def test_a_log_without_connection_lines_says_so(tmp_path: Path) -> None:
    summary, _ = _import(tmp_path, HEAD.format(ms=1) + 'receive message [2,"1","Heartbeat",{}]\n')
    assert summary.lines()[-1].startswith("no connection open/close lines in the log")


def test_jsonl_object_that_never_closes_does_not_swallow_the_file(tmp_path: Path) -> None:
    good = '{"ts": "2024-03-05T13:02:11Z", "charge_point_id": "CP1", "raw": "[2,\\"1\\",\\"Heartbeat\\",{}]"}\n'
    summary, rows = _import(tmp_path, '{"ts": "2024-03-05T13:02:10Z",\n' + good * 3, "jsonl")
    assert len(rows) == 3
    assert summary.skipped == Counter({"not JSON": 1})


def test_rows_go_out_in_batches_and_only_when_every_file_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ocpp_audit.importers as importers

    monkeypatch.setattr(importers, "ROW_BATCH", 2)
    data = Path(__file__).parent / "data" / "import"
    capture = tmp_path / "capture"
    summary = import_files([data / "steve.log"], "steve", capture)
    rows = _rows(capture)
    assert summary.rows == len(rows) == 8
    assert len(list(capture.rglob("*.parquet"))) == 4
    assert not [p for p in capture.iterdir() if p.name.startswith(".import-")]
    # a second file that fails: nothing of the first one is written
    other = tmp_path / "other"
    bad = tmp_path / "bad.log"
    bad.write_text("not a log\n")
    with pytest.raises(importers.ImportFileError):
        import_files([data / "steve.log", bad], "steve", other)
    assert not other.exists()


def test_an_impossible_time_is_counted_not_fatal(tmp_path: Path) -> None:
    summary, rows = _import(
        tmp_path,
        '2024-03-05 25:61:00,000 INFO ocpp: CP1: receive message [2,"1","Heartbeat",{}]\n'
        + HEAD.format(ms=2)
        + 'receive message [2,"2","Heartbeat",{}]\n',
    )
    assert [r["raw"] for r in rows] == ['[2,"2","Heartbeat",{}]']
    assert summary.skipped == Counter({"frame line with an impossible time": 1})
