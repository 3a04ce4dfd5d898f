"""`ocpp-audit demo`: the built-in tour, on loopback, in under a minute."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

# The tour's chargers: one well-behaved, and two with faults seen on real chargers (the second is
# the CTEK report's function 14: "Start/stop notification received, Metre values not received").
DEMO_CHARGERS = {
    "DEMO-GOOD-01": "good",
    "DEMO-DROPS-02": "drops-queued-meter-values",
    "DEMO-NOSERIAL-03": "no-serial",
}


@dataclass
class DemoResult:
    capture_dir: Path
    frames: int
    parts: int
    seconds: float


async def run_demo(
    capture_dir: Path,
    *,
    chargers: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Central system + recorder + simulated chargers, each driven through the acceptance scenario.

    ``chargers`` maps charge point ids to simulator profiles (default: the tour's three).
    """
    from ocpp_audit.recorder.central_system import CentralSystemConfig
    from ocpp_audit.recorder.options import RecordOptions
    from ocpp_audit.recorder.service import RecorderService
    from ocpp_audit.simulator.charger import SimulatedCharger
    from ocpp_audit.simulator.scenario import (
        ScenarioTiming,
        charger_timing_for_scenario,
        run_acceptance_scenario,
    )

    say = progress or (lambda message: None)
    profiles = chargers or DEMO_CHARGERS
    started = time.monotonic()
    options = RecordOptions(capture_dir=capture_dir, standalone=True)
    # The scenario swipes one card the central system knows and one it must refuse (function 6).
    config = CentralSystemConfig(
        heartbeat_interval=ScenarioTiming.heartbeat_interval,
        id_tags={ScenarioTiming.valid_id_tag: "Accepted"},
    )
    async with RecorderService(options, config) as service:
        central_system = service.central_system
        assert central_system is not None
        say(f"central system and recorder up; chargers connect to {service.url}/<id>")
        simulated = [
            SimulatedCharger(
                charge_point_id,
                service.url,
                profile=profile,
                timing=charger_timing_for_scenario(),
            )
            for charge_point_id, profile in profiles.items()
        ]

        async def tour(charger: SimulatedCharger) -> None:
            await charger.start()
            say(f"{charger.charge_point_id}: booted ({profiles[charger.charge_point_id]})")
            try:
                await run_acceptance_scenario(central_system, charger)
            finally:
                await charger.stop()
            say(f"{charger.charge_point_id}: acceptance scenario done")

        await asyncio.gather(*(tour(charger) for charger in simulated))
    parts = sorted(capture_dir.glob("frames/**/*.parquet"))
    frames = _count_frames(parts)
    return DemoResult(capture_dir, frames, len(parts), time.monotonic() - started)


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

    Starts the built-in central system, the recorder in front of it and three simulated chargers
    (one well-behaved, two with faults seen on real chargers), drives each through the acceptance
    scenario (boot, availability, configuration, charging sessions, resets, firmware, diagnostics,
    an offline period), then analyses the capture and prints the verdicts.

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
    with contextlib.suppress(KeyboardInterrupt):
        result = asyncio.run(run_demo(capture_dir, progress=progress))
    click.echo(
        f"\nCaptured {result.frames} events in {result.parts} Parquet part(s) "
        f"in {result.seconds:.0f} s: {capture_dir}/frames/\n"
    )
    report = analyse([capture_dir])
    click.echo(render(report, "table"))
    pattern = f"{capture_dir}/**/*.parquet"
    click.echo(
        "\nTry it yourself:\n"
        f"  ocpp-audit analyse {capture_dir} --format markdown\n"
        f'  ocpp-audit query {capture_dir} "select charge_point_id, action, count(*) n '
        'from messages group by all order by n desc limit 10"\n'
        f"  duckdb -c \"select * from read_parquet('{pattern}', hive_partitioning = true) limit 5\""
    )
