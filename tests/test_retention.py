"""Retention (issue 18): exactly the expired days go, never the journal, uploads or other files."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from ocpp_audit.capture.retention import prune
from ocpp_audit.capture.writer import CaptureWriter, write_rows
from ocpp_audit.cli import main
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout
from tests.engines import PlainBackend

TODAY = dt.date(2024, 5, 31)


def capture_of_days(capture: Path, days: list[dt.date]) -> None:
    """One sealed part per day (rows at noon UTC), through the writer's own sealing."""
    rows = []
    for n, day in enumerate(days):
        noon = dt.datetime.combine(day, dt.time(12), dt.UTC)
        rows.append(
            {"event": "message", "ts": int(noon.timestamp() * 1_000_000), "seq": n,
             "connection_id": "c", "charge_point_id": "CP1", "direction": "cp_to_cs",
             "raw": '[2,"1","Heartbeat",{}]'}
        )  # fmt: skip
    write_rows(rows, capture)


def days_left(capture: Path) -> list[str]:
    return sorted(p.name for p in (capture / "frames").iterdir())


def test_prune_removes_exactly_the_days_older_than_the_limit(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    days = [TODAY - dt.timedelta(days=n) for n in (0, 29, 30, 31, 90)]
    capture_of_days(capture, days)
    (capture / "diagnostics" / "CP1").mkdir(parents=True)
    (capture / "diagnostics" / "CP1" / "old.log").write_text("kept")
    writer = CaptureWriter(capture)
    writer.start()  # an open journal: never touched
    try:
        writer.append({"event": "open", "ts": 1, "connection_id": "x", "seq": 0})
        removed = prune(capture, 30, today=TODAY)
        assert sorted(r.folder.name for r in removed) == ["date=2024-03-02", "date=2024-04-30"]
        assert all(r.parts == 1 and r.bytes > 0 for r in removed)
        assert days_left(capture) == ["date=2024-05-01", "date=2024-05-02", "date=2024-05-31"]
        assert list((capture / "journal").glob("*.journal"))
        assert (capture / "diagnostics" / "CP1" / "old.log").read_text() == "kept"
    finally:
        writer.close()


def test_prune_command_dry_run_then_for_real(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    today = dt.datetime.now(dt.UTC).date()
    capture_of_days(capture, [today, today - dt.timedelta(days=40)])
    runner = CliRunner()
    dry = runner.invoke(main, ["prune", str(capture), "--older-than", "30d", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove 1 day(s), 1 part(s) older than 30 days" in dry.output
    assert len(days_left(capture)) == 2
    done = runner.invoke(main, ["prune", str(capture), "--older-than", "30d"])
    assert done.exit_code == 0 and "removed 1 day(s), 1 part(s)" in done.output
    assert days_left(capture) == [f"date={today.isoformat()}"]
    assert runner.invoke(main, ["prune", str(capture), "--older-than", "soon"]).exit_code == 2
    missing = runner.invoke(main, ["prune", str(tmp_path / "nothing"), "--older-than", "1d"])
    assert missing.exit_code == 2 and "not a capture" in missing.stderr


async def test_record_retain_days_prunes_at_start(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    today = dt.datetime.now(dt.UTC).date()
    capture_of_days(capture, [today - dt.timedelta(days=1), today - dt.timedelta(days=10)])
    backend = PlainBackend()
    await backend.start()
    try:
        options = RecordOptions(capture_dir=capture, upstream=backend.url, retain_days=7)
        async with RecorderService(options):
            async with asyncio.timeout(timeout(10)):
                while len(days_left(capture)) > 1:
                    await asyncio.sleep(0.05)
    finally:
        await backend.stop()
    assert days_left(capture) == [f"date={(today - dt.timedelta(days=1)).isoformat()}"]
