"""What a diagnostics upload holds (recorder/diagnostics_file.describe), on real files."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

from ocpp_audit.recorder.diagnostics_file import describe


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_readable_reports(tmp_path: Path) -> None:
    log = b"2026-12-05T10:00:00Z boot ok\n" * 50
    assert describe(write(tmp_path, "a.log", log)) == {
        "kind": "text",
        "readable": True,
        "problem": None,
    }
    assert describe(write(tmp_path, "a.log.gz", gzip.compress(log))) == {
        "kind": "gzip",
        "readable": True,
        "uncompressed_size": len(log),
        "problem": None,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("boot.log")
        info.size = len(log)
        archive.addfile(info, io.BytesIO(log))
    described = describe(write(tmp_path, "d.tar.gz", buffer.getvalue()))
    assert described["kind"] == "tar.gz" and described["readable"] and described["files"] == 1
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("boot.log", log)
    assert describe(write(tmp_path, "d.zip", zipped.getvalue()))["readable"] is True


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    truncated = gzip.compress(b"x" * 1000)[:10]
    assert describe(write(tmp_path, "t.gz", truncated)) == {
        "kind": "gzip",
        "readable": False,
        "uncompressed_size": 0,
        "problem": "truncated",
    }
    assert describe(write(tmp_path, "e.log", b"")) == {
        "kind": "empty",
        "readable": False,
        "problem": "empty file",
    }
    assert describe(write(tmp_path, "r.bin", bytes(range(256)) * 4))["readable"] is False
    bad_zip = write(tmp_path, "b.zip", b"PK\x03\x04" + b"\x00" * 40)
    assert describe(bad_zip)["readable"] is False
    assert describe(tmp_path / "missing.log")["readable"] is False  # never raises


def test_a_compression_bomb_is_read_only_up_to_the_bound(tmp_path: Path) -> None:
    bomb = write(tmp_path, "bomb.gz", gzip.compress(b"\0" * (8 * 1024 * 1024)))
    described = describe(bomb, max_output=1024 * 1024)
    assert described["readable"] is True
    assert 1024 * 1024 <= described["uncompressed_size"] < 3 * 1024 * 1024
    assert described["problem"] == f"not read past {1024 * 1024} bytes"
