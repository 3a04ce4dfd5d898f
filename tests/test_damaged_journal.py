"""A damaged journal left by a crash never stops the recorder from starting (issue 19): recovery
seals what it can read, sets the file aside as *.damaged with a count, and starts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pytest

from ocpp_audit.capture import writer as writer_module
from ocpp_audit.capture.writer import CaptureWriter
from tests.test_writer import T0, message_row, read_capture


def journal(capture: Path, name: str, lines: list[bytes]) -> Path:
    folder = capture / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"".join(lines))
    return path


def good(n: int) -> bytes:
    return writer_module._journal_line(message_row(n, T0 + n))


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        ("a timestamp out of range", b'{"event":"message","ts":100000000000000000000,"seq":9}\n'),
        (
            "bad base64",
            json.dumps(
                {"event": "message", "ts": T0, "seq": 9, "raw_binary": "!!not base64!!"}
            ).encode()
            + b"\n",
        ),
        ("nesting too deep", b'{"event":"message","ts":1,"detail":' + b"[" * 100_000 + b"\n"),
    ],
)
def test_recovery_seals_what_it_can_and_starts(
    tmp_path: Path, damage: str, line: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    capture = tmp_path / "capture"
    path = journal(
        capture, "20250101T000000-dead00000000-1.journal", [good(0), good(1), line, good(2)]
    )
    writer = CaptureWriter(capture)
    with caplog.at_level(logging.WARNING):
        writer.start()  # before: an exception, and the recorder did not start
    writer.append(message_row(3, T0 + 3))  # and it records
    writer.close()
    assert [row["seq"] for row in read_capture(capture)] == [0, 1, 2, 3], damage
    assert writer.torn_lines == 1
    leftover = sorted(p.name for p in (capture / "journal").iterdir())
    assert leftover in ([], [path.name + writer_module.DAMAGED_SUFFIX])


def test_a_journal_arrow_cannot_take_whole_is_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Over 2 GiB, Arrow's JSON reader gives up (ArrowCapacityError); simulated here."""

    def too_big(data: bytes, source: Path) -> tuple[pa.Table, int]:
        raise pa.ArrowCapacityError("array cannot contain more than 2147483646 bytes")

    monkeypatch.setattr(writer_module, "_parse_journal", too_big)
    capture = tmp_path / "capture"
    path = journal(capture, "20250101T000000-dead00000000-2.journal", [good(n) for n in range(5)])
    writer = CaptureWriter(capture)
    with caplog.at_level(logging.WARNING):
        recovered = writer.start()
    writer.close()
    assert [p.name for p in recovered] == ["part-20250101T000000-dead00000000-2-salvaged-1.parquet"]
    assert [row["seq"] for row in read_capture(capture)] == [0, 1, 2, 3, 4]
    assert (capture / "journal" / (path.name + writer_module.DAMAGED_SUFFIX)).exists()
    assert "salvaged" in caplog.text and "0 line(s) lost" in caplog.text
