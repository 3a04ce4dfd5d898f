"""One exit policy for every command (README, "Commands"): each mistake below exits 2 with one line
naming the file or the thing asked, and writes no report.

Each row runs the real command: through click's CliRunner, or as ``python -m ocpp_audit`` in a
subprocess where the process matters (the recorder's sockets, the ``analyze`` spelling). The
services are real: a recorder with its control API, sockets on 127.0.0.1, Parquet captures.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocpp_audit.cli import main
from tests.conftest import timeout
from tests.test_analyser_engine import three_chargers

TOKEN = "exit-codes-token"


@dataclass(frozen=True)
class Case:
    """A command line (``{name}`` fields filled from the places below) and what it must give."""

    id: str
    args: str
    words: tuple[str, ...]  # all in the last stderr line, which starts with "Error: "
    code: int = 2
    subprocess: bool = False
    # Paths that must not exist afterwards: the report, a capture that was not to be made.
    absent: tuple[str, ...] = ("{out}",)


CASES = [
    # -- analyse: never pass on nothing (issue 13) --
    Case(
        "analyse-wrong-case-charger",
        "analyse {capture} --charger cp1 --format junit --output {out}",
        ("no charger 'cp1' in", "chargers: CP1, CP2, CP3", "did you mean 'CP1'?"),
    ),
    Case(
        "analyse-one-of-two-chargers-mistyped",
        "analyse {capture} --charger CP1 --charger CP9 --format junit --output {out}",
        ("no charger 'CP9' in",),
    ),
    Case(
        "analyse-window-without-frames",
        "analyse {capture} --since 2030-01-01 --until 2030-01-02 --format junit --output {out}",
        ("no frames between 2030-01-01 and 2030-01-02 in", "from 2024-05-01T10:00:00Z"),
    ),
    Case(
        "analyse-empty-folder",
        "analyse {empty} --format junit --output {out}",
        ("no Parquet parts under", "empty"),
    ),
    Case(
        "analyse-an-empty-folder-next-to-a-capture",
        "analyse {capture} {empty} -o {out}",
        ("no Parquet parts under {empty}",),
    ),
    Case("analyse-missing-folder", "analyse {tmp}/nowhere -o {out}", ("nowhere: no such file",)),
    Case(
        "analyse-damaged-part",
        "analyse {damaged} -o {out}",
        ("cut.parquet: not a readable Parquet file",),
    ),
    Case(
        "analyse-unknown-select",
        "analyse {capture} --select heartbaet -o {out}",
        ("no rule with id heartbaet", "rule ids: ", "heartbeat"),
    ),
    Case("analyse-unknown-param", "analyse {capture} --param nope=1 -o {out}", ("'nope'",)),
    Case(
        "analyse-broken-rule-file",
        "analyse {capture} --rules {broken_rules} -o {out}",
        ("99-broken.sql: ",),
    ),
    Case(
        "analyse-write-baseline-folder-missing",
        "analyse {capture} --write-baseline {tmp}/ci/b.json",
        ("--write-baseline", "ci/b.json", "no folder"),
        absent=("{tmp}/ci",),
    ),
    Case(
        "analyse-baseline-missing",
        "analyse {capture} --baseline {tmp}/none.json -o {out}",
        ("none.json: cannot be read",),
    ),
    Case(
        "analyse-output-folder-missing",
        "analyse {capture} -o {tmp}/reports/r.xml -f junit",
        ("--output", "reports/r.xml", "no folder"),
        absent=("{tmp}/reports",),
    ),
    # -- compare: a capture without mirrors has nothing to compare --
    Case("compare-without-mirrors", "compare {capture} -o {out}", ("holds no mirror rows",)),
    Case("compare-missing-folder", "compare {tmp}/nowhere -o {out}", ("nowhere: no such file",)),
    Case("compare-empty-folder", "compare {empty} -o {out}", ("no Parquet parts under",)),
    Case(
        "analyze-alias-as-a-process",
        "analyze {capture} --charger NOPE -o {out}",
        ("no charger 'NOPE' in",),
        subprocess=True,
    ),
    # -- query, export, import --
    Case("query-empty-folder", 'query {empty} "select 1" -o {out}', ("no Parquet parts under",)),
    Case("query-bad-sql", 'query {capture} "select nope" -o {out}', ("SQL failed",)),
    Case(
        "export-unknown-charger",
        "export {capture} --charger NOPE -o {out}",
        ("no charger 'NOPE' in", "chargers: CP1, CP2, CP3"),
    ),
    Case(
        "import-of-nothing",
        "import {no_ids} --format jsonl --capture {tmp}/imported",
        ("no frames imported from", "no charge point id", "not written"),
        absent=("{tmp}/imported",),
    ),
    Case(
        "import-unknown-time-zone",
        "import {no_ids} --format jsonl --timezone Mars/Olympus --capture {tmp}/imported",
        ("unknown time zone 'Mars/Olympus'",),
        absent=("{tmp}/imported",),
    ),
    Case(
        "import-missing-file",
        "import {tmp}/none.log --format steve --capture {tmp}/i",
        ("none.log: no such file",),
    ),
    # -- record: the process, its sockets and files --
    Case(
        "record-port-in-use",
        "record --standalone --listen 127.0.0.1:{busy} --capture {tmp}/rec",
        ("cannot listen on 127.0.0.1:{busy} (--listen): address already in use",),
        subprocess=True,
    ),
    Case(
        "record-control-port-in-use",
        "record --standalone --listen 127.0.0.1:0 --control {busy} --capture {tmp}/rec",
        ("cannot listen on 127.0.0.1:{busy} (--control)",),
        subprocess=True,
    ),
    Case(
        "record-certificate-not-pem",
        "record --standalone --listen 127.0.0.1:0 --tls-cert {garbage} --tls-key {key}"
        " --capture {tmp}/rec",
        ("--tls-cert {garbage}: not a PEM certificate",),
        subprocess=True,
    ),
    Case(
        "record-key-of-another-certificate",
        "record --standalone --listen 127.0.0.1:0 --tls-cert {cert} --tls-key {other_key}"
        " --capture {tmp}/rec",
        ("--tls-key {other_key}: not the key of the certificate {cert}",),
        subprocess=True,
    ),
    # -- inject and acceptance: the control API --
    Case(
        "inject-control-api-down",
        "inject --control {dead} --token t CP1 Reset {soft}",
        ("cannot reach the control API at http://127.0.0.1:{dead}: Connection refused",),
    ),
    Case(
        "inject-unknown-charger",
        "inject --control {control} --token {token} NOPE Reset {soft}",
        ("NOPE",),
    ),
    Case(
        "acceptance-control-api-down",
        "acceptance CP1 --control {dead} --token t --report {out}",
        ("cannot reach the control API at http://127.0.0.1:{dead}: Connection refused",),
    ),
    Case(
        "acceptance-unknown-charger",
        "acceptance NOPE --control {control} --token {token} --auto --report {out}",
        ("charger 'NOPE' is not connected to the recorder at {control}", "connected: none"),
    ),
    Case(
        "acceptance-token-refused",
        "acceptance CP1 --control {control} --token wrong --report {out}",
        ("refused the token",),
    ),
    Case(
        "acceptance-report-folder-missing",
        "acceptance CP1 --control {control} --token {token} --report {tmp}/no/r.md",
        ("--report", "no folder"),
        absent=("{tmp}/no",),
    ),
    # -- replay and simulate: a backend that is down is a connection error, not differences --
    Case(
        "replay-target-down",
        "replay {capture} --target ws://127.0.0.1:{dead} --speed max --capture {tmp}/rp"
        " --format junit --report {out}",
        ("cannot connect to the target ws://127.0.0.1:{dead}: Connection refused",),
        absent=("{out}", "{tmp}/rp"),
    ),
    Case(
        "replay-unknown-charger",
        "replay {capture} --target ws://127.0.0.1:{dead} --charger NOPE --report {out}",
        ("no charger 'NOPE' in",),
    ),
    Case(
        "simulate-target-down",
        "simulate --target ws://127.0.0.1:{dead} --duration 1",
        ("no charger could connect to ws://127.0.0.1:{dead}",),
    ),
    # -- prune (issue 18): a folder that is no capture, an age that is no age --
    Case("prune-not-a-capture", "prune {empty} --older-than 30d", ("not a capture",)),
    Case("prune-bad-age", "prune {capture} --older-than soon", ("expected a number of days",)),
]


# -- the places the command lines name ----------------------------------------------------------


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CP1, CP2 and CP3 on 2024-05-01 from 10:00 UTC."""
    return three_chargers(tmp_path_factory.mktemp("capture"))


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone recorder with its control API (no charger connected), in its own thread."""
    from ocpp_audit.lab.central_system import CentralSystem
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService

    options = RecordOptions(
        capture_dir=tmp_path_factory.mktemp("recorder"),
        standalone=True,
        control_host="127.0.0.1",
        control_port=0,
        control_token=TOKEN,
    )
    ready = threading.Event()
    url: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with RecorderService(options, CentralSystem()) as service:
            assert service.control is not None
            url.append(service.control.url)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(timeout(30)), "the recorder did not start"
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout(30))
        loop.close()


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def busy() -> Iterator[int]:
    """A port on 127.0.0.1 someone else listens on, for the test's length."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.fixture
def places(
    tmp_path: Path,
    capture: Path,
    control: str,
    busy: int,
    certificate: tuple[Path, Path],
) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    (tmp_path / "empty").mkdir()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "cut.parquet").write_bytes(b"PAR1 and then nothing")
    no_ids = tmp_path / "no-ids.jsonl"
    no_ids.write_text('{"ts": "2024-03-05T13:02:11Z", "raw": "[2,\\"1\\",\\"Heartbeat\\",{}]"}\n')
    broken_rules = tmp_path / "rules"
    broken_rules.mkdir()
    (broken_rules / "99-broken.sql").write_text("SELECT 1 -- no header\n")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert, key = certificate
    return {
        "tmp": str(tmp_path),
        "out": str(tmp_path / "report.out"),
        "capture": str(capture),
        "empty": str(tmp_path / "empty"),
        "damaged": str(damaged),
        "no_ids": str(no_ids),
        "broken_rules": str(broken_rules),
        "control": control,
        "token": TOKEN,
        "dead": str(free_port()),
        "busy": str(busy),
        "cert": str(cert),
        "key": str(key),
        "other_key": str(other_key),
        "garbage": str(garbage),
        "soft": '{"type":"Soft"}',
    }


def run(case: Case, places: dict[str, str]) -> tuple[int, str, str]:
    """The command's exit status, stdout and stderr."""
    args = [part.format(**places) for part in shlex.split(case.args)]
    if case.subprocess:
        completed = subprocess.run(
            [sys.executable, "-m", "ocpp_audit", *args],
            capture_output=True,
            text=True,
            cwd=places["tmp"],
            timeout=timeout(60),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return completed.returncode, completed.stdout, completed.stderr
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_mistake_exits_2_with_one_line_and_no_report(case: Case, places: dict[str, str]) -> None:
    code, _, stderr = run(case, places)
    assert code == case.code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), stderr
    assert sum(line.startswith("Error: ") for line in lines) == 1, stderr
    for words in case.words:
        assert words.format(**places) in lines[-1]
    for path in case.absent:
        assert not Path(path.format(**places)).exists(), f"{path} was written"


def test_every_command_has_a_row() -> None:
    from ocpp_audit.cli import COMMANDS

    covered = {case.args.split()[0] for case in CASES}
    # demo's only mistake is a usage error (a capture folder that is not empty): click's own.
    assert set(COMMANDS) - covered == {"demo"}


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("mine")
    result = CliRunner().invoke(main, ["demo", "--capture", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[-1]
        == f"Error: {tmp_path} is not empty; name a new folder with --capture"
    )


def test_what_is_well_still_exits_0_and_a_fail_1(capture: Path, tmp_path: Path) -> None:
    """The other side of the policy, on the same capture: the rows above are not mere refusals."""
    out = tmp_path / "r.xml"
    runner = CliRunner()
    passed = runner.invoke(
        main, ["analyse", str(capture), "--charger", "CP1", "--select", "boot-notification"]
    )
    assert passed.exit_code == 0, passed.output
    failed = runner.invoke(main, ["analyze", str(capture), "-f", "junit", "-o", str(out)])
    assert failed.exit_code == 1, failed.output
    assert 'tests="0"' not in out.read_text()
