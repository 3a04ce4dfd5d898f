"""Cells every text format shows the same way: a charger's summary, a function's number, a verdict."""

from __future__ import annotations

from ocpp_audit.analyser.model import (
    FAIL,
    NOT_OBSERVED,
    PASS,
    RESULT_WORDS,
    ChargerReport,
    RuleResult,
)


def summary(charger: ChargerReport) -> str:
    """``2 PASS, 1 FAIL, 0 NOT OBSERVED``."""
    counts = {verdict: 0 for verdict in (PASS, FAIL, NOT_OBSERVED)}
    for result in charger.results:
        counts[result.verdict] += 1
    return ", ".join(f"{counts[v]} {RESULT_WORDS[v]}" for v in (PASS, FAIL, NOT_OBSERVED))


def function_number(result: RuleResult) -> str:
    """The acceptance script's function number, or empty for a protocol check."""
    return str(result.rule.function) if result.rule.function is not None else ""


def result_word(result: RuleResult) -> str:
    """The verdict as shown, ``FAIL (warning)`` for a failing rule of severity warning."""
    word = RESULT_WORDS[result.verdict]
    if result.verdict == FAIL and result.rule.severity == "warning":
        word += " (warning)"
    return word
