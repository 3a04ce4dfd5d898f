"""The capture writer: journal first, sealed Parquet parts, rotation, crash recovery, write faults."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ocpp_audit.capture import writer as writer_module
from ocpp_audit.capture.connection import ConnectionRecorder
from ocpp_audit.capture.schema import (
    COLUMN_NAMES,
    META_SCHEMA_CHECK,
    META_SCHEMA_VERSION,
    SCHEMA_VERSION,
    Direction,
    empty_row,
)
from ocpp_audit.capture.writer import CaptureWriteError, CaptureWriter, write_rows
from ocpp_audit.protocol.schema_validation import checker_fingerprint
from tests.conftest import timeout

DAY_US = 86_400_000_000
T0 = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z


def read_capture(capture_dir: Path) -> list[dict[str, object]]:
    """Every row as plain DuckDB reads it, ts as integer microseconds, in (ts, seq) order."""
    pattern = capture_dir / "**" / "*.parquet"
    con = duckdb.connect()
    relation = con.execute(
        "select * exclude (date) replace (epoch_us(ts) as ts), date::varchar as date "
        f"from read_parquet('{pattern}', hive_partitioning = true) order by ts, seq"
    )
    names = [column[0] for column in relation.description]
    return [dict(zip(names, values, strict=True)) for values in relation.fetchall()]


def full(row: dict[str, object]) -> dict[str, object]:
    return {**empty_row(), **row}


def message_row(seq: int, ts: int, raw: str = '[2,"1","Heartbeat",{}]') -> dict[str, object]:
    return {
        "event": "message",
        "ts": ts,
        "connection_id": "conn-1",
        "charge_point_id": "CP001",
        "direction": "cp_to_cs",
        "seq": seq,
        "raw": raw,
        "injected": False,
    }


def parts_in(capture_dir: Path) -> list[Path]:
    return sorted((capture_dir / "frames").glob("date=*/*.parquet"))


def wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + timeout(seconds)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Tee:
    """A row sink that appends to the writer and keeps a copy to compare with what is read."""

    def __init__(self, writer: CaptureWriter) -> None:
        self.writer = writer
        self.rows: list[dict[str, object]] = []

    def append(self, row: dict[str, object]) -> None:
        self.writer.append(row)
        self.rows.append(dict(row))


# -- round trip ----------------------------------------------------------------------------------


def test_append_and_close_keep_every_row_byte_for_byte(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    text_frames = [
        '[2,"42","BootNotification",{"chargePointVendor":"Ünïcødé ⚡","chargePointModel":"😀"}]',
        '[3,"42",{"status":"Accepted","currentTime":"2025-01-01T00:00:00.000Z","interval":300}]',
        '[2, "7" , "Heartbeat" , { } ]',  # spacing as on the wire
        'not json at all \\ " \n\t\u0000\u2028 end',
        '[2,"8","DataTransfer",{"data":"1e400","n":1.000}]',
    ]
    binary = bytes(range(256)) + b"\x00\xff\xfe"
    with CaptureWriter(capture) as writer:
        sink = Tee(writer)
        recorder = ConnectionRecorder(sink, "CP/001 ü", connection_id="conn-a")
        recorder.opened(
            path="/ocpp/CP%2F001%20%C3%BC?x=1",
            subprotocols_offered=["ocpp1.6", "ocpp2.0.1"],
            subprotocol="ocpp1.6",
            remote_address="127.0.0.1:5555",
            authorization="Basic Q1AwMDE6c2VjcmV0",
            tls=True,
            ts=T0,
        )
        for n, frame in enumerate(text_frames):
            direction = Direction.CP_TO_CS if n % 2 == 0 else Direction.CS_TO_CP
            recorder.message(direction, frame, ts=T0 + 10 + n)
        recorder.message(Direction.CP_TO_CS, binary, ts=T0 + 100)
        every_column = {
            "event": "close",
            "ts": T0 + 200,
            "connection_id": "conn-x",
            "charge_point_id": "CPX",
            "direction": "cs_to_cp",
            "seq": 2**40,
            "raw": "r",
            "raw_binary": b"b",
            "message_type": 4,
            "unique_id": "u",
            "action": "a",
            "payload": "{}",
            "error_code": "GenericError",
            "error_description": "d",
            "parse_error": "p",
            "injected": True,
            "path": "/p",
            "subprotocols_offered": "ocpp1.6",
            "subprotocol": "ocpp1.6",
            "remote_address": "[::1]:1",
            "auth_user": "CPX",
            "tls": False,
            "http_status": 401,
            "close_code": 1001,
            "close_reason": "going away",
            "closed_by": "recorder",
            "detail": '{"k": 1}',
            "ocpp_version": "1.6",
            "backend": "new-platform",
            "answers_seq": 2**40 - 1,
            "reused_id": True,
        }
        # schema_error is the writer's own column: each payload judged as the part is sealed.
        assert set(every_column) == set(COLUMN_NAMES) - {"schema_error"}
        sink.append(every_column)
    expected_rows = sink.rows
    got = read_capture(capture)
    assert len(got) == len(text_frames) + 3
    verdicts = [row["schema_error"] for row in got]
    for row, want in zip(got, expected_rows, strict=True):
        assert row.pop("date") == "2025-01-01"
        assert row == {**full(want), "schema_error": row.get("schema_error")}
    # open; Boot, its answer, Heartbeat valid; not JSON (no verdict); DataTransfer with an unknown
    # property and without its required vendorId; the binary frame and the close row (no verdict).
    assert verdicts[:4] == [None, "", "", ""]
    assert verdicts[4] is None
    assert verdicts[5] == (
        "DataTransfer payload: Additional properties are not allowed ('n' was unexpected)"
        " (and 1 more)"  # (vendorId missing)
    )
    assert verdicts[6:] == [None, None]
    assert pq.read_schema(parts_in(capture)[0]).metadata[META_SCHEMA_CHECK] == (
        checker_fingerprint().encode()
    )
    assert got[-2]["raw_binary"] == binary and got[-2]["raw"] is None
    assert [row["raw"] for row in got[1 : 1 + len(text_frames)]] == text_frames
    assert not list((capture / "journal").iterdir())  # sealed and deleted


def test_rows_are_sorted_by_ts_and_split_by_utc_date(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    before_midnight = T0 + DAY_US - 1
    with CaptureWriter(capture) as writer:
        writer.append(message_row(0, T0 + DAY_US + 5))  # next day, appended first
        writer.append(message_row(1, before_midnight))
        writer.append(message_row(2, T0 + DAY_US))  # exactly midnight UTC
        writer.append(message_row(3, before_midnight))  # same ts: keeps journal order
    parts = parts_in(capture)
    assert [part.parent.name for part in parts] == ["date=2025-01-01", "date=2025-01-02"]
    assert parts[0].name == parts[1].name  # one journal, one part per date
    assert parts[0].name.startswith("part-") and writer.instance_id in parts[0].name
    first_day = pq.read_table(parts[0])
    assert first_day.column("seq").to_pylist() == [1, 3]
    second_day = pq.read_table(parts[1])
    assert second_day.column("seq").to_pylist() == [2, 0]
    got = read_capture(capture)
    assert [(row["seq"], row["date"]) for row in got] == [
        (1, "2025-01-01"),
        (3, "2025-01-01"),
        (2, "2025-01-02"),
        (0, "2025-01-02"),
    ]


def test_write_rows_seals_parts_directly(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    rows = [message_row(n, T0 + n * DAY_US // 2) for n in range(4)]
    rows.append({"event": "message", "ts": T0, "raw_binary": b"\x00\x01"})
    parts = write_rows(rows, capture)
    assert [part.parent.name for part in parts] == ["date=2025-01-01", "date=2025-01-02"]
    got = read_capture(capture)
    assert len(got) == 5
    assert [row["raw_binary"] for row in got if row["raw_binary"]] == [b"\x00\x01"]
    assert not (capture / "journal").exists()
    with pytest.raises(ValueError, match="not capture columns: bogus"):
        write_rows([{"event": "message", "ts": T0, "bogus": 1}], tmp_path / "other")


def test_append_refuses_unknown_columns_and_missing_ts(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path / "capture") as writer:
        with pytest.raises(ValueError, match="not capture columns: password"):
            writer.append({"event": "open", "ts": T0, "password": "secret"})
        with pytest.raises(ValueError, match="ts"):
            writer.append({"event": "open"})
    with pytest.raises(CaptureWriteError, match="closed"):
        writer.append(message_row(0, T0))


def test_parts_carry_schema_and_version_metadata(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    with CaptureWriter(capture) as writer:
        writer.append(message_row(0, T0))
    (part,) = parts_in(capture)
    assert pq.read_schema(part).metadata[META_SCHEMA_VERSION] == SCHEMA_VERSION.encode()
    assert pq.read_schema(part).names == list(COLUMN_NAMES)
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"
    con = duckdb.connect()
    stored = con.execute(
        "select decode(value) from parquet_kv_metadata(?) where decode(key) = ?",
        [str(part), META_SCHEMA_VERSION.decode()],
    ).fetchall()
    assert stored == [(SCHEMA_VERSION,)]


def test_folders_0700_and_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    capture = tmp_path / "deep" / "capture"
    old_umask = os.umask(0o002)
    try:
        writer = CaptureWriter(capture)
        writer.start()
        writer.append(message_row(0, T0))
        (journal,) = (capture / "journal").iterdir()
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
        writer.close()
        write_rows([message_row(1, T0 + 2 * DAY_US)], capture)
    finally:
        os.umask(old_umask)
    folders = [tmp_path / "deep", capture, capture / "journal", capture / "frames"]
    folders += [folder for folder in (capture / "frames").iterdir()]
    assert len(folders) == 6
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    parts = parts_in(capture)
    assert len(parts) == 2
    for part in parts:
        assert stat.S_IMODE(part.stat().st_mode) == 0o600, part


# -- rotation ------------------------------------------------------------------------------------


def test_rotation_by_size(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    line_bytes = len(writer_module._journal_line(message_row(0, T0)))
    with CaptureWriter(capture, rotate_bytes=10 * line_bytes) as writer:
        for n in range(95):
            writer.append(message_row(n, T0 + n))
        assert writer.wait_sealed(timeout(10))
        assert len(parts_in(capture)) == 9  # nine full journals sealed while running
        assert len(list((capture / "journal").glob("*.journal"))) == 1  # the open one
    assert len(parts_in(capture)) == 10
    assert [row["seq"] for row in read_capture(capture)] == list(range(95))


def test_rotation_by_time_seals_an_idle_recorder_and_parts_are_readable_while_running(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture"
    with CaptureWriter(capture, rotate_seconds=0.2) as writer:
        time.sleep(0.5)
        assert parts_in(capture) == []  # an empty journal is not sealed into an empty part
        writer.append(message_row(0, T0))
        writer.append(message_row(1, T0 + 1))
        wait_until(lambda: len(parts_in(capture)) == 1, 5)
        assert [row["seq"] for row in read_capture(capture)] == [0, 1]
        writer.append(message_row(2, T0 + 2))
        wait_until(lambda: len(parts_in(capture)) == 2, 5)
        assert [row["seq"] for row in read_capture(capture)] == [0, 1, 2]


def test_readers_never_see_half_a_part_while_sealing(tmp_path: Path) -> None:
    """DuckDB globbing the capture while parts are being written reads only whole parts."""
    capture = tmp_path / "capture"
    payload = "x" * 2000
    stop = threading.Event()
    appended = 0

    def record() -> None:
        nonlocal appended
        while not stop.is_set() and appended < 20_000:
            writer.append(message_row(appended, T0 + appended, raw=payload))
            appended += 1

    with CaptureWriter(capture, rotate_bytes=200_000) as writer:
        thread = threading.Thread(target=record)
        thread.start()
        reads = 0
        deadline = time.monotonic() + timeout(10)
        try:
            while reads < 15 and time.monotonic() < deadline:
                if parts_in(capture):
                    rows = read_capture(capture)  # raises if a part were half written
                    assert [row["seq"] for row in rows] == list(range(len(rows)))
                    reads += 1
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join()
    assert reads > 5
    assert len(read_capture(capture)) == appended


def test_a_line_longer_than_the_reader_block_is_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "JOURNAL_BLOCK_BYTES", 4096)
    capture = tmp_path / "capture"
    big = '[2,"1","DataTransfer",{"data":"' + "é" * 20_000 + '"}]'
    with CaptureWriter(capture) as writer:
        for n in range(30):
            writer.append(message_row(n, T0 + n, raw=big if n == 7 else '[2,"1","Heartbeat",{}]'))
    rows = read_capture(capture)
    assert len(rows) == 30 and rows[7]["raw"] == big
    assert writer.torn_lines == 0


# -- crash recovery ------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ocpp_audit.capture.writer import CaptureWriter

    writer = CaptureWriter(Path(sys.argv[1]), rotate_bytes=20_000)
    writer.start()
    n = 0
    while True:
        writer.append({"event": "message", "ts": 1_735_689_600_000_000 + n, "seq": n,
                       "charge_point_id": "CP001", "raw": '[2,"%d","Heartbeat",{}]' % n})
        n += 1
        print(n, flush=True)
    """
)


def test_sigkill_mid_stream_loses_nothing_appended_and_duplicates_nothing(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(capture)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    printed = 0
    deadline = time.monotonic() + timeout(20)
    try:
        assert child.stdout is not None
        for line in child.stdout:
            printed = int(line)
            # Kill mid-stream, but only once a rotated journal has been sealed: that the child's
            # sealing had a part ready by row 3000 depends on the machine's speed.
            if (printed >= 3000 and parts_in(capture)) or time.monotonic() > deadline:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout(10))
        for line in child.stdout:  # counts printed before the kill
            printed = int(line)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert printed >= 3000
    assert list((capture / "journal").glob("*.journal"))  # the dead process's journal is there
    sealed_before = len(parts_in(capture))
    assert sealed_before > 0  # and rotated journals were sealed while it ran

    writer = CaptureWriter(capture)
    recovered = writer.start()
    writer.close()
    assert recovered
    assert not list((capture / "journal").iterdir())
    seqs = [row["seq"] for row in read_capture(capture)]
    # Every append that returned (the child printed after it) is there; at most one more was
    # written before the kill; none twice.
    assert len(seqs) in (printed, printed + 1)
    assert seqs == list(range(len(seqs)))
    # A second start finds nothing left to recover.
    again = CaptureWriter(capture)
    assert again.start() == []
    again.close()
    assert len(read_capture(capture)) == len(seqs)


def write_journal(capture: Path, name: str, data: bytes) -> Path:
    journal_dir = capture / "journal"
    journal_dir.mkdir(parents=True, exist_ok=True)
    path = journal_dir / name
    path.write_bytes(data)
    return path


def test_start_recovers_a_journal_with_a_torn_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture = tmp_path / "capture"
    lines = b"".join(writer_module._journal_line(message_row(n, T0 + n)) for n in range(3))
    torn = writer_module._journal_line(message_row(3, T0 + 3))[:25]
    write_journal(capture, "20250101T000000-dead00000000-1.journal", lines + torn)
    writer = CaptureWriter(capture)
    with caplog.at_level(logging.WARNING):
        recovered = writer.start()
    writer.close()
    assert [part.name for part in recovered] == ["part-20250101T000000-dead00000000-1.parquet"]
    assert writer.torn_lines == 1
    assert "torn last line" in caplog.text
    assert [row["seq"] for row in read_capture(capture)] == [0, 1, 2]
    assert not list((capture / "journal").iterdir())


def test_start_skips_garbage_lines_inside_a_journal(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    good = [writer_module._journal_line(message_row(n, T0 + n)) for n in range(3)]
    data = good[0] + b'{"event":"mess\n' + good[1] + b"\x00\x00\x00\n" + good[2]
    write_journal(capture, "20250101T000000-dead00000000-2.journal", data)
    writer = CaptureWriter(capture)
    writer.start()
    writer.close()
    assert writer.torn_lines == 2
    assert [row["seq"] for row in read_capture(capture)] == [0, 1, 2]


def test_start_leaves_a_live_recorders_journal_alone(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    with CaptureWriter(capture) as live:
        live.append(message_row(0, T0))
        other = CaptureWriter(capture)
        assert other.start() == []  # live's journal is locked
        other.append(message_row(1, T0 + 1))
        other.close()
        assert [row["seq"] for row in read_capture(capture)] == [1]
        assert len(list((capture / "journal").glob("*.journal"))) == 1
        live.append(message_row(2, T0 + 2))
    assert [row["seq"] for row in read_capture(capture)] == [0, 1, 2]


def test_an_externally_locked_journal_is_not_sealed(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    path = write_journal(
        capture,
        "20250101T000000-other0000000-1.journal",
        writer_module._journal_line(message_row(0, T0)),
    )
    with path.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        writer = CaptureWriter(capture)
        assert writer.start() == []
        writer.close()
        assert path.exists()


# -- write errors --------------------------------------------------------------------------------


class DiskFault:
    """Injected into the writer's one write call: fails while ``failing`` (tests run as root, so
    permissions cannot make a write fail). ``partial`` writes half the line first, as a disk that
    fills up mid-write does."""

    def __init__(self, partial: bool = False) -> None:
        self.failing = False
        self.partial = partial
        self.real = writer_module._write_all

    def __call__(self, fd: int, data: bytes) -> None:
        if self.failing:
            if self.partial:
                os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.real(fd, data)


@pytest.mark.parametrize("partial", [False, True])
def test_continue_policy_counts_logs_once_and_writes_a_gap_row(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    partial: bool,
) -> None:
    fault = DiskFault(partial=partial)
    monkeypatch.setattr(writer_module, "_write_all", fault)
    capture = tmp_path / "capture"
    with CaptureWriter(capture, on_write_error="continue") as writer:
        writer.append(message_row(0, T0))
        fault.failing = True
        with caplog.at_level(logging.WARNING, logger=writer_module.__name__):
            for n in range(1, 51):
                writer.append(message_row(n, T0 + n))  # no exception: the frame goes on
            assert writer.unrecorded == 50
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
            fault.failing = False
            writer.append(message_row(51, T0 + 51))
        assert any("writing works again" in r.getMessage() for r in caplog.records)
        writer.append(message_row(52, T0 + 52))
    assert writer.unrecorded == 50
    assert writer.torn_lines == 0
    rows = read_capture(capture)
    assert [row["event"] for row in rows] == ["message", "gap", "message", "message"]
    gap = rows[1]
    assert gap["connection_id"] is None and gap["charge_point_id"] is None
    assert json.loads(gap["detail"]) == {"unrecorded": 50, "first_ts": T0 + 1, "last_ts": T0 + 50}
    assert [row["seq"] for row in rows if row["event"] == "message"] == [0, 51, 52]


def test_close_policy_raises_so_the_engine_closes_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = DiskFault()
    monkeypatch.setattr(writer_module, "_write_all", fault)
    capture = tmp_path / "capture"
    with CaptureWriter(capture, on_write_error="close") as writer:
        writer.append(message_row(0, T0))
        fault.failing = True
        for n in (1, 2):
            with pytest.raises(CaptureWriteError, match="No space left on device"):
                writer.append(message_row(n, T0 + n))
        assert writer.unrecorded == 2
        fault.failing = False
        writer.append(message_row(3, T0 + 3))
    rows = read_capture(capture)
    assert [row["event"] for row in rows] == ["message", "gap", "message"]
    assert json.loads(rows[1]["detail"])["unrecorded"] == 2


def test_a_failing_seal_keeps_the_journal_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = tmp_path / "capture"
    real = writer_module._write_parts

    def broken(*args: object, **kwargs: object) -> list[Path]:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(writer_module, "_write_parts", broken)
    with CaptureWriter(capture) as writer:
        writer.append(message_row(0, T0))
    assert parts_in(capture) == []
    assert len(list((capture / "journal").glob("*.journal"))) == 1
    monkeypatch.setattr(writer_module, "_write_parts", real)
    writer = CaptureWriter(capture)
    assert len(writer.start()) == 1
    writer.close()
    assert [row["seq"] for row in read_capture(capture)] == [0]


def test_a_seal_that_failed_is_retried_at_the_next_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = tmp_path / "capture"
    real = writer_module._write_parts
    disk_full = True

    def flaky(*args: object, **kwargs: object) -> list[Path]:
        if disk_full:
            raise OSError(errno.ENOSPC, "injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "_write_parts", flaky)
    with CaptureWriter(capture) as writer:
        writer.append(message_row(0, T0))
        writer.rotate()
        assert writer.wait_sealed(timeout(5))
        assert parts_in(capture) == []
        disk_full = False
        writer.append(message_row(1, T0 + 1))
        writer.rotate()
        assert writer.wait_sealed(timeout(5))
        assert [row["seq"] for row in read_capture(capture)] == [0, 1]
        assert not list((capture / "journal").glob("*.journal"))[1:]  # only the open one


def test_a_large_payload_is_journalled_once_and_sealed_whole(tmp_path: Path) -> None:
    """Issue 19: a 16 MiB frame was 32 MiB of journal (raw, and payload again). A payload from
    PAYLOAD_SPAN_MIN characters on is journalled as its place in raw; the open journal read live
    and the sealed part both hold it whole, byte for byte, beside small frames kept as before."""
    from ocpp_audit.capture.live import read_open_journals

    capture = tmp_path / "capture"
    data = "Ü" * 300_000 + '"\\u00e9]'  # non-ASCII, an escaped quote and a bracket inside
    big = f'[2 , "1", "DataTransfer", {{"vendorId":"x","data":"{data}"}}  ]'
    payload = big[big.index("{") : big.rindex("}") + 1]
    small = '[2,"2","Heartbeat",{}]'
    writer = CaptureWriter(capture, rotate_seconds=3600)
    writer.start()
    rows = []
    for seq, (raw, body) in enumerate(((big, payload), (small, "{}"))):
        row = {**message_row(seq, T0 + seq, raw), "payload": body, "message_type": 2}
        rows.append(row)
        writer.append(row)
    (journal,) = capture.glob("**/*.journal")
    assert journal.stat().st_size < len(big.encode()) + 2_000  # the payload is not there twice
    live = read_open_journals([capture])
    assert [row["payload"] for row in live.table.to_pylist()] == [payload, "{}"]
    writer.close()
    sealed = read_capture(capture)
    assert [(row["raw"], row["payload"]) for row in sealed] == [(big, payload), (small, "{}")]


def test_a_part_holds_each_chargers_rows_together_in_time_order_delta_encoded(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture"
    with CaptureWriter(capture) as writer:
        recorders = {cp: ConnectionRecorder(writer, cp) for cp in ("CP-B", "CP-A", "CP-C")}
        for n in range(30):  # interleaved, as a fleet's frames arrive
            cp = ("CP-B", "CP-A", "CP-C")[n % 3]
            recorders[cp].message(Direction.CP_TO_CS, f'[2,"{n}","Heartbeat",{{}}]', ts=T0 + n)
            recorders[cp].message(Direction.CS_TO_CP, f'[3,"{n}",{{}}]', ts=T0 + n)
    (part,) = parts_in(capture)
    table = pq.read_table(part, partitioning=None)
    keys = list(zip(table["charge_point_id"].to_pylist(), table["ts"].to_pylist(), strict=True))
    assert keys == sorted(keys) and keys[0][0] == "CP-A" and keys[-1][0] == "CP-C"
    # equal times keep journal order: each CALL before its answer
    assert table["message_type"].to_pylist()[:4] == [2, 3, 2, 3]
    columns = pq.ParquetFile(part).metadata.row_group(0)
    encodings = {
        columns.column(i).path_in_schema: columns.column(i).encodings
        for i in range(columns.num_columns)
    }
    for name in writer_module.DELTA_COLUMNS:
        assert "DELTA_BINARY_PACKED" in encodings[name], (name, encodings[name])
    assert read_capture(capture)[1]["answers_seq"] == 0  # and plain DuckDB reads them
