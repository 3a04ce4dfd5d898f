"""`ocpp-audit demo`: the built-in tour, on loopback, in well under two minutes.

Central system + recorder (with its control API and firmware/diagnostics endpoints) + simulated
chargers, each walked through the guided acceptance run in auto mode: the same code path as
`ocpp-audit acceptance --auto`, through the real control API and simulator control over HTTP.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ocpp_audit.analyser.model import Report
    from ocpp_audit.lab.acceptance.run import GuidedRun

# The tour's chargers: one well-behaved, and two with faults seen on real chargers (the second is
# the CTEK report's function 14: "Start/stop notification received, Metre values not received").
DEMO_CHARGERS = {
    "DEMO-GOOD-01": "good",
    "DEMO-DROPS-02": "drops-queued-meter-values",
    "DEMO-NOSERIAL-03": "no-serial",
    # An OCPP 2.0.1 station (subprotocol ocpp2.0.1), judged by the 2.0.1 criteria in the same report.
    "DEMO-V201-04": "v201-good",
}


def closing_summary(report: Report, chargers: dict[str, str]) -> str:
    """What the verdicts mean: each charger's FAILs against the faults its profile was given.

    The faulty profiles fail on purpose (``Profile.fails``, ``Profile.trips``); a FAIL the
    profile does not explain, or an intended one that is missing, is said plainly.
    """
    from ocpp_audit.analyser.model import FAIL
    from ocpp_audit.lab.simulator import PROFILES

    lines = ["What the demo shows:"]
    as_intended = True
    for charger in report.chargers:
        name = chargers.get(charger.charge_point_id)
        profile = PROFILES.get(name) if name else None
        failed = [r for r in charger.results if r.verdict == FAIL]
        got = {r.rule.function if r.rule.function is not None else r.rule.id for r in failed}
        labels = ", ".join(
            f"function {r.rule.function} ({r.rule.title})" if r.rule.function else r.rule.id
            for r in failed
        )
        if profile is None:
            lines.append(f"  {charger.charge_point_id}: not one of the demo's chargers")
            as_intended = False
            continue
        intended = {*profile.fails, *profile.trips}
        if got == intended and not intended:
            lines.append(f"  {charger.charge_point_id} ({profile.name}): passes, as intended")
        elif got == intended:
            lines.append(
                f"  {charger.charge_point_id} ({profile.name}: {profile.description}): "
                f"FAIL of {labels}, intended: this fault was seen on real chargers"
            )
        else:
            as_intended = False
            lines.append(
                f"  {charger.charge_point_id} ({profile.name}): FAILs {sorted(map(str, got))}, "
                f"but its profile should fail {sorted(map(str, intended))}: not as intended"
            )
    lines.append(
        "Every FAIL above is intended: the faulty chargers were built to fail them."
        if as_intended
        else "Some verdicts are not what the demo intends: please report this."
    )
    return "\n".join(lines)


@dataclass
class DemoResult:
    capture_dir: Path
    frames: int
    parts: int
    seconds: float
    runs: list[GuidedRun] = field(default_factory=list)  # one guided run per charger


async def run_demo(
    capture_dir: Path,
    *,
    chargers: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    engine: str = "relay",
) -> DemoResult:
    """Central system + recorder + simulated chargers, each walked through a guided auto run.

    ``chargers`` maps charge point ids to simulator profiles (default: the tour's four);
    ``engine`` records them (relay or mitmproxy).
    The capture is sealed when this returns; the runs are not judged here (analyse the capture).
    """
    from ocpp_audit.lab.acceptance import AutoCharger, run_guided
    from ocpp_audit.lab.acceptance.lab import guided_lab
    from ocpp_audit.recorder.control import AsyncControlClient

    say = progress or (lambda message: None)
    profiles = chargers or DEMO_CHARGERS
    started = time.monotonic()
    token = secrets.token_urlsafe(24)  # never written anywhere: the demo's own client holds it
    async with guided_lab(capture_dir, profiles, token, engine=engine) as lab:
        service = lab.service
        assert service.endpoints is not None
        say(f"central system and recorder up; chargers connect to {service.url}/<id>")
        say(
            f"control API on {lab.control_url}; firmware on "
            f"{service.endpoints.firmware_location}; diagnostics to ftp://127.0.0.1:"
            f"{service.endpoints.ftp_port}/"
        )
        say(f"{len(lab.chargers)} simulated chargers booted; guided runs (--auto) start")
        client = AsyncControlClient(lab.control_url, token)

        async def tour(charge_point_id: str) -> GuidedRun:
            def step_done(message: str) -> None:
                if not message.endswith("..."):  # the step's outcome, not its start
                    say(f"{charge_point_id} {message}")

            return await run_guided(
                client,
                charge_point_id,
                AutoCharger(charge_point_id, lab.simulator_control.url),
                progress=step_done,
                judge=False,
            )

        runs = await asyncio.gather(*(tour(cp) for cp in lab.chargers))
    parts = sorted(capture_dir.glob("frames/**/*.parquet"))
    frames = _count_frames(parts)
    return DemoResult(capture_dir, frames, len(parts), time.monotonic() - started, list(runs))


def _count_frames(parts: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(part).num_rows for part in parts)


@click.command()
@click.option(
    "--capture",
    "capture_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the capture [default: ./demo-capture-<time>].",
)
def demo(capture_dir: Path | None) -> None:
    """Run the built-in tour on loopback and judge what it captured.

    Starts the built-in central system, the recorder in front of it (with its control API and
    firmware/diagnostics endpoints) and four simulated chargers (OCPP 1.6: one well-behaved, two
    with faults seen on real chargers; and one well-behaved OCPP 2.0.1 station), walks each through the guided acceptance run in auto mode
    (boot, availability, configuration, charging sessions, resets, firmware, diagnostics, an
    offline period: the same path as `ocpp-audit acceptance --auto`), then analyses the capture
    and prints the verdicts.

    \b
    Example:
        ocpp-audit demo --capture /tmp/demo
    """
    from ocpp_audit.analyser.engine import analyse
    from ocpp_audit.analyser.report import render

    if capture_dir is None:
        capture_dir = Path(f"demo-capture-{time.strftime('%Y%m%d-%H%M%S')}")
    if capture_dir.exists() and any(capture_dir.iterdir()):
        raise click.UsageError(f"{capture_dir} is not empty; name a new folder with --capture")

    def progress(message: str) -> None:
        click.echo(f"  {message}", err=True)

    click.echo(f"ocpp-audit demo: recording into {capture_dir}/", err=True)
    try:
        result = asyncio.run(run_demo(capture_dir, progress=progress))
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; what was recorded is in {capture_dir}") from None
    click.echo(
        f"\nCaptured {result.frames} events in {result.parts} Parquet part(s) "
        f"in {result.seconds:.0f} s: {capture_dir}/frames/\n"
    )
    report = analyse([capture_dir])
    click.echo(render(report, "table"))
    click.echo(closing_summary(report, DEMO_CHARGERS))
    pattern = f"{capture_dir}/frames/**/*.parquet"
    click.echo(
        "\nTry it yourself:\n"
        f"  ocpp-audit analyse {capture_dir} --format markdown\n"
        f"  ocpp-audit analyse {capture_dir} --charger DEMO-DROPS-02 --format html -o report.html\n"
        f'  ocpp-audit query {capture_dir} "select charge_point_id, action, count(*) n '
        'from messages group by all order by n desc limit 10"\n'
        # pip's duckdb has no command-line tool: the Python one-liner works wherever this tool does
        f'  python -c "import duckdb; print(duckdb.sql(\\"select * from read_parquet('
        f"'{pattern}', hive_partitioning = true) limit 5\\\"))\"\n"
        "With a real charger: `ocpp-audit record ... --control 9001 --endpoints 127.0.0.1`, then\n"
        "  ocpp-audit acceptance <CHARGE_POINT_ID> --token-file <capture>/control-token"
    )
