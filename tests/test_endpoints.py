"""The built-in firmware (HTTP) and diagnostics (FTP) endpoints, with real transfers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import duckdb
import pytest

from ocpp_audit.lab.central_system import CentralSystem
from ocpp_audit.lab.simulator.charger import SimulatedCharger
from ocpp_audit.lab.simulator.transfers import (
    DownloadFailed,
    download_firmware,
    upload_diagnostics,
)
from ocpp_audit.recorder.control import ControlClient
from ocpp_audit.recorder.endpoints import FileEndpoints
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout


async def test_firmware_download_serves_the_given_file(tmp_path: Path) -> None:
    firmware = tmp_path / "charger-fw-2.1.0.bin"
    firmware.write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    async with FileEndpoints(tmp_path / "ep", firmware=firmware) as endpoints:
        assert endpoints.firmware_location.endswith("/firmware/charger-fw-2.1.0.bin")
        async with asyncio.timeout(timeout(10)):
            size = await download_firmware(endpoints.firmware_location)
        assert size == firmware.stat().st_size
        assert [d.size for d in endpoints.downloads] == [size]
        wrong = endpoints.firmware_location.replace("2.1.0", "6.6.6")
        with pytest.raises(DownloadFailed) as error:
            await download_firmware(wrong, timeout=timeout(10))
        assert error.value.status == 404
        assert len(endpoints.downloads) == 1


async def test_diagnostics_upload_lands_in_the_chargers_folder(tmp_path: Path) -> None:
    arrived: list[tuple[str, str, int]] = []
    async with FileEndpoints(tmp_path, on_upload=lambda *a: arrived.append(a)) as endpoints:
        for charge_point_id in ("CP 1/a", "CP2"):
            location = endpoints.diagnostics_location(charge_point_id)
            async with asyncio.timeout(timeout(10)):
                await upload_diagnostics(location, "diag.log", charge_point_id.encode() * 100)
        async with asyncio.timeout(timeout(5)):
            while len(arrived) < 2:
                await asyncio.sleep(0.02)
    text = {"kind": "text", "readable": True, "problem": None}
    assert arrived == [("CP 1/a", "diag.log", 600, text), ("CP2", "diag.log", 300, text)]
    # each charger in its own folder: the same file name does not overwrite another's upload
    assert (tmp_path / "diagnostics" / "CP%201%2Fa" / "diag.log").read_bytes() == b"CP 1/a" * 100
    assert (tmp_path / "diagnostics" / "CP2" / "diag.log").stat().st_size == 300


async def test_simulated_charger_transfers_are_recorded_in_the_capture(tmp_path: Path) -> None:
    """UpdateFirmware and GetDiagnostics pointing at the endpoints: a real download, a real
    upload, and the upload as an `upload` row on the charger's connection in the capture."""
    options = RecordOptions(
        capture_dir=tmp_path,
        standalone=True,
        control_host="127.0.0.1",
        control_port=0,
        control_token="secret",
        endpoints_host="127.0.0.1",
    )
    async with RecorderService(options, CentralSystem()) as service:
        assert service.endpoints is not None and service.central_system is not None
        charger = SimulatedCharger("LAB-7", service.url)
        await charger.start()
        try:
            cs = service.central_system
            client = ControlClient(service.control.url, "secret")  # type: ignore[union-attr]
            status, info = await asyncio.to_thread(client.capture, charge_point_id="LAB-7")
            assert status == 200 and info["capture_dir"] == str(tmp_path)
            location = info["endpoints"]["diagnostics_location"]  # with LAB-7's own password
            mark = cs.mark()
            await cs.call(
                "LAB-7",
                "UpdateFirmware",
                {
                    "location": info["endpoints"]["firmware_location"],
                    "retrieveDate": "2020-01-01T00:00:00Z",
                },
            )
            await cs.wait_for_message(
                "LAB-7",
                "FirmwareStatusNotification",
                after=mark,
                predicate=lambda p: p["status"] == "Downloaded",
                timeout=timeout(10),
            )
            assert len(service.endpoints.downloads) == 1
            mark = cs.mark()
            await cs.call("LAB-7", "GetDiagnostics", {"location": location})
            await cs.wait_for_message(
                "LAB-7",
                "DiagnosticsStatusNotification",
                after=mark,
                predicate=lambda p: p["status"] == "Uploaded",
                timeout=timeout(10),
            )
            status, sealed = await asyncio.to_thread(client.seal)
            assert (status, sealed) == (200, {"sealed": True})
        finally:
            await charger.stop()
        rows = duckdb.sql(
            f"select charge_point_id, connection_id, detail from read_parquet("
            f"'{tmp_path}/frames/**/*.parquet', hive_partitioning = true) where event = 'upload'"
        ).fetchall()
    assert len(rows) == 1
    charge_point_id, connection_id, detail = rows[0]
    assert charge_point_id == "LAB-7" and connection_id is not None
    upload = json.loads(detail)
    assert upload["file_name"].startswith("diagnostics-LAB-7-") and upload["size"] > 0
    uploaded = tmp_path / "diagnostics" / "LAB-7" / upload["file_name"]
    assert uploaded.stat().st_size == upload["size"]
