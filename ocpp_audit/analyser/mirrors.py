"""Comparing the primary's answers with each mirror's (``ocpp-audit compare``).

Reads the ``mirror_answers`` view of a capture recorded with ``record --mirror``: every CALL a
charger sent, the primary's answer and each mirror's. Answers are compared as ``replay`` compares
them (:func:`~ocpp_audit.protocol.answers.compare_answers`: every field, ``currentTime`` and the
carried ``transactionId`` ignored by default). Renders as a table, JSON (format_version 1) or JUnit.
"""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ocpp_audit.protocol.answers import (
    DEFAULT_IGNORE,
    Answer,
    Difference,
    IgnorePath,
    compare_answers,
    json_object,
    parse_ignore,
)

__all__ = ["FORMATS", "MirrorCall", "MirrorComparison", "NothingToCompare", "compare", "render"]

FORMATS = ("table", "json", "junit")
MAX_LISTED = 20  # lines per mirror in the table; --format json lists every one


class NothingToCompare(ValueError):
    """The capture holds no mirror rows (or none of the mirror asked for)."""


@dataclass
class MirrorCall:
    """One charger CALL: the primary's answer beside one mirror's, and how they differ."""

    charge_point_id: str
    unique_id: str
    action: str
    call_ts: str
    primary: Answer | None
    mirror: Answer | None
    sent_to_mirror: bool
    primary_latency_ms: float | None
    mirror_latency_ms: float | None
    differences: list[Difference]

    def to_dict(self) -> dict[str, object]:
        return {
            "charge_point_id": self.charge_point_id,
            "unique_id": self.unique_id,
            "action": self.action,
            "call_ts": self.call_ts,
            "sent_to_mirror": self.sent_to_mirror,
            "primary": None if self.primary is None else self.primary.to_dict(),
            "mirror": None if self.mirror is None else self.mirror.to_dict(),
            "primary_latency_ms": self.primary_latency_ms,
            "mirror_latency_ms": self.mirror_latency_ms,
            "differences": [_difference_dict(d) for d in self.differences],
        }


def _difference_dict(difference: Difference) -> dict[str, object]:
    stored = difference.to_dict()
    return {
        "kind": stored["kind"],
        "path": stored["path"],
        "primary": stored["recorded"],
        "mirror": stored["replayed"],
        "text": difference.describe("primary", "mirror"),
    }


@dataclass
class MirrorOutcome:
    name: str
    calls: list[MirrorCall] = field(default_factory=list)

    @property
    def differing(self) -> list[MirrorCall]:
        return [call for call in self.calls if call.differences]

    @property
    def unanswered(self) -> list[MirrorCall]:
        """CALLs the mirror never answered (never sent to it, or sent and not answered)."""
        return [call for call in self.calls if call.mirror is None]

    def latencies(self, which: str) -> list[float]:
        values = (
            call.primary_latency_ms if which == "primary" else call.mirror_latency_ms
            for call in self.calls
        )
        return [value for value in values if value is not None]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "calls": len(self.calls),
            "differing_calls": len(self.differing),
            "unanswered_calls": len(self.unanswered),
            "latency_ms": {
                "primary": _stats(self.latencies("primary")),
                "mirror": _stats(self.latencies("mirror")),
            },
            "differences": [call.to_dict() for call in self.differing],
            "unanswered": [
                {"charge_point_id": c.charge_point_id, "unique_id": c.unique_id, "action": c.action}
                for c in self.unanswered
            ],
        }


@dataclass
class MirrorComparison:
    ignore: list[str]
    mirrors: list[MirrorOutcome]

    @property
    def differences(self) -> int:
        """CALLs whose answers differ (a CALL the mirror did not answer differs too)."""
        return sum(len(mirror.differing) for mirror in self.mirrors)

    def to_dict(self) -> dict[str, object]:
        return {
            "format_version": 1,
            "ignore": list(self.ignore),
            "differences": self.differences,
            "mirrors": [mirror.to_dict() for mirror in self.mirrors],
        }


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


_QUERY = """
SELECT backend, charge_point_id, unique_id, action, strftime(call_ts, '%Y-%m-%dT%H:%M:%S.%fZ'),
       primary_answer_type, primary_answer_payload, primary_error_code, primary_latency_s,
       sent_to_mirror, mirror_answer_type, mirror_answer_payload, mirror_error_code,
       mirror_latency_s
FROM mirror_answers
{where}
ORDER BY backend, call_ts, charge_point_id, unique_id
"""


def _answer(kind: str | None, payload: str | None, error_code: str | None) -> Answer | None:
    if kind is None:
        return None
    if kind == "CALLERROR":
        return Answer(4, json_object(payload), error_code)
    return Answer(3, json_object(payload))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def compare(
    con: duckdb.DuckDBPyConnection,
    *,
    mirrors: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> MirrorComparison:
    """Compare the primary's and each mirror's answers in the capture open on ``con``.

    Raises :class:`NothingToCompare` when there is no mirror (or none named in ``mirrors``), and
    ValueError for a bad ignore path.
    """
    ignore_paths: list[IgnorePath] = [parse_ignore(t) for t in (*DEFAULT_IGNORE, *ignore)]
    present = [
        name
        for (name,) in con.execute(
            "SELECT DISTINCT backend FROM all_frames WHERE backend IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    if not present:
        raise NothingToCompare("the capture holds no mirror rows (record with --mirror)")
    unknown = [name for name in mirrors if name not in present]
    if unknown:
        raise NothingToCompare(
            f"no mirror named {', '.join(unknown)} in the capture (it has {', '.join(present)})"
        )
    chosen = list(mirrors) or present
    placeholders = ", ".join("?" for _ in chosen)
    rows = con.execute(_QUERY.format(where=f"WHERE backend IN ({placeholders})"), chosen).fetchall()
    outcomes = {name: MirrorOutcome(name) for name in chosen}
    for row in rows:
        (name, charge_point_id, unique_id, action, call_ts, p_type, p_payload, p_error,
         p_latency, sent, m_type, m_payload, m_error, m_latency) = row  # fmt: skip
        primary = _answer(p_type, p_payload, p_error)
        mirror = _answer(m_type, m_payload, m_error)
        outcomes[name].calls.append(
            MirrorCall(
                charge_point_id=charge_point_id,
                unique_id=unique_id,
                action=action,
                call_ts=call_ts,
                primary=primary,
                mirror=mirror,
                sent_to_mirror=bool(sent),
                primary_latency_ms=_ms(p_latency),
                mirror_latency_ms=_ms(m_latency),
                differences=compare_answers(primary, mirror, ignore_paths),
            )
        )
    return MirrorComparison([path.text for path in ignore_paths], list(outcomes.values()))


# --- rendering -------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(comparison: MirrorComparison) -> str:
    lines = [f"Answers compared with the primary's (ignored: {', '.join(comparison.ignore)})"]
    for mirror in comparison.mirrors:
        primary, own = _stats(mirror.latencies("primary")), _stats(mirror.latencies("mirror"))
        lines += [
            "",
            f"{mirror.name}: {len(mirror.calls)} CALLs, {len(mirror.differing)} differ, "
            f"{len(mirror.unanswered)} unanswered",
            f"  latency ms, median / p95: primary {_fmt(primary['median'])} / "
            f"{_fmt(primary['p95'])}, {mirror.name} {_fmt(own['median'])} / {_fmt(own['p95'])}",
        ]
        listed: list[str] = []
        for call in mirror.differing:
            for difference in call.differences:
                if difference.kind == "missing-answer":
                    continue  # listed below, once
                listed.append(
                    f"  {call.charge_point_id} {call.action} ({call.unique_id}) "
                    f"{difference.describe('primary', mirror.name)}"
                )
        for call in mirror.unanswered:
            why = "not answered" if call.sent_to_mirror else "never sent (dropped or mirror down)"
            listed.append(f"  {call.charge_point_id} {call.action} ({call.unique_id}) {why}")
        lines += listed[:MAX_LISTED]
        if len(listed) > MAX_LISTED:
            lines.append(f"  ... {len(listed) - MAX_LISTED} more (--format json lists every one)")
    lines += ["", f"{comparison.differences} CALL(s) answered differently or not at all"]
    return "\n".join(lines) + "\n"


def _junit(comparison: MirrorComparison) -> str:
    suites = ET.Element("testsuites", name="ocpp-audit compare")
    for mirror in comparison.mirrors:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=mirror.name,
            tests=str(len(mirror.calls)),
            failures=str(len(mirror.differing)),
        )
        for call in mirror.calls:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{mirror.name}.{call.charge_point_id}",
                name=f"{call.action} ({call.unique_id})",
            )
            if call.mirror_latency_ms is not None:
                case.set("time", f"{call.mirror_latency_ms / 1000:.3f}")
            if call.differences:
                texts = [d.describe("primary", mirror.name) for d in call.differences]
                ET.SubElement(case, "failure", message=texts[0]).text = "\n".join(texts)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render(comparison: MirrorComparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(comparison.to_dict(), indent=2, default=_plain) + "\n"
    if fmt == "junit":
        return _junit(comparison)
    if fmt == "table":
        return _table(comparison)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def _plain(value: Any) -> str:
    return str(value)
