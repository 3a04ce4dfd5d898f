"""The README's console examples run as written, and print what the README shows (issue 13).

Every ```console block of README.md is a session: each ``$ command`` runs (through bash, in a scratch
folder holding copies of ``captures/`` and ``tests/data/import``), and its output must have the
shape of the lines under it. Shape: numbers, ids and times may differ (a token holding a digit
matches any such token), spacing and the length of ``---`` rules may differ, and a ``...`` line
stands for any number of lines. ``echo $?`` is the previous command's exit status.

Each README section runs as a test of its own, in its own scratch folder. ``record`` and
``simulate --control`` keep running: they start in the background (listening on port 0; the port
they print replaces the README's port in every later command) and are stopped with SIGINT when
their README section ends. A block preceded by ``<!-- readme-test: skip REASON -->`` is
not run (it needs a backend on the internet, or a damaged capture made by hand).

``README_EXAMPLES_SHOW=1 pytest tests/test_readme_examples.py -s`` prints what each command printed,
to update the README after a deliberate change.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocpp_audit.cli.control_options import DEFAULT_CONTROL_URL
from tests.conftest import timeout

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
SKIP = re.compile(r"<!-- readme-test: skip (.+?) -->")
# The ports a long-running command listens on, and the lines that say which port it got.
LISTEN_LINES = (
    re.compile(r"^Recording on wss?://[^:]+:(\d+)"),
    re.compile(r"^Control API on https?://[^:]+:(\d+)"),
    re.compile(r"control on https?://[^:]+:(\d+)"),
)
LISTEN_OPTIONS = re.compile(r"(--listen \S+?:|--control )(\d+)")


@dataclass
class Command:
    text: str
    expected: list[str]
    line: int  # in README.md, for messages


@dataclass
class Block:
    section: str
    line: int
    skip: str | None
    commands: list[Command] = field(default_factory=list)


def console_blocks() -> list[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:]
        if line.strip() == "```console":
            before = lines[index - 1] if index else ""
            skip = SKIP.search(before)
            block = Block(section, index + 1, skip.group(1) if skip else None)
            indent = len(line) - len(line.lstrip())  # a block inside a list item is indented
            index += 1
            while lines[index].strip() != "```":
                text = lines[index][indent:]
                if text.startswith("$ "):
                    block.commands.append(Command(text[2:], [], index + 1))
                elif block.commands:
                    block.commands[-1].expected.append(text)
                index += 1
            for command in block.commands:  # a blank line between commands is layout
                while command.expected and not command.expected[-1].strip():
                    command.expected.pop()
            blocks.append(block)
        index += 1
    return blocks


def shape(line: str) -> str:
    line = re.sub(r"-{2,}", "--", line)
    line = re.sub(r"[\w.:/+-]*\d[\w.:/+-]*", "#", line)
    return " ".join(line.split())


def matches(expected: list[str], actual: list[str]) -> str | None:
    """None when ``actual`` has the shape of ``expected`` (with ``...`` gaps), else why not."""
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(shape(line))
    got = [shape(line) for line in actual]
    position = 0
    for number, segment in enumerate(segments):
        if not segment:
            continue
        if number == 0:
            if got[: len(segment)] != segment:
                return f"starts with {actual[: len(segment)]!r}, expected {segment!r}"
            position = len(segment)
            continue
        last = number == len(segments) - 1
        found = None
        for start in range(position, len(got) - len(segment) + 1):
            if got[start : start + len(segment)] == segment:
                found = start
                if not last:
                    break
        if found is None or (last and found + len(segment) != len(got)):
            return f"no lines shaped {segment!r} after line {position} of {actual!r}"
        position = found + len(segment)
    if len(segments) == 1 and position != len(got):
        return f"extra lines {actual[position:]!r}"
    return None


class Session:
    """The scratch folder, the background processes, and the README's ports mapped to real ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports: dict[str, str] = {}
        self.background: list[subprocess.Popen[str]] = []
        self.status = 0
        self.env = dict(os.environ, COLUMNS="80", PYTHONUNBUFFERED="1")
        self.env.pop("OCPP_AUDIT_PROGRESS", None)
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env['PATH']}"

    def scratch(self, text: str) -> str:
        """The README's /tmp paths, in the scratch folder."""
        return text.replace(" /tmp/", f" {self.folder}/tmp-")

    def substitute(self, text: str) -> str:
        text = self.scratch(text)
        for readme_port, port in self.ports.items():
            text = re.sub(rf"(?<=[:\s]){readme_port}\b", port, text)
        return text

    def run(self, command: Command) -> list[str]:
        text = command.text.rstrip()
        if text == "echo $?":
            return [str(self.status)]
        background = (
            text.endswith("&")
            or re.match(r"ocpp-audit record\b", text)
            or (re.match(r"ocpp-audit simulate\b", text) and "--control" in text)
        )
        if background:
            return self.start(text.rstrip("&").strip(), len(command.expected))
        done = subprocess.run(
            ["bash", "-c", self.substitute(text)],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout(180),
        )
        self.status = done.returncode
        return done.stdout.splitlines()

    def start(self, text: str, lines_expected: int) -> list[str]:
        """Start a long-running command on port 0; its first lines, once it printed them."""
        readme_ports = [port for _, port in LISTEN_OPTIONS.findall(text)]
        text = self.substitute(LISTEN_OPTIONS.sub(lambda m: f"{m.group(1)}0", text))
        process = subprocess.Popen(
            ["bash", "-c", f"exec {text}"],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.background.append(process)
        printed: list[str] = []
        reader = threading.Thread(target=_read_lines, args=(process, printed), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout(60)
        while len(printed) < max(lines_expected, 1) and time.monotonic() < deadline:
            if process.poll() is not None:
                reader.join(5)
                break
            time.sleep(0.05)
        got = [p for line in printed for pattern in LISTEN_LINES if (p := pattern.search(line))]
        for readme_port, found in zip(readme_ports, got, strict=False):
            self.ports[readme_port] = found.group(1)
        # inject and acceptance without --control reach the default port: point them at ours.
        default_port = DEFAULT_CONTROL_URL.rsplit(":", 1)[1]
        if default_port in self.ports:
            self.env["OCPP_AUDIT_CONTROL"] = f"http://127.0.0.1:{self.ports[default_port]}"
        self.status = 0
        return list(printed)

    def stop_background(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.background:
            try:
                process.wait(timeout(30))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.background.clear()
        self.ports.clear()
        self.env.pop("OCPP_AUDIT_CONTROL", None)


def _read_lines(process: subprocess.Popen[str], into: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.append(line.rstrip("\n"))


@pytest.fixture
def session(tmp_path: Path):
    shutil.copytree(ROOT / "captures", tmp_path / "captures")
    shutil.copytree(ROOT / "tests" / "data" / "import", tmp_path / "tests" / "data" / "import")
    session = Session(tmp_path)
    yield session
    session.stop_background()


def test_the_readme_has_console_examples() -> None:
    blocks = console_blocks()
    assert len([b for b in blocks if b.skip is None]) >= 8
    assert all(block.commands for block in blocks), [b.line for b in blocks if not b.commands]


def sections() -> list[str]:
    return list(dict.fromkeys(b.section for b in console_blocks() if b.skip is None))


@pytest.mark.parametrize("section", sections())
def test_every_console_example_runs_as_written(session: Session, section: str) -> None:
    """Each README section is a session of its own (its servers end with it), so the sections
    run side by side."""
    show = os.environ.get("README_EXAMPLES_SHOW") == "1"
    failures: list[str] = []
    for block in console_blocks():
        if block.skip is not None or block.section != section:
            continue
        for command in block.commands:
            actual = session.run(command)
            if show:
                print(f"\n$ {command.text}\n" + "\n".join(actual))
            problem = matches([session.scratch(line) for line in command.expected], actual)
            if problem is not None:
                failures.append(f"README.md:{command.line} `{command.text}`: {problem}")
    assert not failures, "\n".join(f[:300] for f in failures)
