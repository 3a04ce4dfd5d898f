"""The recorder's run-time tuning: garbage collection policy and the event loop of ``record``."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from websockets.asyncio.client import connect

from ocpp_audit.lab.central_system import CentralSystem
from ocpp_audit.recorder import service as service_module
from ocpp_audit.recorder.options import RecordOptions
from ocpp_audit.recorder.service import RecorderService
from tests.conftest import timeout
from tests.test_record_cli import Recorder


async def test_tune_gc_freezes_long_lived_objects_and_restores_the_collector_on_stop(tmp_path):
    threshold = gc.get_threshold()
    options = RecordOptions(tmp_path / "capture", standalone=True)
    async with RecorderService(options, CentralSystem(), tune_gc=True) as service:
        assert gc.get_threshold()[2] == service_module.GC_THRESHOLD_GEN2
        assert gc.get_freeze_count() > 0  # start-up's objects are out of every collection
        async with asyncio.timeout(timeout(5)), connect(f"{service.url}/CP1") as websocket:
            await websocket.send('[2,"1","Heartbeat",{}]')
            assert json.loads(await websocket.recv())[0] == 3
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0  # frozen garbage is collectable again


async def test_gc_maintenance_freezes_periodically_and_runs_a_full_collection(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(service_module.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(service_module.gc, "unfreeze", lambda: calls.append("unfreeze"))
    monkeypatch.setattr(
        service_module.gc, "collect", lambda *generation: calls.append("collect") or 0
    )
    task = asyncio.create_task(service_module.gc_maintenance(0.01, 0.0))
    try:
        async with asyncio.timeout(timeout(5)):
            while calls.count("freeze") < 2:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    # full_interval_s=0: every round unfreezes, collects everything, then freezes the survivors
    assert calls[:3] == ["unfreeze", "collect", "freeze"]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_record_runs_on_the_chosen_event_loop(tmp_path, loop):
    recorder = await Recorder.start(tmp_path / "capture", "--standalone", "--loop", loop)
    try:
        async with asyncio.timeout(timeout(10)), connect(f"{recorder.url}/CP1") as websocket:
            await websocket.send('[2,"1","Heartbeat",{}]')
            assert json.loads(await websocket.recv())[0] == 3
    finally:
        status, stderr = await recorder.stop()
    assert status == 0, stderr
