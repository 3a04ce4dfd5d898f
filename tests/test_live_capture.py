"""A capture being recorded is visible: query and analyse read the open journal (issue 13).

The writer keeps rows in its journal until the rotation or shutdown; ``query`` right after ``inject``
must still see them, a torn last line is skipped and counted, and a journal sealed while it is read
is counted once.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import websockets
from click.testing import CliRunner, Result

from ocpp_audit.capture import live
from ocpp_audit.capture.writer import CaptureWriter
from ocpp_audit.cli import main
from tests.capture_builder import CaptureBuilder
from tests.conftest import timeout
from tests.engines import recording  # noqa: F401 (fixture)


@pytest.fixture
def engine_name() -> str:
    return "relay"


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def _rows() -> list[dict[str, object]]:
    capture = CaptureBuilder()
    cp = capture.charger("CP1")
    cp.connect()
    cp.boot()
    cp.status(1, "Available")
    cp.wait(60).heartbeat()
    return capture.sorted_rows()


def _open_writer(capture_dir: Path, rows: list[dict[str, object]]) -> CaptureWriter:
    writer = CaptureWriter(capture_dir)
    writer.start()
    for row in rows:
        writer.append(row)
    return writer


def _count(capture_dir: Path) -> tuple[int, str]:
    result = run("query", capture_dir, "select count(*) as n from frames", "--format", "csv")
    assert result.exit_code == 0, result.output
    return int(result.stdout.splitlines()[1]), result.stderr


def test_query_reads_the_open_journal_and_counts_a_torn_line(tmp_path: Path) -> None:
    rows = _rows()
    capture_dir = tmp_path / "capture"
    writer = _open_writer(capture_dir, rows)
    try:
        assert not list(capture_dir.glob("frames/**/*.parquet"))  # nothing sealed yet
        (journal,) = capture_dir.glob("journal/*.journal")
        with journal.open("ab") as file:  # a line the recorder is still writing
            file.write(b'{"event":"message","ts":17')
        count, stderr = _count(capture_dir)
        assert count == len(rows)
        assert "Capture being recorded" in stderr
        assert f"{len(rows)} row(s) read from 1 open journal(s), not sealed yet" in stderr
        assert "skipped 1 incomplete line(s)" in stderr
        # The recorder is not blocked: it still appends (and the torn bytes stay its business).
        os.truncate(journal, journal.stat().st_size - len(b'{"event":"message","ts":17'))
        writer.append(rows[0] | {"seq": 99})
    finally:
        writer.close()
    # Sealed: the same rows (and the one appended since), read from parts only, counted once.
    count, stderr = _count(capture_dir)
    assert count == len(rows) + 1
    assert "Capture being recorded" not in stderr


def test_a_journal_being_sealed_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing writes the parts, then deletes the journal: between the two, the parts count."""
    rows = _rows()
    capture_dir = tmp_path / "capture"
    writer = _open_writer(capture_dir, rows)
    (journal,) = capture_dir.glob("journal/*.journal")
    kept = tmp_path / "journal-copy"
    shutil.copy(journal, kept)
    writer.close()  # parts written, journal deleted
    shutil.copy(kept, journal)  # ...and the journal back, as if caught before its deletion
    monkeypatch.setattr(live, "SEAL_WAIT_S", 0.1)
    found = live.read_open_journals([capture_dir])
    assert found.rows == 0 and found.files == []
    count, _ = _count(capture_dir)
    assert count == len(rows)


def test_analyse_judges_a_capture_with_only_an_open_journal(tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    writer = _open_writer(capture_dir, _rows())
    try:
        result = run("analyse", capture_dir, "--format", "json", "--select", "boot-notification")
    finally:
        writer.close()
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [c["charge_point_id"] for c in document["chargers"]] == ["CP1"]
    (boot,) = document["chargers"][0]["functions"]
    assert boot["verdict"] == "PASS"
    assert boot["findings"][0]["detail"].startswith("vendor ACME, model Wallbox 22")
    assert boot["findings"][0]["evidence"][0]["unique_id"] == "CP1-1"
    assert document["open_journals"]["rows"] == len(_rows())
    assert "Capture being recorded" in result.stderr


def test_an_empty_open_journal_is_nothing_judged(tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    writer = _open_writer(capture_dir, [])
    try:
        result = run("analyse", capture_dir)
        exported = run("export", capture_dir)
    finally:
        writer.close()
    assert result.exit_code == 2
    assert "no charger's frames in" in result.stderr and "open journal" in result.stderr
    # export reads sealed parts only, and says why there are none yet.
    assert exported.exit_code == 2
    assert "it is being recorded" in exported.stderr


async def test_query_right_after_inject_sees_both_frames(recording, tmp_path: Path) -> None:  # noqa: F811
    """The README's Active-mode example: inject, then query, with the recorder still running."""
    async with (
        recording(
            standalone=True, control_host="127.0.0.1", control_port=0, control_token="t0ken-live"
        ) as service,
        websockets.connect(f"{service.url}/CP001", subprotocols=["ocpp1.6"]) as charger,
    ):
        await charger.send(
            json.dumps(
                [
                    2,
                    "b1",
                    "BootNotification",
                    {"chargePointVendor": "V", "chargePointModel": "M"},
                ]
            )
        )
        await asyncio.wait_for(charger.recv(), timeout(5))

        async def answer() -> None:
            call = json.loads(await asyncio.wait_for(charger.recv(), timeout(5)))
            await charger.send(json.dumps([3, call[1], {"status": "Accepted"}]))

        answering = asyncio.create_task(answer())
        inject = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ocpp_audit",
            "inject",
            "--control",
            service.control.url,
            "--token",
            "t0ken-live",
            "CP001",
            "ChangeAvailability",
            '{"connectorId": 1, "type": "Inoperative"}',
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(inject.communicate(), timeout(30))
        await answering
        assert inject.returncode == 0, err.decode()
        query = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ocpp_audit",
            "query",
            str(service.options.capture_dir),
            "select direction, message_type, action from messages where injected order by seq",
            "--format",
            "csv",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(query.communicate(), timeout(30))
        assert query.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "direction,message_type,action",
        "cs_to_cp,2,ChangeAvailability",
        "cp_to_cs,3,ChangeAvailability",
    ]
