"""The diagnostics FTP endpoint under a hostile charger (issue 19): logins, limits, paths, modes.

Real aioftp clients against the endpoint on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aioftp
import pytest

from ocpp_audit.recorder.endpoints import FileEndpoints, UploadLimits, charger_folder_name
from tests.conftest import timeout

Arrived = list[tuple[str, str, int, dict[str, Any]]]


def endpoints(tmp_path: Path, arrived: Arrived, **kwargs: Any) -> FileEndpoints:
    return FileEndpoints(
        tmp_path,
        on_upload=lambda *a: arrived.append(a),
        accept_login=lambda cp: cp in {"CP1", "CP2"},
        **kwargs,
    )


async def upload(ep: FileEndpoints, login: str, password: str, name: str, data: bytes) -> None:
    async with (
        asyncio.timeout(timeout(10)),
        aioftp.Client.context("127.0.0.1", ep.ftp_port, login, password) as client,
        client.upload_stream(name) as stream,
    ):
        for start in range(0, len(data), 64 * 1024):
            await stream.write(data[start : start + 64 * 1024])


async def wait_for(arrived: Arrived, count: int) -> None:
    async with asyncio.timeout(timeout(5)):
        while len(arrived) < count:
            await asyncio.sleep(0.02)


async def test_only_connected_chargers_with_their_own_password_log_in(tmp_path: Path) -> None:
    arrived: Arrived = []
    async with endpoints(tmp_path, arrived) as ep:
        assert ep.ftp_password("CP1") != ep.ftp_password("CP2")
        assert ep.ftp_password("CP1") in ep.diagnostics_location("CP1")
        # CP2's password does not log in as CP1, a wrong one does not, an unknown id does not
        for login, password in (
            ("CP1", ep.ftp_password("CP2")),
            ("CP1", "ocpp-audit"),
            ("CP9", ep.ftp_password("CP9")),
        ):
            with pytest.raises(aioftp.StatusCodeError):
                await upload(ep, login, password, "x.log", b"x")
        await upload(ep, "CP1", ep.ftp_password("CP1"), "d.log", b"boot ok\n")
        await wait_for(arrived, 1)
    assert [a[:3] for a in arrived] == [("CP1", "d.log", 8)]
    assert not (tmp_path / "diagnostics" / "CP9").exists()  # no folder for a refused login
    folder = tmp_path / "diagnostics" / "CP1"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "d.log").stat().st_mode) == 0o600


async def test_an_upload_over_a_limit_is_cut_removed_and_reported(tmp_path: Path) -> None:
    arrived: Arrived = []
    limits = UploadLimits(per_upload_bytes=100_000, per_charger_bytes=150_000, total_bytes=10**9)
    async with endpoints(tmp_path, arrived, upload_limits=limits) as ep:
        password = ep.ftp_password("CP1")
        with pytest.raises((aioftp.StatusCodeError, ConnectionError, OSError)):
            await upload(ep, "CP1", password, "big.log", b"a" * 1_000_000)
        await wait_for(arrived, 1)
        await upload(ep, "CP1", password, "ok.log", b"b" * 90_000)
        await wait_for(arrived, 2)
        with pytest.raises((aioftp.StatusCodeError, ConnectionError, OSError)):
            await upload(ep, "CP1", password, "more.log", b"c" * 90_000)  # 180,000 > 150,000
        await wait_for(arrived, 3)
    big, ok, more = arrived
    assert big[:2] == ("CP1", "big.log") and big[3]["kind"] == "cut"
    assert big[3]["problem"].endswith("over the per-upload limit of 100000 bytes")
    assert ok[:3] == ("CP1", "ok.log", 90_000) and ok[3]["readable"] is True
    assert more[3]["problem"].endswith("over the per-charger limit of 150000 bytes")
    folder = tmp_path / "diagnostics" / "CP1"
    assert sorted(p.name for p in folder.iterdir()) == ["ok.log"]  # the cut ones are gone


async def test_a_charger_may_only_store_files_inside_its_folder(tmp_path: Path) -> None:
    arrived: Arrived = []
    (tmp_path / "diagnostics" / "CP2").mkdir(parents=True)
    (tmp_path / "diagnostics" / "CP2" / "theirs.log").write_bytes(b"CP2's report")
    async with endpoints(tmp_path, arrived) as ep:
        password = ep.ftp_password("CP1")
        async with aioftp.Client.context("127.0.0.1", ep.ftp_port, "CP1", password) as client:
            for command in (
                "DELE ../CP2/theirs.log",
                "RNFR ../CP2/theirs.log",
                "MKD sub",
                "RMD /",
                "DELE x",
            ):
                with pytest.raises(aioftp.StatusCodeError):
                    await client.command(command, "2xx")
            with pytest.raises(aioftp.StatusCodeError):
                await client.list("/")  # no listing
            for name in ("../../escape.log", "/abs.log", "%2e%2e%2fenc.log", "a/../../../up.log"):
                with contextlib.suppress(aioftp.StatusCodeError, ConnectionError, OSError):
                    async with client.upload_stream(name) as stream:
                        await stream.write(b"data")
    assert (tmp_path / "diagnostics" / "CP2" / "theirs.log").read_bytes() == b"CP2's report"
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(
        path.parts[:2] in (("diagnostics", "CP1"), ("diagnostics", "CP2")) for path in written
    )
    assert not (tmp_path.parent / "escape.log").exists()


async def test_refused_logins_grow_nothing(tmp_path: Path) -> None:
    arrived: Arrived = []
    async with endpoints(tmp_path, arrived) as ep:
        async with aioftp.Client.context(
            "127.0.0.1", ep.ftp_port, "CP1", ep.ftp_password("CP1")
        ) as client:
            for n in range(300):
                with pytest.raises(aioftp.StatusCodeError):
                    await client.command(f"USER evil-{n}", "3xx")
                await client.command("USER CP1", "3xx")
        server = ep._ftp
        assert server is not None
        assert len(server.throttle_per_user) <= 1  # one User object for CP1, none for the refused


async def test_hostile_charge_point_ids_each_get_a_folder_of_their_own(tmp_path: Path) -> None:
    """Ids that differ only in what a naive cleaner would replace (`CP/1`, `CP_1`), dot-dot, NUL
    and a 10 kB id: each charger's files land in its own folder under diagnostics/, never in
    another's, with a name the file system takes (at most 120 characters)."""
    hostile = ["CP_1", "CP/1", "CP?1", "..", ".", "CP\x001", "%2F", "Ü" * 10, "x" * 10_000]
    arrived: Arrived = []
    async with FileEndpoints(
        tmp_path, on_upload=lambda *a: arrived.append(a), accept_login=lambda cp: cp in hostile
    ) as ep:
        for number, charge_point_id in enumerate(hostile):
            login = quote(charge_point_id, safe="")  # as the diagnostics URL gives it
            await upload(ep, login, ep.ftp_password(charge_point_id), "d.log", f"{number}".encode())
        await wait_for(arrived, len(hostile))
    assert sorted(a[0] for a in arrived) == sorted(hostile)
    root = tmp_path / "diagnostics"
    folders = {folder.name: folder for folder in root.iterdir()}
    assert len(folders) == len(hostile)  # no two ids share a folder
    for number, charge_point_id in enumerate(hostile):
        folder = root / charger_folder_name(charge_point_id)
        assert folder.parent == root and len(folder.name) <= 120
        assert (folder / "d.log").read_bytes() == f"{number}".encode()
    assert not (tmp_path / "d.log").exists() and not (tmp_path.parent / "d.log").exists()
