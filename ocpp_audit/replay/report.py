"""Rendering a replay report: table (for people), json (format_version 1), junit (for CI)."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET

from ocpp_audit.replay.replayer import ReplayReport

__all__ = ["FORMATS", "render"]

FORMATS = ("table", "json", "junit")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def _table(report: ReplayReport) -> str:
    speed = "max" if report.speed is None else f"{report.speed:g}x"
    lines = [f"Replay against {report.target} (speed {speed})"]
    for charger in report.chargers:
        differing = sum(1 for call in charger.calls if call.differences)
        lines.append("")
        lines.append(
            f"{charger.charge_point_id}: {len(charger.calls)} CALLs, {differing} differ, "
            f"{len(charger.target_calls)} target CALLs"
        )
        for problem in charger.problems:
            lines.append(f"  ! {problem}")
        for number, call in enumerate(charger.calls, 1):
            for difference in call.differences:
                lines.append(f"  #{number} {call.action} {difference.describe()}")
        for target_call in charger.target_calls:
            lines.append(f"  target CALL {target_call.action}: {target_call.answered_with}")
        if charger.skipped:
            lines.append(f"  {charger.skipped} binary frame(s) in the recording not replayed")
        recorded = [
            c.recorded_latency_ms for c in charger.calls if c.recorded_latency_ms is not None
        ]
        replayed = [
            c.replayed_latency_ms for c in charger.calls if c.replayed_latency_ms is not None
        ]
        lines.append(
            f"  latency ms, median: recorded {_median(recorded)}, target {_median(replayed)}"
        )
    lines.append("")
    total = report.differences
    lines.append("no differences" if total == 0 else f"{total} difference(s)")
    if report.capture_dir is not None:
        lines.append(f"replay recorded in {report.capture_dir}")
    return "\n".join(lines) + "\n"


def _junit(report: ReplayReport) -> str:
    suites = ET.Element("testsuites", name=f"ocpp-audit replay against {report.target}")
    for charger in report.chargers:
        failures = sum(1 for call in charger.calls if call.differences) + len(charger.problems)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=charger.charge_point_id,
            tests=str(len(charger.calls) + len(charger.problems)),
            failures=str(failures),
        )
        for problem in charger.problems:
            case = ET.SubElement(
                suite, "testcase", classname=charger.charge_point_id, name="connect"
            )
            ET.SubElement(case, "failure", message=problem)
        for number, call in enumerate(charger.calls, 1):
            case = ET.SubElement(
                suite,
                "testcase",
                classname=charger.charge_point_id,
                name=f"#{number} {call.action} ({call.unique_id})",
            )
            if call.replayed_latency_ms is not None:
                case.set("time", f"{call.replayed_latency_ms / 1000:.3f}")
            if call.differences:
                text = "\n".join(d.describe() for d in call.differences)
                ET.SubElement(case, "failure", message=call.differences[0].describe()).text = text
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render(report: ReplayReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if fmt == "junit":
        return _junit(report)
    if fmt == "table":
        return _table(report)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
