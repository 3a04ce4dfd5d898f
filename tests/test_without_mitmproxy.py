"""mitmproxy is an optional extra: without it the tool runs, and asking for it names the extra.

Each test runs ``ocpp-audit`` in a subprocess whose ``sitecustomize`` (on ``PYTHONPATH``) puts a
finder first on ``sys.meta_path`` that refuses ``mitmproxy`` and its submodules, as a fresh
``pip install ocpp-audit`` (no extra) would leave it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent
EXTRA = "pip install 'ocpp-audit[mitmproxy]'"

BLOCKER = '''
import sys

class _NoMitmproxy:
    """A fresh install without the extra: there is no mitmproxy to import."""

    def find_spec(self, name, path=None, target=None):
        if name == "mitmproxy" or name.startswith("mitmproxy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoMitmproxy())
'''

# The only modules that may import mitmproxy when they are imported.
MITMPROXY_MODULES = ("ocpp_audit.recorder.mitm", "ocpp_audit.recorder.mitm_engine")


@pytest.fixture
def env_without_mitmproxy(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout(60),
    )


def test_the_blocker_hides_mitmproxy(env_without_mitmproxy: dict[str, str]) -> None:
    # Else every test here would pass for the wrong reason.
    result = run(env_without_mitmproxy, "-c", "import mitmproxy")
    assert result.returncode == 1 and "No module named 'mitmproxy'" in result.stderr


def test_record_with_the_mitmproxy_engine_exits_2_naming_the_extra(
    env_without_mitmproxy: dict[str, str], tmp_path: Path
) -> None:
    result = run(
        env_without_mitmproxy,
        "-m",
        "ocpp_audit",
        "record",
        "--engine",
        "mitmproxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "ws://127.0.0.1:9",
        "--capture",
        str(tmp_path / "capture"),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and EXTRA in lines[0], result.stderr
    assert not (tmp_path / "capture").exists()  # refused before anything started


def test_import_of_a_flow_file_exits_2_naming_the_extra(
    env_without_mitmproxy: dict[str, str], tmp_path: Path
) -> None:
    flows = tmp_path / "flows.mitm"
    flows.write_bytes(b"")
    result = run(
        env_without_mitmproxy,
        "-m",
        "ocpp_audit",
        "import",
        str(flows),
        "--format",
        "mitmproxy",
        "--capture",
        str(tmp_path / "capture"),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and EXTRA in lines[0], result.stderr


def test_analyse_runs_without_mitmproxy(env_without_mitmproxy: dict[str, str]) -> None:
    result = run(
        env_without_mitmproxy, "-m", "ocpp_audit", "analyse", "captures/lab-good", "-f", "json"
    )
    assert result.returncode == 0, result.stderr
    assert '"charge_point_id"' in result.stdout


def test_no_other_module_imports_mitmproxy(env_without_mitmproxy: dict[str, str]) -> None:
    """Every module of the package imports with mitmproxy missing, but the engine's own."""
    script = f"""
import importlib, pkgutil, sys
import ocpp_audit
allowed = {MITMPROXY_MODULES!r}
imported, failed = 0, []
for module in pkgutil.walk_packages(ocpp_audit.__path__, "ocpp_audit."):
    if module.name.startswith(allowed) or module.name == "ocpp_audit.__main__":  # that one runs the CLI
        continue
    try:
        importlib.import_module(module.name)
        imported += 1
    except ImportError as error:
        failed.append(f"{{module.name}}: {{error}}")
print(imported)
print("\\n".join(failed))
"""
    result = run(env_without_mitmproxy, "-c", script)
    assert result.returncode == 0, result.stderr
    count, *failed = result.stdout.strip().splitlines()
    assert failed == []
    assert int(count) > 40  # the walk did reach the package's modules
