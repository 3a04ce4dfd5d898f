"""Captures in object storage (issue 18), against a local S3-compatible server (moto's, started here
on 127.0.0.1): sealed parts land in the bucket, `analyse s3://...` judges them, an unreachable store
keeps the parts on disk and retries."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect

from ocpp_audit.cli import main
from ocpp_audit.lab.central_system import CentralSystem
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout
from tests.engines import recv

moto_server = pytest.importorskip("moto.server")

BUCKET = "captures"  # moto keeps buckets per process (across servers): prefixes per test


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("OCPP_AUDIT_CACHE", str(tmp_path / "cache"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_s3(port: int = 0) -> tuple[Any, int]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    bucket_maker = pafs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{bound}", scheme="http", allow_bucket_creation=True
    )
    bucket_maker.create_dir(BUCKET)
    return server, bound


@pytest.fixture
def s3() -> Iterator[int]:
    server, port = start_s3()
    yield port
    server.stop()


def uri(port: int, prefix: str = "site-a") -> str:
    return f"s3://{BUCKET}/{prefix}?endpoint_override=127.0.0.1:{port}&scheme=http"


def stored_parts(port: int, prefix: str = "site-a") -> list[pafs.FileInfo]:
    store = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http")
    selector = pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True)
    return [i for i in store.get_file_info(selector) if i.path.endswith(".parquet")]


async def charger_session(service: RecorderService, charge_point_id: str) -> None:
    async with connect(f"{service.url}/{charge_point_id}", subprotocols=["ocpp1.6"]) as charger:
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        await charger.send(json.dumps([2, "b1", "BootNotification", boot]))
        await recv(charger)


async def wait_for(condition: Any, seconds: float) -> None:
    async with asyncio.timeout(timeout(seconds)):
        while not condition():
            await asyncio.sleep(0.1)


async def test_parts_land_in_the_bucket_and_analyse_judges_them(s3: int, tmp_path: Path) -> None:
    journal = tmp_path / "journal-dir"
    options = RecordOptions(
        capture_dir=journal, capture_url=uri(s3), standalone=True,
        metrics_host="127.0.0.1", metrics_port=0,
    )  # fmt: skip
    async with RecorderService(options, CentralSystem(None)) as service:
        await charger_session(service, "CP-S3")
        await service.seal()
        await wait_for(lambda: service.uploader is not None and service.uploader.uploaded, 20)
        assert service.metrics is not None
        text = service.metrics.exposition().decode()
    assert "ocpp_audit_parts_uploaded_total 1.0" in text  # the sealed part, at scrape time
    assert "ocpp_audit_parts_pending_upload 0.0" in text
    # The part sealed above, and one sealed at stop when the connection's close row came after.
    parts = stored_parts(s3)
    assert len(parts) in (1, 2)
    assert all(part.path.startswith(f"{BUCKET}/site-a/frames/date=") for part in parts)
    # Uploaded, then removed locally; the journal stays local.
    assert not list((journal / "frames").rglob("*.parquet"))
    assert (journal / "journal").is_dir()

    result = CliRunner().invoke(main, ["analyse", uri(s3), "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    assert [c["charge_point_id"] for c in document["chargers"]] == ["CP-S3"]
    boot = next(f for f in document["chargers"][0]["functions"] if f["function"] == 1)
    assert boot["findings"][0]["evidence"][0]["unique_id"] == "b1"
    assert f"s3://{BUCKET}/site-a: {len(parts)} part(s), {len(parts)} fetched now into " in (
        result.stderr
    )
    assert "endpoint_override" not in result.stderr
    # A second read fetches nothing new; query reads the same way.
    again = CliRunner().invoke(main, ["query", uri(s3), "select count(*) from messages"])
    assert again.exit_code == 0, again.output
    assert f"{len(parts)} part(s), 0 fetched now" in again.stderr
    assert again.stdout.splitlines()[2].strip() == "2"  # the BootNotification and its answer


async def test_an_unreachable_store_keeps_the_parts_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocpp_audit.capture import remote

    monkeypatch.setattr(remote, "RETRY_MAX_S", 0.5)  # retry soon once the store is back
    port = free_port()  # nothing listens there yet
    journal = tmp_path / "journal-dir"
    # moto keeps its buckets per process, across servers: a prefix of this test's own.
    options = RecordOptions(capture_dir=journal, capture_url=uri(port, "site-b"), standalone=True)
    server = None
    try:
        async with RecorderService(options, CentralSystem(None)) as service:
            uploader = service.uploader
            assert uploader is not None
            await charger_session(service, "CP-DOWN")
            await service.seal()
            await wait_for(lambda: uploader.failures >= 1, 30)
            # Kept on local disk while the store is away, and the recorder goes on.
            assert uploader.pending == 1
            assert len(list((journal / "frames").rglob("*.parquet"))) == 1
            server, _ = start_s3(port)  # the store comes back
            await wait_for(lambda: uploader.pending == 0, 30)
        # The part kept while the store was away (and one sealed at stop, if the close row came
        # after the seal): every one uploaded.
        assert uploader.uploaded == len(stored_parts(port, "site-b")) >= 1
        assert not list((journal / "frames").rglob("*.parquet"))
    finally:
        if server is not None:
            server.stop()


def test_record_names_a_store_it_cannot_reach(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["record", "--standalone", "--listen", "127.0.0.1:0", "--capture", uri(free_port()),
         "--journal-dir", str(tmp_path / "j")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"s3://{BUCKET}/site-a: cannot list the capture" in result.stderr
    missing = CliRunner().invoke(
        main, ["record", "--standalone", "--capture", "s3://b/p", "--listen", "127.0.0.1:0"]
    )
    assert missing.exit_code == 2 and "needs --journal-dir" in missing.stderr
