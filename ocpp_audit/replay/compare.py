"""Comparing a recorded answer with a target's answer to the same CALL.

The comparison lives in :mod:`ocpp_audit.protocol.answers`, shared with the recorder's mirrors and
``ocpp-audit compare``; it is re-exported here for replay's callers.
"""

from __future__ import annotations

from ocpp_audit.protocol.answers import (
    DEFAULT_IGNORE,
    Difference,
    IgnorePath,
    compare_answers,
    parse_ignore,
)

__all__ = ["DEFAULT_IGNORE", "Difference", "IgnorePath", "compare_answers", "parse_ignore"]
