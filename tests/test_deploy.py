"""The deployment examples (issue 18) say what works: the TOML file, the systemd unit's command and
the Dockerfile's entrypoint all pass ``record --print-config``, and every file the image copies
exists. (Building the image needs docker, which this machine has not.)"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

from click.testing import CliRunner

from ocpp_audit.cli import main

DEPLOY = Path(__file__).parent.parent / "deploy"


def print_config(args: list[str]) -> dict:
    result = CliRunner().invoke(main, [*args, "--print-config"])
    assert result.exit_code == 0, result.output
    return tomllib.loads(result.output)


def test_the_example_configuration_is_valid() -> None:
    config = print_config(["record", "--config", str(DEPLOY / "recorder.toml")])
    assert config["listen"] == "0.0.0.0:9000"
    assert config["metrics"] == "0.0.0.0:9464"
    assert config["log-format"] == "json"
    assert config["retain-days"] == 90


def test_the_systemd_unit_runs_a_valid_command() -> None:
    unit = (DEPLOY / "ocpp-audit-recorder.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", unit, re.MULTILINE)
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/ocpp-audit") and argv[1] == "record"
    argv = [
        str(DEPLOY / "recorder.toml") if a == "/etc/ocpp-audit/recorder.toml" else a for a in argv
    ]
    config = print_config(argv[1:])
    assert config["upstream"] == "wss://csms.example.com/ocpp"
    assert "TimeoutStopSec=" in unit and "User=" in unit


def test_the_dockerfile_copies_what_exists_and_runs_as_a_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    root = DEPLOY.parent
    for line in re.findall(r"^COPY (.+)$", text, re.MULTILINE):
        *sources, _ = line.split()
        for source in sources:
            assert (root / source).exists(), source
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.+)$", text, re.MULTILINE)[0])
    argv = [str(DEPLOY / "recorder.toml") if "recorder.toml" in a else a for a in entrypoint]
    assert argv[:2] == ["ocpp-audit", "record"]
    print_config(argv[1:])
    assert "EXPOSE 9000 9464" in text
