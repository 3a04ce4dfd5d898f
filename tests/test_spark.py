"""``analyse --engine spark`` gives exactly the single-machine report (issue 16).

Spark local[2] (a real JVM, PySpark's applyInArrow, an in-process DuckDB per charger bucket) against
the default engine on the same captures: the sample captures, a capture mixing OCPP 1.6 and 2.0.1
chargers, and a synthetic fleet; with --param, --select, --charger and --since; in every output format.
Skipped, saying why, where PySpark or Java is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocpp_audit.cli import main
from ocpp_audit.lab.simulator.synthetic import generate_fleet_capture
from tests.capture_builder import CaptureBuilder

ROOT = Path(__file__).parent.parent

if not os.environ.get("OCPP_AUDIT_REQUIRE_SPARK"):  # CI sets it: there, a missing part fails
    pytest.importorskip("pyspark", reason="PySpark is an extra: pip install 'ocpp-audit[spark]'")
    pytest.importorskip("pandas", reason="PySpark's applyInArrow needs pandas (the spark extra)")
    if shutil.which("java") is None:
        pytest.skip(
            "Spark needs Java 17 (Debian: openjdk-17-jre-headless)", allow_module_level=True
        )

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    """One local[2] session for the module: the JVM starts once."""
    from ocpp_audit.analyser.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


def analyse(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["analyse", *map(str, args)])
    return result.exit_code, result.stdout


def same_report(capture: Path | list[Path], tmp_path: Path, *options: str) -> dict:
    """The JSON report of both engines, which must be equal but for the time taken; returns it."""
    captures = capture if isinstance(capture, list) else [capture]
    reports = []
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.json"
        extra = ("--engine", "spark", "--spark-master", "local[2]") if engine == "spark" else ()
        status, _ = analyse(*captures, *options, *extra, "-f", "json", "-o", out)
        assert status in (0, 1), (engine, status)
        document = json.loads(out.read_text())
        document.pop("elapsed_s", None)
        reports.append((status, document))
    assert reports[0] == reports[1]
    return reports[0][1]


def mixed_versions(folder: Path) -> Path:
    """A 1.6 charger and a 2.0.1 station, with a fault each, in one capture."""
    capture = CaptureBuilder()
    old = capture.charger("CP-16").connect()
    old.boot()
    old.heartbeats(3, every=60)
    transaction = old.start_transaction()
    old.wait(40).stop_transaction(transaction)
    new = capture.charger("CS-201").connect(version="2.0.1")
    new.boot201()
    new.status201(1, 1, "Occupied")
    new.wait(5).disconnect().wait(30).connect()
    new.boot201()
    capture.write(folder)
    return folder


def test_the_sample_captures_judged_on_spark_as_on_one_machine(spark, tmp_path: Path) -> None:
    # Both sample captures at once; every other format renders the same report object.
    samples = [ROOT / "captures" / "lab-faults", ROOT / "captures" / "lab-good"]
    report = same_report(samples, tmp_path)
    assert len(report["chargers"]) >= 6
    assert {r["verdict"] for c in report["chargers"] for r in c["functions"]} >= {"PASS", "FAIL"}


def test_versions_options_and_a_fleet_on_spark_as_on_one_machine(spark, tmp_path: Path) -> None:
    mixed = same_report(mixed_versions(tmp_path / "mixed"), tmp_path)
    judged_in_201_terms = {
        c["charge_point_id"]: all(r["rule"].endswith("-v201") for r in c["functions"])
        for c in mixed["chargers"]
    }
    assert judged_in_201_terms == {"CP-16": False, "CS-201": True}

    fleet = tmp_path / "fleet"
    stats = generate_fleet_capture(fleet, chargers=24, days=1)
    report = same_report(fleet, tmp_path)
    assert len(report["chargers"]) == 24 and stats.frames > 24 * 1000
    verdicts = {r["verdict"] for c in report["chargers"] for r in c["functions"]}
    assert "PASS" in verdicts

    # --param reaches the views and the rules in every task; --select, --charger and --since too
    picked = same_report(
        fleet,
        tmp_path,
        "--param",
        "max_gap_s=10",
        "--select",
        "meter-values",
        "--select",
        "heartbeat",
        "--charger",
        "SYN00003",
        "--charger",
        "SYN00017",
        "--since",
        "2025-01-01T06:00:00Z",
    )
    assert [c["charge_point_id"] for c in picked["chargers"]] == ["SYN00003", "SYN00017"]
    assert {r["rule"] for c in picked["chargers"] for r in c["functions"]} == {
        "meter-values",
        "heartbeat",
    }


def test_spark_options_are_checked_before_spark_starts(tmp_path: Path) -> None:
    status, _ = analyse(ROOT / "captures" / "lab-faults", "--spark-master", "local[2]")
    assert status == 2  # --spark-master without --engine spark
    result = CliRunner().invoke(
        main,
        ["analyse", str(ROOT / "captures" / "lab-faults"), "--engine", "spark", "--skip-bad-parts"],
    )
    assert result.exit_code == 2 and "--skip-bad-parts" in result.output
