"""``ocpp-audit query``: SQL over the real views in each format, --views, and --duckdb files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from ocpp_audit.analyser import views
from ocpp_audit.capture import schema
from ocpp_audit.cli import main
from tests.test_analyser_engine import _corrupt_parts, three_chargers

COUNT_SQL = (
    "SELECT charge_point_id, count(*) AS messages, min(ts) AS first_ts FROM messages"
    " GROUP BY ALL ORDER BY 1"
)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return three_chargers(tmp_path)


def run(*args: object) -> Result:
    return CliRunner().invoke(main, ["query", *map(str, args)], catch_exceptions=False)


def test_table(capture: Path) -> None:
    result = run(capture, COUNT_SQL)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["charge_point_id", "messages", "first_ts"]
    assert lines[2].split() == ["CP1", "8", "2024-05-01T10:00:00Z"]
    assert lines[-1] == "(3 rows)"


def test_csv(capture: Path) -> None:
    result = run(capture, COUNT_SQL, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["charge_point_id"], r["messages"]) for r in rows] == [
        ("CP1", "8"),
        ("CP2", "8"),
        ("CP3", "2"),
    ]


def test_json(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = run(capture, COUNT_SQL, "--format", "json", "--output", out)
    assert result.exit_code == 0 and result.stdout == ""
    rows = json.loads(out.read_text())
    assert rows[0] == {"charge_point_id": "CP1", "messages": 8, "first_ts": "2024-05-01T10:00:00Z"}
    assert len(rows) == 3


def test_json_of_no_rows(capture: Path) -> None:
    result = run(capture, "SELECT * FROM frames WHERE false", "--format", "json")
    assert json.loads(result.stdout) == []


def test_bad_sql_exits_2_in_one_line(capture: Path) -> None:
    result = run(capture, "SELECT nonsense FROM nowhere")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("Error: SQL failed: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_capture_exits_2(tmp_path: Path) -> None:
    path, problem = _corrupt_parts(tmp_path)["foreign"]
    result = run(path, "SELECT 1")
    assert result.exit_code == 2
    assert f"{path.resolve()}: {problem}" in result.stderr


def test_views_lists_every_view_and_column(capture: Path) -> None:
    result = run(capture, "--views")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("frames: ")
    for column in schema.COLUMNS:
        assert f"  {column.name}" in text and column.meaning in text
    for view in views.VIEWS:
        assert f"\n{view.name}: {view.description}" in text
        for name, meaning in view.columns:
            assert name in text and meaning in text


def test_duckdb_file_opens_again(
    tmp_path: Path, capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "capture.duckdb"
    monkeypatch.chdir(tmp_path)  # relative capture path: the file must hold absolute ones
    result = run(capture.relative_to(tmp_path), "--duckdb", database)
    assert result.exit_code == 0, result.output
    monkeypatch.chdir("/")
    con = duckdb.connect(str(database), read_only=True)
    try:
        names = {
            name
            for (name,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
        assert {"frames", *(view.name for view in views.VIEWS)} <= names
        counts = con.execute(
            "SELECT charge_point_id, count(*) FROM messages GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert counts == [("CP1", 8), ("CP2", 8), ("CP3", 2)]
    finally:
        con.close()


def test_usage(capture: Path) -> None:
    assert run(capture).exit_code == 2  # no SQL
    assert run(capture, "--views", "--duckdb", "x.duckdb").exit_code == 2
    help_text = CliRunner().invoke(main, ["query", "--help"]).stdout
    assert "ocpp-audit query captures/" in help_text


def test_table_stops_but_csv_streams_every_row(capture: Path) -> None:
    table = run(capture, "SELECT i FROM range(1500) AS r(i)").stdout.splitlines()
    assert len(table) == 2 + 1000 + 1
    assert table[-1].startswith("(first 1000 rows shown")
    rows = run(capture, "SELECT i FROM range(25000) AS r(i)", "-f", "csv").stdout.splitlines()
    assert len(rows) == 1 + 25000 and rows[-1] == "24999"


def test_table_shows_a_chargers_escape_sequences_inert(tmp_path: Path) -> None:
    from tests.capture_builder import CaptureBuilder

    evil = "CP\x1b[2J\x1b]0;owned\x07\x1b[32mALL PASS\x1b[0m"
    capture = CaptureBuilder()
    cp = capture.charger(evil)
    cp.connect()
    cp.boot(vendor="V\x1b]52;c;ZWNobw==\x07")
    capture.write(tmp_path / "capture")
    result = CliRunner().invoke(
        main,
        ["query", str(tmp_path / "capture"), "SELECT charge_point_id, vendor FROM boots"],
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "CP\\x1b[2J\\x1b]0;owned\\x07\\x1b[32mALL PASS\\x1b[0m" in result.output
    assert "V\\x1b]52;c;ZWNobw==\\x07" in result.output
