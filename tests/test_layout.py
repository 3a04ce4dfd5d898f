"""The layout's dependency rule (docs/decisions/0001-layout.md), checked from the code's imports.

cli -> {recorder, analyser, lab, replay, importers} -> {capture, protocol}; analyser and recorder never
import each other; lab may use both; capture uses only protocol; protocol nothing. Imports inside
functions count too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ocpp_audit"

# What each top-level part may import (besides itself). Neutral leaf modules: display (charger text
# made safe per output), web (HTTP on aiohttp); __init__ holds the version.
NEUTRAL = {"display", "web", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "capture": {"protocol"},
    "recorder": {"capture", "protocol"},
    "analyser": {"capture", "protocol"},
    "importers": {"capture", "protocol"},
    "replay": {"capture", "protocol"},
    "lab": {"recorder", "analyser", "capture", "protocol"},
    "cli": {"recorder", "analyser", "lab", "replay", "importers", "capture", "protocol"},
    "rules": set(),
    "__main__": {"cli"},
    "display": set(),
    "web": set(),
    "__init__": set(),
}


def part_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "ocpp_audit":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        source = part_of(".".join(relative.parts))
        assert source is not None
        source = source.removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                target = part_of(name)
                if target is not None and target != source:
                    edges.setdefault(source, set()).add(target)
    return edges


def test_every_import_goes_the_allowed_way() -> None:
    graph = import_graph()
    shown = "\n".join(f"  {a} -> {', '.join(sorted(b))}" for a, b in sorted(graph.items()))
    unknown = set(graph) - set(ALLOWED)
    assert not unknown, f"parts with no rule in ALLOWED: {unknown}\n{shown}"
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if target not in ALLOWED[source] and target not in NEUTRAL
    )
    assert not wrong, f"imports against the layout: {wrong}\nthe graph:\n{shown}"


def test_no_import_cycle_between_parts() -> None:
    graph = import_graph()
    cycles = sorted(
        f"{a} <-> {b}" for a, targets in graph.items() for b in targets if a in graph.get(b, set())
    )
    assert not cycles, f"import cycles: {cycles}"
