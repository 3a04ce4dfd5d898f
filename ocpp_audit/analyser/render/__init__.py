"""Render a Report as text, one module per format; ``FORMATS`` names them for the command line.

- ``table`` (:mod:`.table`): per charger the acceptance script's layout (#, function, result, notes),
  then the verdict totals and the chargers that failed.
- ``summary`` (:mod:`.table`): the fleet view, one row per charger, then the same totals.
- ``json`` (:mod:`.json_doc`): the versioned document of ``Report.to_dict()`` (format_version 1).
- ``junit`` (:mod:`.junit`): one testsuite per charger, one testcase per function or check.
- ``markdown`` (:mod:`.markdown`): like the reference test report (#, Function, Criteria, Result).
- ``html`` (:mod:`.html_page`): one self-contained page with timelines and charts.

A charger controls every byte of its id, vendor strings, idTags and error texts, and rule details
quote them: each renderer shows them through the function of ``ocpp_audit.display`` for its output
(the capture keeps them exactly as received).
"""

from __future__ import annotations

from collections.abc import Callable

from ocpp_audit.analyser.model import Report
from ocpp_audit.analyser.render.html_page import render_html
from ocpp_audit.analyser.render.json_doc import render_json
from ocpp_audit.analyser.render.junit import render_junit
from ocpp_audit.analyser.render.markdown import render_markdown
from ocpp_audit.analyser.render.table import render_summary, render_table

__all__ = ["FORMATS", "RENDERERS", "render"]

# Format name -> renderer; the order is the one the command line offers.
RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "summary": render_summary,
    "json": render_json,
    "junit": render_junit,
    "markdown": render_markdown,
    "html": render_html,
}
FORMATS = tuple(RENDERERS)


def render(report: Report, fmt: str) -> str:
    """The report as text in ``fmt`` (one of FORMATS), ending with a newline."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
    return renderer(report)
