"""The versioned JSON document of ``Report.to_dict()`` (format_version 1).

Nothing to make safe: ``json.dumps`` escapes every control character, and a reader gets the
charger's strings exactly as received.
"""

from __future__ import annotations

import json

from ocpp_audit.analyser.model import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
