"""The README is complete: every command, view, column and rule is documented, and the set-up
commands CI runs are the ones it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ocpp_audit.analyser.rules import load_rules
from ocpp_audit.analyser.views import VIEWS
from ocpp_audit.capture.schema import COLUMNS
from ocpp_audit.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"ocpp-audit {command}" in README


def test_every_view_and_column_is_documented() -> None:
    for column in COLUMNS:
        assert f"| `{column.name}` |" in README, column.name
    for view in VIEWS:
        section = README.split(f"#### `{view.name}`", 1)
        assert len(section) == 2, f"view {view.name} has no section"
        body = section[1].split("####", 1)[0]
        for name, _meaning in view.columns:
            assert f"| `{name}` |" in body, f"{view.name}.{name}"


def test_every_rule_and_parameter_is_documented() -> None:
    for rule in load_rules():
        row = next((line for line in README.splitlines() if f"| `{rule.id}` |" in line), None)
        assert row is not None, rule.id
        for param in rule.params:
            assert f"`{param}`" in row, f"{rule.id}: {param}"


def test_readme_has_exactly_the_two_setup_commands_ci_uses() -> None:
    blocks = re.findall(r"<!-- ci:(\w+-command) -->\n```bash\n(.+?)\n```", README)
    assert [name for name, _ in blocks] == ["demo-command", "test-command"]
    demo, test = (command for _, command in blocks)
    assert demo.startswith("python3 -m venv") and demo.endswith("ocpp-audit demo")
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert "ci:test-command" in ci
