"""Baselines: a stored JSON report whose verdicts a new run must reproduce.

The CI use: re-judge stored captures after a rule or product change; any verdict that moved (per
charger and rule), and any charger or rule that appeared or went, is a change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ocpp_audit.analyser.engine import FORMAT_VERSION, Report


class BaselineError(Exception):
    """A baseline file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Change:
    charge_point_id: str
    rule: str
    before: str | None  # None: not in the baseline
    after: str | None  # None: not in this run

    def __str__(self) -> str:
        return f"{self.charge_point_id} {self.rule}: {self.before or 'absent'} -> {self.after or 'absent'}"


def load_baseline(path: Path) -> dict[tuple[str, str], str]:
    """(charge_point_id, rule id) -> verdict from a JSON report written by ``--format json``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format_version") != FORMAT_VERSION:
        raise BaselineError(f"{path}: not an ocpp-audit JSON report (format_version 1)")
    verdicts: dict[tuple[str, str], str] = {}
    try:
        for charger in document["chargers"]:
            charge_point_id = charger["charge_point_id"]
            for entry in [*charger.get("functions", []), *charger.get("checks", [])]:
                verdicts[(charge_point_id, entry["rule"])] = entry["verdict"]
    except (KeyError, TypeError) as error:
        raise BaselineError(f"{path}: malformed report ({error!r} missing or wrong)") from None
    return verdicts


def compare(report: Report, baseline: dict[tuple[str, str], str]) -> list[Change]:
    """Every (charger, rule) whose verdict differs between the baseline and ``report``."""
    current = report.verdicts()
    changes = [
        Change(cp, rule, baseline.get((cp, rule)), current.get((cp, rule)))
        for cp, rule in sorted(set(current) | set(baseline))
        if baseline.get((cp, rule)) != current.get((cp, rule))
    ]
    return changes


def write_baseline(report: Report, path: Path) -> None:
    """Store ``report`` as a baseline (the JSON report document)."""
    Path(path).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
