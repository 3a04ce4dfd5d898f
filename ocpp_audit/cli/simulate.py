"""`ocpp-audit simulate`: a fleet of simulated OCPP 1.6-J or 2.0.1 chargers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import click

from ocpp_audit.cli.errors import InputError
from ocpp_audit.cli.params import basic_auth
from ocpp_audit.cli.progress import progress
from ocpp_audit.lab.simulator.charger import ChargerTiming
from ocpp_audit.lab.simulator.fleet import run_fleet
from ocpp_audit.lab.simulator.profiles import ALL_PROFILES, resolve_profile


@click.command()
@click.option(
    "--target",
    required=True,
    metavar="URL",
    help="ws:// or wss:// URL of the recorder or backend; each charger appends /<id>.",
)
@click.option(
    "--count", default=1, show_default=True, type=click.IntRange(1), help="Number of chargers."
)
@click.option(
    "--profile",
    default="good",
    show_default=True,
    type=click.Choice(list(ALL_PROFILES)),
    help="Behaviour profile: good, or one real-world fault (with --ocpp-version 2.0.1, a 1.6 "
    "name picks its 2.0.1 twin: good -> v201-good).",
)
@click.option(
    "--ocpp-version",
    type=click.Choice(["1.6", "2.0.1"]),
    default=None,
    help="The OCPP version the chargers speak (subprotocol ocpp1.6 or ocpp2.0.1) [default: the "
    "profile's, 1.6 for good].",
)
@click.option(
    "--id-prefix",
    default="CP",
    show_default=True,
    help="Charge point ids are PREFIX001, PREFIX002, ...",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="S",
    help="Stop after S seconds (default: run until Ctrl-C).",
)
@click.option(
    "--auth",
    callback=basic_auth,
    metavar="USER:PASS",
    help="HTTP Basic credentials for the handshake.",
)
@click.option("--charge", is_flag=True, help="Run charging sessions (plug, swipe, charge, stop).")
@click.option(
    "--connectors",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Connectors per charger.",
)
@click.option(
    "--meter-interval",
    default=10,
    show_default=True,
    type=click.IntRange(0),
    metavar="S",
    help="MeterValueSampleInterval at power-on.",
)
@click.option(
    "--control",
    metavar="[HOST:]PORT",
    help="Serve the simulator's control here (loopback only): POST /chargers/<id>/<step> performs "
    "a physical step (plug-in, swipe, lose-network, ...); used by `ocpp-audit acceptance --auto`.",
)
def simulate(
    target: str,
    count: int,
    profile: str,
    id_prefix: str,
    duration: float | None,
    auth: tuple[str, str] | None,
    charge: bool,
    connectors: int,
    meter_interval: int,
    control: str | None,
    ocpp_version: str | None,
) -> None:
    """Run simulated OCPP 1.6-J (or 2.0.1) chargers against a backend or the recorder.

    Each charger boots, sends its statuses, heartbeats at the interval the backend sets and
    answers every command; with --charge it also runs charging sessions. At the end, one line
    per charger sums up what it did.

    \b
    Example:
      ocpp-audit simulate --target ws://127.0.0.1:9000/ocpp --count 10 --charge --duration 60
      ocpp-audit simulate --target ws://127.0.0.1:9000 --id-prefix LAB --control 9101
      ocpp-audit simulate --target ws://127.0.0.1:9000 --ocpp-version 2.0.1 --charge

    Exit status 2 when no charger could connect to --target, or --control cannot listen.
    """
    if not target.startswith(("ws://", "wss://")):
        raise click.BadParameter("expected a ws:// or wss:// URL", param_hint="--target")
    try:
        profile = resolve_profile(profile, ocpp_version)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--profile") from None
    timing = ChargerTiming(meter_value_sample_interval=meter_interval)
    if control:
        if charge:
            raise click.UsageError("--charge and --control exclude each other")
        from ocpp_audit.cli.record import parse_control

        host, port = parse_control(control)
        _run_controlled(target, count, profile, id_prefix, duration, auth, connectors, host, port)
        return

    started = time.monotonic()

    def tick(members: list) -> None:
        running = [m.summary() for m in members if not m.error]
        calls = sum(int(s["calls_sent"]) for s in running)
        total = round(duration) if duration else None
        show(round(time.monotonic() - started), total, f"{len(running)} charger(s), {calls} CALLs")

    async def main() -> list:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        return await run_fleet(
            target,
            count=count,
            profile=profile,
            id_prefix=id_prefix,
            duration=duration,
            auth=auth,
            charge=charge,
            connectors=connectors,
            timing=timing,
            stop=stop,
            on_tick=tick,
        )

    with progress("simulating", unit="s") as show:
        members = asyncio.run(main())
    for member in members:
        s = member.summary()
        line = (
            f"{s['charge_point_id']}  {s['profile']}  boots={s['boots']} "
            f"transactions={s['transactions']} calls={s['calls_sent']} errors={s['call_errors']} "
            f"timeouts={s['call_timeouts']} commands={s['commands_answered']}"
        )
        if s["error"]:
            line += f"  not started: {s['error']}"
        click.echo(line)
    if all(member.error for member in members):
        raise InputError(f"no charger could connect to {target}")


def _run_controlled(
    target: str,
    count: int,
    profile: str,
    id_prefix: str,
    duration: float | None,
    auth: tuple[str, str] | None,
    connectors: int,
    host: str,
    port: int,
) -> None:
    """Chargers whose physical steps come from the simulator control, until Ctrl-C or duration."""
    from ocpp_audit.lab.simulator import simulated_charger
    from ocpp_audit.lab.simulator.control import SimulatorControl
    from ocpp_audit.lab.simulator.fleet import charge_point_ids
    from ocpp_audit.lab.simulator.scenario import charger_timing_for_scenario

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        chargers = {
            cp: simulated_charger(
                cp,
                target,
                profile=profile,
                connectors=connectors,
                auth=auth,
                timing=charger_timing_for_scenario(),
            )
            for cp in charge_point_ids(id_prefix, count)
        }
        try:
            await asyncio.gather(*(charger.start() for charger in chargers.values()))
            async with SimulatorControl(chargers, host, port) as control:
                click.echo(
                    f"{count} simulated charger(s) ({profile}) on {target}; "
                    f"control on {control.url}: {', '.join(chargers)}"
                )
                waiter = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter}, timeout=duration)
                waiter.cancel()
        finally:
            await asyncio.gather(*(c.stop() for c in chargers.values()), return_exceptions=True)

    try:
        asyncio.run(main())
    except (OSError, ValueError) as exc:
        raise InputError(f"simulate --control: {exc}") from None
