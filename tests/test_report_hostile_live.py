"""Hostile charger strings through the live recorder into every report format (issue 19).

tests/test_report_hostile.py builds its captures directly; here each example goes over a real
WebSocket on 127.0.0.1 through the recorder (relay engine, the built-in central system as the
backend): the charge point id in the URL, vendor strings in a BootNotification (the JSON text as
Python writes it, so a lone surrogate travels as ``"\\ud800"``), a StatusNotification's info, an
idTag, DataTransfer data and a CALLERROR's description. The capture must hold every frame exactly as
sent; the analysis must judge the hostile charger and the plain one beside it; every format must
hold together (the same checks as the capture-built test).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from ocpp_audit.analyser.engine import analyse
from ocpp_audit.analyser.render import FORMATS, render
from ocpp_audit.capture.connection import charge_point_id_from_path
from tests.conftest import timeout
from tests.engines import read_capture
from tests.test_report_hostile import CHECKS, HOSTILE_PIECES

pytestmark = pytest.mark.timeout(300)

# The capture-built test's pieces, and a lone surrogate (valid for Python's JSON parser, not for
# DuckDB's: the frame must become malformed for that charger only).
wire_text = st.lists(
    st.one_of(
        st.sampled_from([*HOSTILE_PIECES, "\ud800", "\udfff"]),
        st.text(st.characters(codec="utf-8"), max_size=12),
    ),
    min_size=1,
    max_size=4,
).map("".join)
# A charge point id travels in the URL path, percent-encoded: UTF-8 text, at least one character
# that is not a separator the path would lose.
charger_id = wire_text.map(lambda text: text.encode("utf-8", "replace").decode("utf-8")).filter(
    lambda text: text.strip("/") != ""
)


def frames_of(vendor: str, id_tag: str, text: str) -> list[str]:
    """The charger's frames, as Python's json.dumps writes them (ASCII, surrogates escaped)."""
    return [
        json.dumps(
            [
                2,
                "b1",
                "BootNotification",
                {"chargePointVendor": vendor, "chargePointModel": text, "firmwareVersion": vendor},
            ]
        ),
        json.dumps(
            [
                2,
                "s1",
                "StatusNotification",
                {"connectorId": 1, "status": "Faulted", "errorCode": "OtherError", "info": text},
            ]
        ),
        json.dumps([2, "a1", "Authorize", {"idTag": id_tag}]),
        json.dumps(
            [2, "d1", "DataTransfer", {"vendorId": vendor, "messageId": text, "data": text}]
        ),
        json.dumps([4, "no-such-call", "InternalError", text, {}]),
        json.dumps([2, "h1", "Heartbeat", {}]),
    ]


async def record(capture_dir: Path, charge_point_ids: list[str], frames: list[str]) -> None:
    from ocpp_audit.lab.central_system import CentralSystem, CentralSystemConfig
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService

    options = RecordOptions(capture_dir, standalone=True)
    async with RecorderService(options, CentralSystem(CentralSystemConfig())) as service:
        port = service.engine.port  # type: ignore[union-attr]
        for charge_point_id in charge_point_ids:
            url = f"ws://127.0.0.1:{port}/ocpp/{quote(charge_point_id, safe='')}"
            async with connect(url, subprotocols=["ocpp1.6"], open_timeout=timeout(10)) as ws:
                for frame in frames:
                    await ws.send(frame)
                    if not frame.startswith("[4"):
                        async with asyncio.timeout(timeout(10)):
                            await ws.recv()


@given(cp_id=charger_id, vendor=wire_text, id_tag=wire_text, text=wire_text)
# The attacks of the issue, always tried: a screen-clearing, clipboard-writing id; a lone surrogate
# vendor; Markdown and HTML injection; characters XML 1.0 forbids.
@example(
    cp_id="\x1b[2J\x1b[H<img src=x onerror=alert(1)>|",
    vendor="\ud800",
    id_tag="\x1b]52;c;b3duZWQ=\x07",
    text="\n## Injected heading\n| 99 | Forged | row | PASS |\x01\x0b",
)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_hostile_strings_through_the_recorder_in_every_format(
    cp_id: str, vendor: str, id_tag: str, text: str
) -> None:
    recorded_id = charge_point_id_from_path("/ocpp/" + quote(cp_id, safe=""))
    assert recorded_id == cp_id
    frames = frames_of(vendor, id_tag, text)
    with tempfile.TemporaryDirectory() as work:
        capture_dir = Path(work) / "capture"
        chargers = sorted({"CP-plain", cp_id})
        asyncio.run(record(capture_dir, chargers, frames))
        # The capture holds every frame each charger sent, byte for byte, under its own id.
        rows = read_capture(capture_dir)
        for charge_point_id in chargers:
            sent = [
                row["raw"]
                for row in rows
                if row["charge_point_id"] == charge_point_id
                and row["event"] == "message"
                and row["direction"] == "cp_to_cs"
            ]
            assert sent == frames
        report = analyse([capture_dir])
        assert [c.charge_point_id for c in report.chargers] == chargers
        # Both chargers are judged: the hostile one's strings never stop the analysis. A lone
        # surrogate makes its frames malformed (RFC 8259 8.2), a finding, not a failed analysis.
        lone_surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in vendor + id_tag + text)
        for charger in report.chargers:
            verdicts = {result.rule.id: result.verdict for result in charger.results}
            assert verdicts
            assert (verdicts["protocol-malformed"] == "FAIL") == lone_surrogate, verdicts
        for fmt in FORMATS:
            shown = render(report, fmt)
            if fmt in CHECKS:
                CHECKS[fmt](report, shown)
