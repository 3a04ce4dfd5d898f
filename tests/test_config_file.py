"""``record --config FILE`` and ``--print-config`` (issue 18): every option from TOML, flags win,
secrets only from the environment, mistakes named by file and key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner

from ocpp_audit.cli import main
from tests.conftest import timeout


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recorder.toml"
    path.write_text(text)
    return path


def test_print_config_merges_defaults_file_and_flags(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'listen = "0.0.0.0:9000"\nupstream = "wss://csms.example.com/ocpp"\n'
        'capture = "captures/site-a"\nrotate_seconds = 120\nid-tag = "CARD-1"\n'
        'metrics = "0.0.0.0:9464"\n',
    )
    result = CliRunner(env={"OCPP_AUDIT_CONTROL_TOKEN": "s3cret-token"}).invoke(
        main, ["record", "--config", str(config), "--rotate-seconds", "60", "--print-config"]
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-token" not in result.output
    document = tomllib.loads(result.output)  # it is TOML: it can be the next --config file
    assert document["listen"] == "0.0.0.0:9000"
    assert document["upstream"] == "wss://csms.example.com/ocpp"
    assert document["rotate-seconds"] == 60.0  # the flag wins over the file
    assert document["rotate-mb"] == 64.0  # a default
    assert document["id-tag"] == ["CARD-1"]
    assert document["metrics"] == "0.0.0.0:9464"
    assert document["control-token"] == "********"


def test_mistakes_are_named_by_file_and_key(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = {
        'listn = "127.0.0.1:9000"\n': "unknown key 'listn'; keys: ",
        'rotate-seconds = "soon"\n': "rotate-seconds: 'soon' is not a valid float",
        'engine = "nginx"\n': "engine: 'nginx' is not one of",
        'control-token = "abc"\n': "'control-token' is a secret: give it in OCPP_AUDIT_CONTROL_TOKEN",
        "listen = [1,\n": "not TOML",
    }
    for text, complaint in cases.items():
        config = write(tmp_path, text)
        result = runner.invoke(main, ["record", "--config", str(config), "--print-config"])
        assert result.exit_code == 2, (text, result.output)
        assert f"{config}: " in result.stderr and complaint in result.stderr, result.stderr
    missing = runner.invoke(main, ["record", "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "none.toml: No such file or directory" in missing.stderr


def test_a_recorder_runs_from_its_file(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    config = write(
        tmp_path,
        f'standalone = true\nlisten = "127.0.0.1:0"\ncapture = "{capture}"\n'
        'metrics = "127.0.0.1:0"\nheartbeat-interval = 30\n',
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "ocpp_audit", "record", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout(30))
    assert first.startswith("Recording on ws://127.0.0.1:") and "built-in central system" in first
    assert f"capture in {capture}" in first
    assert second.startswith("Metrics on http://127.0.0.1:")
    assert (capture / "journal").is_dir()
