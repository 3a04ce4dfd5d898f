"""The HTML report opens in headless Chromium: no script errors, charts drawn, evidence links land.

The page is rendered from real captures (the builder's rows, sealed into real Parquet parts) and
loaded from a file by Debian's ``chromium`` with ``--dump-dom`` (the DOM after the page's scripts
ran) and ``--screenshot``. The page records its own script errors (``window.onerror`` and
``console.error``) in ``body[data-errors]`` before anything else runs, so a broken chart shows up in
the dumped DOM. Skipped only when no chromium binary is installed.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocpp_audit.analyser.engine import analyse
from ocpp_audit.analyser.render.html_page import render_html
from ocpp_audit.analyser.report import render
from ocpp_audit.capture.schema import Direction
from ocpp_audit.cli import main
from tests.capture_builder import CaptureBuilder
from tests.conftest import timeout

CHROMIUM = next(
    (
        shutil.which(name)
        for name in ("chromium", "chromium-browser", "google-chrome")
        if shutil.which(name)
    ),
    None,
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on this machine")

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
)


def _chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=timeout(60),
        check=False,
    )


class _Dom(HTMLParser):
    """The dumped DOM's elements: (tag, attributes) in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def with_attr(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _tag, attrs in self.elements if name in attrs]

    def ids(self) -> set[str]:
        return {attrs["id"] for _tag, attrs in self.elements if attrs.get("id")}

    def body(self) -> dict[str, str | None]:
        return next(attrs for tag, attrs in self.elements if tag == "body")


def _open(page: Path, tmp_path: Path) -> _Dom:
    result = _chromium(page, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = _Dom()
    dom.feed(result.stdout)
    body = dom.body()
    errors = re.search(r'<pre id="script-errors">(.*?)</pre>', result.stdout, re.S)
    assert body.get("data-rendered") == "ok", result.stdout[-2000:]
    assert body.get("data-errors") == "0", errors.group(1) if errors else "script errors"
    return dom


def _day(capture: CaptureBuilder, charge_point_id: str = "CP1", *, sparse: bool = False) -> None:
    """Boot, heartbeats, a charging session with meter values, a drop and a late replay."""
    cp = capture.charger(charge_point_id)
    cp.connect().boot()
    cp.status(0, "Available")
    cp.status(1, "Available")
    cp.heartbeats(3, every=60)
    cp.status(1, "Preparing")
    cp.authorize("TAG1")
    transaction_id = cp.start_transaction(1, "TAG1")
    cp.status(1, "Charging")
    for _ in range(6):
        cp.wait(45 if sparse else 10)
        cp.meter_values(transaction_id)
    cp.disconnect()
    cp.wait(300)
    cp.connect().boot()
    cp.stop_transaction(transaction_id, seconds_ago=200)
    cp.status(1, "Available")
    cp.wait(60)
    cp.heartbeat()


def _assert_evidence_links_land(dom: _Dom) -> None:
    ids = dom.ids()
    links = dom.with_attr("data-frame")
    assert links, "no evidence links"
    for link in links:
        assert link["href"] == f"#{link['data-frame']}"
        assert link["data-frame"] in ids, f"evidence link {link['href']} lands nowhere"


@pytest.fixture
def sample_capture(tmp_path: Path) -> Path:
    capture = CaptureBuilder()
    _day(capture, "CP1", sparse=True)
    _day(capture, "CP2")
    capture.write(tmp_path / "capture")
    return tmp_path / "capture"


def test_render_without_capture_holds_the_verdicts(sample_capture: Path) -> None:
    report = analyse([sample_capture])
    report.source = None
    page = render_html(report)
    assert page.startswith("<!doctype html>")
    assert "/*UPLOT_JS*/" not in page and "/*REPORT_DATA*/" not in page
    assert "CP1" in page


def test_page_is_self_contained(sample_capture: Path) -> None:
    page = render(analyse([sample_capture]), "html")
    # No network: no external scripts, styles, images or fonts.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "http://" not in page.split("/*", 1)[0]
    data = json.loads(
        re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
    charger = data["chargers"][0]
    assert charger["charge_point_id"] == "CP1"
    assert charger["meter"] and charger["meter"][0]["gaps"], "sparse samples: gaps over 30 s"
    assert charger["heartbeats"]["beats"]
    assert charger["gaps"] and any(m[5] for m in charger["gaps"][0]["delivered"]), "late replay"


@needs_chromium
def test_report_opens_in_chromium(sample_capture: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["analyse", str(sample_capture), "--format", "html", "--output", str(page)]
    )
    assert result.exit_code in (0, 1), result.output
    dom = _open(page, tmp_path)

    sections = [a for _tag, a in dom.elements if a.get("data-charger")]
    assert [s["data-charger"] for s in sections] == ["CP1", "CP2"]

    charts = dom.with_attr("data-chart")
    titles = [c["data-chart"] for c in charts]
    assert titles.count("Power (W) and energy (Wh)") == 2
    assert titles.count("Current (A) and voltage (V) per phase") == 2
    assert titles.count("Heartbeat intervals (log scale)") == 2
    assert all(int(c["data-points"] or 0) > 0 for c in charts), charts
    assert sum(1 for tag, _a in dom.elements if tag == "canvas") >= len(charts)
    timelines = [a for a in dom.with_attr("data-items") if "timeline" in (a.get("class") or "")]
    assert len(timelines) == 2 and all(int(t["data-items"] or 0) > 5 for t in timelines)

    _assert_evidence_links_land(dom)
    ids = dom.ids()
    assert any(re.fullmatch(r"f1-\d+", i) for i in ids), "second charger's frame rows"
    # the late StopTransaction is highlighted in the offline-gap list
    assert any("late" in (a.get("class") or "").split() for tag, a in dom.elements if tag == "tr")

    shot = tmp_path / "report.png"
    result = _chromium(page, tmp_path, "--window-size=1400,2400", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.stat().st_size > 10_000
    with contextlib.suppress(OSError):  # for people to look at
        shutil.copy(shot, "/tmp/report-screenshot.png")


@needs_chromium
def test_empty_capture_renders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    page = tmp_path / "report.html"
    page.write_text(render(analyse([tmp_path / "empty"]), "html"), encoding="utf-8")
    dom = _open(page, tmp_path)
    assert "no-chargers" in dom.ids()


@needs_chromium
def test_malformed_frame_renders(tmp_path: Path) -> None:
    capture = CaptureBuilder()
    cp = capture.charger("CP-BAD")
    cp.connect().boot()
    cp.send(Direction.CP_TO_CS, '[2,"m1","StatusNotification",{"connectorId":1,}]</script><b>')
    cp.wait(60)
    cp.heartbeat()
    capture.write(tmp_path / "capture")
    page = tmp_path / "report.html"
    page.write_text(render(analyse([tmp_path / "capture"]), "html"), encoding="utf-8")
    dom = _open(page, tmp_path)
    rows = [a for tag, a in dom.elements if tag == "tr" and "malformed" in (a.get("class") or "")]
    assert len(rows) == 1
    assert not [a for tag, a in dom.elements if tag == "b"], "payload text must not become markup"


SIMULATOR_CAPTURE = Path(__file__).resolve().parent.parent / "captures" / "lab-faults"


@needs_chromium
@pytest.mark.skipif(
    not SIMULATOR_CAPTURE.is_dir(), reason="sample capture captures/lab-faults missing"
)
def test_simulator_capture_opens(tmp_path: Path) -> None:
    """The sample capture made by the real simulator through the relay (six faulty chargers)."""
    page = tmp_path / "report.html"
    page.write_text(render(analyse([SIMULATOR_CAPTURE]), "html"), encoding="utf-8")
    dom = _open(page, tmp_path)
    chargers = [a["data-charger"] for _tag, a in dom.elements if a.get("data-charger")]
    assert "LAB-DROPSMV" in chargers and "LAB-MALFORMED" in chargers
    charts = dom.with_attr("data-chart")
    assert len(charts) >= 2 * len(chargers)
    assert all(int(c["data-points"] or 0) > 0 for c in charts)
    _assert_evidence_links_land(dom)
