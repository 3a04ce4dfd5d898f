"""ocpp-audit export: the jsonl form, and import of an export gives the same frames."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from click.testing import CliRunner

from ocpp_audit.cli import main

DATA = Path(__file__).parent / "data" / "import"
FRAME_COLUMNS = (
    "epoch_us(ts) AS ts, connection_id, charge_point_id, direction, raw, raw_binary, "
    "message_type, unique_id, action, payload, error_code, parse_error"
)


def _frames(capture: Path) -> list[tuple]:
    return (
        duckdb.connect()
        .sql(
            f"SELECT {FRAME_COLUMNS} FROM read_parquet('{capture}/frames/**/*.parquet') "
            f"WHERE event = 'message' ORDER BY ts, connection_id, seq"
        )
        .fetchall()
    )


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_export_then_import_gives_the_same_frames(tmp_path: Path) -> None:
    original = tmp_path / "original"
    code, output = _run(
        "import", str(DATA / "steve.log"), "--format", "steve", "--capture", str(original)
    )
    assert code == 0, output
    jsonl = tmp_path / "export.jsonl"
    code, output = _run("export", str(original), "--output", str(jsonl))
    assert code == 0, output
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 6
    first = json.loads(lines[0])
    assert list(first) == ["ts", "charge_point_id", "direction", "raw", "connection_id"]
    assert first["ts"] == "2024-03-05T14:02:11.123000Z"
    assert first["direction"] == "cp_to_cs"

    again = tmp_path / "again"
    code, output = _run("import", str(jsonl), "--format", "jsonl", "--capture", str(again))
    assert code == 0, output
    assert "skipped 0 lines" in output
    assert _frames(again) == _frames(original)


def test_binary_frames_and_charger_filter_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "source.jsonl"
    source.write_text(
        '{"ts": "2024-03-05T13:00:00.000001Z", "charge_point_id": "A", "direction": "cp_to_cs", '
        '"raw_base64": "AAH/"}\n'
        '{"ts": "2024-03-05T13:00:01Z", "charge_point_id": "B", "direction": "cp_to_cs", '
        '"raw": "[2,\\"1\\",\\"Heartbeat\\",{}]"}\n'
    )
    capture = tmp_path / "capture"
    assert _run("import", str(source), "--format", "jsonl", "--capture", str(capture))[0] == 0
    code, output = _run("export", str(capture), "--charger", "A")
    assert code == 0, output
    (line,) = output.splitlines()
    record = json.loads(line)
    assert record["raw_base64"] == "AAH/" and "raw" not in record
    assert record["ts"] == "2024-03-05T13:00:00.000001Z"
    again = tmp_path / "again"
    out = tmp_path / "a.jsonl"
    out.write_text(output)
    assert _run("import", str(out), "--format", "jsonl", "--capture", str(again))[0] == 0
    assert _frames(again) == [f for f in _frames(capture) if f[2] == "A"]


def test_export_of_a_missing_capture_exits_2(tmp_path: Path) -> None:
    code, output = _run("export", str(tmp_path / "nothing"))
    assert code == 2 and "nothing" in output
