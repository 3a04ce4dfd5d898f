"""Shared test settings. Integration tests use real sockets on 127.0.0.1, port 0."""

from __future__ import annotations

import os

# One factor that a slow machine can raise: every wait in the tests is multiplied by it.
TIMEOUT_FACTOR = float(os.environ.get("OCPP_AUDIT_TIMEOUT_FACTOR", "1"))


def timeout(seconds: float) -> float:
    return seconds * TIMEOUT_FACTOR
