"""``ocpp-audit acceptance``: the guided run of the script's 16 functions against one charger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ocpp_audit.analyser.render.table import written
from ocpp_audit.analyser.report import FORMATS, render
from ocpp_audit.cli.control_options import control_options, control_url, read_token, unreachable
from ocpp_audit.cli.errors import InputError
from ocpp_audit.cli.output import emit, output_options

if TYPE_CHECKING:
    from ocpp_audit.recorder.control import ControlClient


@click.command()
@click.argument("charge_point_id")
@control_options
@click.option(
    "--auto",
    is_flag=True,
    help="A simulated charger: physical steps go through the simulator's control.",
)
@click.option(
    "--simulator-control",
    default="http://127.0.0.1:9101",
    show_default=True,
    metavar="URL",
    help="With --auto: `ocpp-audit simulate --control`'s URL (a bare port means 127.0.0.1).",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    type=click.IntRange(1, 16),
    metavar="N",
    help="Skip function N's steps (repeatable); its verdict is NOT_OBSERVED.",
)
@click.option(
    "--valid-id-tag",
    default="ACCEPTANCE-OK",
    show_default=True,
    help="idTag of a card the backend accepts (the card you will swipe).",
)
@click.option(
    "--unknown-id-tag",
    default="ACCEPTANCE-UNKNOWN",
    show_default=True,
    help="idTag of a card the backend does not know.",
)
@click.option(
    "--offline-minutes",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="How long the network stays out during function 14 (a person; --auto uses seconds).",
)
@click.option(
    "--step-timeout",
    type=click.FloatRange(min=1),
    default=None,
    metavar="S",
    help="How long to wait for each expected message [default: 300 with a person, 10 --auto].",
)
@output_options(
    FORMATS, "table", output_flags=("--report",), output_help="Also write the report to FILE."
)
def acceptance(
    charge_point_id: str,
    control: str,
    token: str | None,
    token_file: Path | None,
    auto: bool,
    simulator_control: str,
    skip: tuple[int, ...],
    valid_id_tag: str,
    unknown_id_tag: str,
    offline_minutes: float,
    step_timeout: float | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Walk the 16 acceptance functions against one connected charger, then judge the run.

    Needs a recorder with the control API (and, for functions 12 and 13, the endpoints):
    `ocpp-audit record ... --control 9001 --endpoints 127.0.0.1`. Commands go through the control
    API; for physical steps you are told what to do at the charger (type s to skip the step, a to
    abort). At the end the run's slice of the capture is judged with the same rules as `analyse`.
    Exit status 1 when an error rule fails; 2 on usage or input errors: a control API (or
    --simulator-control) that cannot be reached, a token it refuses, a charger not connected.

    \b
    Examples:
      ocpp-audit acceptance CP-0042 --token-file captures/lab/control-token \\
          --valid-id-tag 04A2B3C4 --unknown-id-tag DEADBEEF --report cp-0042.md -f markdown
      ocpp-audit acceptance LAB001 --token-file captures/lab/control-token --auto \\
          --simulator-control 9101
    """
    from ocpp_audit.lab.acceptance import AutoCharger, PromptedCharger, Prompts, run_guided
    from ocpp_audit.recorder.control import ControlClient

    client = ControlClient(control_url(control), read_token(token, token_file))
    check_connected(client, charge_point_id)  # before the run: a typo is not a failed charger
    if auto:
        check_simulator(control_url(simulator_control), charge_point_id)

    def say(message: str) -> None:
        click.echo(message, err=True)

    timing: dict[str, object] = {
        "valid_id_tag": valid_id_tag,
        "rejected_id_tag": unknown_id_tag,
    }
    if auto:
        charger: object = AutoCharger(charge_point_id, control_url(simulator_control))
        if step_timeout is not None:
            timing["step_timeout"] = step_timeout
    else:
        charger = PromptedCharger(charge_point_id, lambda m: say(f"  >>> {m}"), client)
        timing.update(
            step_timeout=step_timeout or 300.0,
            reboot_timeout=max(300.0, step_timeout or 0),
            offline_seconds=offline_minutes * 60,
            max_connection_timeout=600.0,
        )

    async def main():  # type: ignore[no-untyped-def]
        prompts = None if auto else Prompts.from_stream()
        return await run_guided(
            client,
            charge_point_id,
            charger,  # type: ignore[arg-type]
            skip=skip,
            progress=say,
            prompts=prompts,
            **timing,
        )

    try:
        run = asyncio.run(main())
    except LookupError as exc:
        raise InputError(str(exc).strip("'\"")) from None
    except (ConnectionError, OSError) as exc:  # the recorder or simulator went away mid-run
        raise InputError(f"cannot run: {exc}") from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted") from None
    assert run.report is not None
    text = render(run.report, fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        emit(text, output)
        say(f"Wrote {output} ({fmt}): {written(run.report)}")
    failed = [s for s in run.steps if s.status == "failed"]
    say(
        f"{len(run.steps)} steps: {sum(s.status == 'done' for s in run.steps)} done, "
        f"{len(failed)} failed, {sum(s.status == 'skipped' for s in run.steps)} skipped"
        + (", aborted" if run.aborted else "")
        + f"; capture {run.capture_dir}"
    )
    raise SystemExit(run.report.exit_status)


def check_connected(client: ControlClient, charge_point_id: str) -> None:
    """Exit 2 unless the control API answers, takes the token and has the charger connected."""
    try:
        status, document = client.chargers()
    except OSError as exc:
        raise unreachable("the control API", client.url, exc) from None
    if status == 401:
        raise InputError(f"the control API at {client.url} refused the token")
    if status != 200:
        raise InputError(f"control API at {client.url}: {document.get('error', f'HTTP {status}')}")
    connected = sorted(str(c.get("charge_point_id")) for c in document.get("chargers", []))
    if charge_point_id not in connected:
        there = ", ".join(connected) if connected else "none"
        raise InputError(
            f"charger {charge_point_id!r} is not connected to the recorder at {client.url}; "
            f"connected: {there}"
        )


def check_simulator(url: str, charge_point_id: str) -> None:
    """--auto: exit 2 unless the simulator control answers and simulates the charger."""
    from ocpp_audit.lab.simulator.control import AsyncSimulatorControlClient

    client = AsyncSimulatorControlClient(url)
    try:
        status, document = asyncio.run(client.request("GET", "/chargers", None, 10))
    except OSError as exc:
        raise unreachable("the simulator control", url, exc) from None
    simulated = document.get("chargers", []) if status == 200 else []
    ids = sorted(str(charger.get("charge_point_id")) for charger in simulated)
    if charge_point_id not in ids:
        raise InputError(
            f"the simulator control at {url} does not simulate {charge_point_id!r}; "
            f"it simulates: {', '.join(ids) or 'none'}"
        )
