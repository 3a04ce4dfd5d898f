"""Corrupt parts mixed with good ones: ``--skip-bad-parts`` analyses and queries the rest.

Without the flag a bad part stops ``analyse`` and ``query`` with exit 2 naming the file (tested in
tests/test_analyse_cli.py and tests/test_analyser_engine.py); here each kind of bad part sits in
the same capture folder as good parts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ocpp_audit.analyser import capture as capture_module
from ocpp_audit.analyser.capture import CaptureError, readable_parts
from ocpp_audit.analyser.engine import analyse
from ocpp_audit.cli import main
from tests.test_analyser_engine import BOOT_SQL, _corrupt_parts, header, standin_views, write_rule

BAD_KINDS = ("truncated", "foreign", "future major", "missing columns")


@pytest.fixture(autouse=True)
def _views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_module, "_create_views", standin_views)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    write_rule(folder, "01-boot.sql", header("boot-notification", function=1) + BOOT_SQL)
    return folder


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, dict[str, tuple[Path, str]]]:
    """The three-charger capture with one bad part of each kind beside its good part."""
    corrupt = _corrupt_parts(tmp_path)  # also writes tmp_path/capture (three_chargers)
    capture = tmp_path / "capture"
    day = sorted((capture / "frames").rglob("*.parquet"))[0].parent
    placed: dict[str, tuple[Path, str]] = {}
    for kind in BAD_KINDS:
        source, problem = corrupt[kind]
        target = day / f"part-bad-{kind.replace(' ', '-')}.parquet"
        shutil.copyfile(source, target)
        placed[kind] = (target.resolve(), problem)
    return capture, placed


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)


def skipped_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Skipped ")]


def test_readable_parts_sorts_good_from_bad(mixed: tuple[Path, dict]) -> None:
    capture, placed = mixed
    good, skipped = readable_parts([capture])
    bad = {path for path, _ in placed.values()}
    assert len(good) == 1 and good[0].name.startswith("part-") and good[0].resolve() not in bad
    assert {s.path for s in skipped} == bad
    for part in skipped:
        problem = next(p for path, p in placed.values() if path == part.path)
        assert problem in part.problem and "\n" not in str(part)


def test_analyse_skips_bad_parts_and_lists_them(mixed: tuple[Path, dict], rules_dir: Path) -> None:
    capture, placed = mixed
    # Without the flag: unchanged, exit 2 naming one of the bad files.
    refused = run("analyse", capture, "--rules", rules_dir)
    assert refused.exit_code == 2
    assert any(str(path) in refused.stderr for path, _ in placed.values())

    result = run("analyse", capture, "--rules", rules_dir, "--skip-bad-parts", "-f", "json")
    assert result.exit_code == 0, result.output
    lines = skipped_lines(result)
    assert len(lines) == len(BAD_KINDS)
    for path, problem in placed.values():
        assert any(line.startswith(f"Skipped {path}: ") and problem in line for line in lines)
    document = json.loads(result.stdout)
    assert document["format_version"] == 1
    assert [c["charge_point_id"] for c in document["chargers"]] == ["CP1", "CP2", "CP3"]
    verdicts = [c["functions"][0]["verdict"] for c in document["chargers"]]
    assert verdicts == ["PASS", "PASS", "NOT_OBSERVED"]
    listed = {Path(item["path"]): item["problem"] for item in document["skipped_parts"]}
    assert set(listed) == {path for path, _ in placed.values()}


def test_json_report_keys_unchanged_without_skipping(
    mixed: tuple[Path, dict], rules_dir: Path
) -> None:
    capture, placed = mixed
    for path, _ in placed.values():
        path.unlink()
    plain = run("analyse", capture, "--rules", rules_dir, "-f", "json")
    assert set(json.loads(plain.stdout)) == {"format_version", "chargers"}
    flagged = run("analyse", capture, "--rules", rules_dir, "-f", "json", "--skip-bad-parts")
    assert json.loads(flagged.stdout)["skipped_parts"] == []
    assert skipped_lines(flagged) == []


def test_skipped_parts_stay_out_of_a_reopened_capture(
    mixed: tuple[Path, dict], rules_dir: Path
) -> None:
    capture, placed = mixed
    report = analyse([capture], rule_dirs=[rules_dir], skip_bad_parts=True)
    assert report.skipped_parts is not None and len(report.skipped_parts) == len(placed)
    # Renderers that reopen the capture (the html report) read the same, readable, parts.
    assert report.source is not None
    capture_module.open_capture(report.source["paths"]).close()


def test_query_skips_bad_parts(mixed: tuple[Path, dict]) -> None:
    capture, placed = mixed
    sql = "select count(*) as n, count(distinct charge_point_id) as chargers from frames"
    refused = run("query", capture, sql)
    assert refused.exit_code == 2
    result = run("query", capture, sql, "--skip-bad-parts", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["chargers"] == 3 and rows[0]["n"] > 0
    assert len(skipped_lines(result)) == len(placed)


def test_nothing_readable_is_still_an_error(tmp_path: Path, rules_dir: Path) -> None:
    corrupt = _corrupt_parts(tmp_path)
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    for kind in BAD_KINDS:
        shutil.copyfile(corrupt[kind][0], only_bad / f"{kind.replace(' ', '-')}.parquet")
    with pytest.raises(CaptureError, match="no readable part left"):
        readable_parts([only_bad])
    result = run("analyse", only_bad, "--rules", rules_dir, "--skip-bad-parts")
    assert result.exit_code == 2
    assert "no readable part left to analyse (4 skipped)" in result.stderr
    assert run("query", only_bad, "select 1", "--skip-bad-parts").exit_code == 2
