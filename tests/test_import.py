"""ocpp-audit import: each format's sample gives the rows an engine would have written."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ocpp_audit.cli import main

DATA = Path(__file__).parent / "data" / "import"


def _rows(capture: Path) -> list[dict[str, object]]:
    con = duckdb.connect()
    relation = con.sql(
        f"SELECT event, epoch_us(ts) AS ts, connection_id, charge_point_id, direction, seq, raw, "
        f"message_type, unique_id, action, parse_error, close_code, closed_by "
        f"FROM read_parquet('{capture}/frames/**/*.parquet') ORDER BY ts, seq"
    )
    columns = relation.columns
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


def _import(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    capture = tmp_path / "capture"
    result = CliRunner().invoke(main, ["import", *args, "--capture", str(capture)])
    return result.exit_code, result.output, capture


def _us(iso: str) -> int:
    from datetime import datetime

    moment = datetime.fromisoformat(iso)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def test_steve_log_frames_sessions_and_local_time(tmp_path: Path) -> None:
    code, output, capture = _import(
        tmp_path, str(DATA / "steve.log"), "--format", "steve", "--timezone", "Europe/Berlin"
    )
    assert code == 0, output
    assert "2  not an OCPP frame line" in output
    rows = _rows(capture)
    assert [r["event"] for r in rows] == ["open"] + ["message"] * 6 + ["close"]
    assert [r["seq"] for r in rows] == list(range(8))
    assert len({r["connection_id"] for r in rows}) == 1
    boot, answer = rows[1], rows[2]
    assert (boot["direction"], boot["action"], boot["message_type"]) == (
        "cp_to_cs",
        "BootNotification",
        2,
    )
    # 14:02:11,123 in Berlin (CET, UTC+1 in March) is 13:02:11.123 UTC
    assert boot["ts"] == _us("2024-03-05T13:02:11.123+00:00")
    assert (answer["direction"], answer["action"]) == ("cs_to_cp", "BootNotification")
    remote = [r for r in rows if r["unique_id"] == "3f1d7c2a"]
    assert [(r["direction"], r["action"]) for r in remote] == [
        ("cs_to_cp", "RemoteStartTransaction"),
        ("cp_to_cs", "RemoteStartTransaction"),
    ]
    assert rows[-1]["close_code"] == 1006 and rows[-1]["closed_by"] is None


def test_ocpp_log_sample(tmp_path: Path) -> None:
    code, output, capture = _import(tmp_path, str(DATA / "ocpp-log.log"), "--format", "ocpp-log")
    assert code == 0, output
    assert "skipped 0 lines" in output
    assert "read as UTC: 6" in output
    rows = _rows(capture)
    assert [(r["charge_point_id"], r["direction"], r["action"]) for r in rows] == [
        ("CP002", "cp_to_cs", "BootNotification"),
        ("CP002", "cs_to_cp", "BootNotification"),
        ("CP002", "cp_to_cs", "Heartbeat"),
        ("CP002", "cs_to_cp", "Heartbeat"),
        ("CP002", "cs_to_cp", "Reset"),
        ("CP002", "cp_to_cs", "Reset"),
    ]
    assert rows[-1]["message_type"] == 4
    assert rows[0]["ts"] == _us("2024-03-05T14:02:11.123+00:00")


def test_ocpp_log_of_a_charger_is_read_the_other_way_round(tmp_path: Path) -> None:
    log = tmp_path / "charger.log"
    log.write_text(
        '2024-03-05 14:02:11,123 INFO ocpp: CP9: send [2,"1","BootNotification",{}]\n'
        '2024-03-05 14:02:11,200 INFO ocpp: CP9: receive message [3,"1",{"status":"Accepted"}]\n'
    )
    code, output, capture = _import(tmp_path, str(log), "--format", "ocpp-log")
    assert code == 0, output
    assert "read as a charger's log" in output
    assert [r["direction"] for r in _rows(capture)] == ["cp_to_cs", "cs_to_cp"]


def test_messy_log_counts_every_skipped_line(tmp_path: Path) -> None:
    code, output, capture = _import(
        tmp_path,
        str(DATA / "messy-ocpp-log.log"),
        "--format",
        "ocpp-log",
        "--timezone",
        "Europe/Amsterdam",
    )
    assert code == 0, output
    assert "imported 3 frames" in output
    # websockets.server's "connection open" line is the connection's open row, not a skipped line
    assert "skipped 8 lines:" in output
    for line in (
        "5  not an OCPP frame line",
        "1  blank line",
        "1  frame line without a timestamp",
        "1  line after a frame, not part of it",
        "read as Europe/Amsterdam: 4",
    ):
        assert line in output
    everything = _rows(capture)
    assert everything[0]["event"] == "open"
    assert everything[0]["ts"] == _us("2024-03-05T13:02:11.123+00:00")
    rows = [r for r in everything if r["event"] == "message"]
    boot = rows[0]
    assert boot["action"] == "BootNotification" and boot["parse_error"] is None
    assert boot["raw"].startswith("[\n    2,")  # the pretty-printed frame, joined
    assert boot["ts"] == _us("2024-03-05T13:02:11.200+00:00")
    truncated = rows[2]
    assert truncated["unique_id"] is None or truncated["parse_error"] is not None
    assert truncated["parse_error"] is not None
    assert (
        truncated["raw"] == '[2,"m3","Heartbeat"'
        and truncated["parse_error"] == "truncated in the log"
    )


def test_jsonl_sample_with_inferred_and_unknown_directions(tmp_path: Path) -> None:
    code, output, capture = _import(tmp_path, str(DATA / "sample.jsonl"), "--format", "jsonl")
    assert code == 0, output
    assert "direction inferred from message type and action: 2" in output
    assert "direction unknown, left null: 1" in output
    rows = _rows(capture)
    assert [(r["direction"], r["action"]) for r in rows] == [
        ("cp_to_cs", "Heartbeat"),
        ("cs_to_cp", "Heartbeat"),
        (None, "DataTransfer"),
        ("cs_to_cp", "RemoteStopTransaction"),
        ("cp_to_cs", "RemoteStopTransaction"),
        ("cp_to_cs", None),
    ]
    assert rows[2]["raw"] == '[2,"2","DataTransfer",{"vendorId":"ACME"}]'
    assert rows[2]["ts"] == _us("2024-03-05T13:03:00+00:00")
    assert rows[3]["ts"] == 1709643781_500000
    assert rows[-1]["parse_error"] is not None


def test_jsonl_without_charger_ids_needs_charger(tmp_path: Path) -> None:
    log = tmp_path / "one.jsonl"
    log.write_text('{"ts": "2024-03-05T13:02:11Z", "raw": "[2,\\"1\\",\\"Heartbeat\\",{}]"}\n')
    code, output, capture = _import(tmp_path, str(log), "--format", "jsonl")
    # Nothing imported is an input error (exit 2), with the reason; no capture is made.
    assert code == 2 and "no charge point id (give one with --charger)" in output
    assert not capture.exists()
    code, output, capture = _import(tmp_path, str(log), "--format", "jsonl", "--charger", "CPX")
    assert code == 0, output
    assert [r["charge_point_id"] for r in _rows(capture)] == ["CPX"]


def test_mitmproxy_flow_file(tmp_path: Path) -> None:
    from mitmproxy import io
    from mitmproxy.test import tflow
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    flow = tflow.twebsocketflow()
    flow.request.path = "/ocpp/CP005"
    flow.websocket.messages = [
        WebSocketMessage(Opcode.TEXT, True, b'[2,"1","Heartbeat",{}]', 1709643731.25),
        WebSocketMessage(Opcode.TEXT, False, b'[3,"1",{"currentTime":"x"}]', 1709643731.5),
        WebSocketMessage(Opcode.BINARY, True, b"\x00\x01", 1709643732.0),
    ]
    flow.websocket.close_code = 1000
    flow.websocket.closed_by_client = True
    flow.websocket.timestamp_end = 1709643733.0
    path = tmp_path / "flows.mitm"
    with path.open("wb") as stream:
        io.FlowWriter(stream).add(flow)
    code, output, capture = _import(tmp_path, str(path), "--format", "mitmproxy")
    assert code == 0, output
    rows = _rows(capture)
    assert [r["event"] for r in rows] == ["open", "message", "message", "message", "close"]
    assert {r["charge_point_id"] for r in rows} == {"CP005"}
    assert [(r["direction"], r["action"]) for r in rows[1:3]] == [
        ("cp_to_cs", "Heartbeat"),
        ("cs_to_cp", "Heartbeat"),
    ]
    assert rows[1]["ts"] == 1709643731_250000
    assert rows[3]["raw"] is None and rows[3]["parse_error"] is not None
    assert (rows[4]["close_code"], rows[4]["closed_by"]) == (1000, "charger")


@pytest.mark.parametrize("fmt", ["jsonl", "steve", "ocpp-log", "mitmproxy"])
def test_missing_file_exits_2_naming_it(tmp_path: Path, fmt: str) -> None:
    code, output, _ = _import(tmp_path, str(tmp_path / "nope.log"), "--format", fmt)
    assert code == 2
    assert "nope.log" in output


def test_not_a_flow_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "flows.mitm"
    path.write_bytes(b"this is not a flow file at all")
    code, output, _ = _import(tmp_path, str(path), "--format", "mitmproxy")
    assert code == 2 and "flows.mitm" in output


def test_unknown_timezone_exits_2(tmp_path: Path) -> None:
    code, output, _ = _import(
        tmp_path, str(DATA / "steve.log"), "--format", "steve", "--timezone", "Mars/Olympus"
    )
    assert code == 2 and "Mars/Olympus" in output
