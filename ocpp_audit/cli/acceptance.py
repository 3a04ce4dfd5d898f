"""``ocpp-audit acceptance``: the guided run of the script's 16 functions against one charger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ocpp_audit.analyser.report import FORMATS, render
from ocpp_audit.cli.control_options import control_options, control_url, read_token


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
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the report to FILE.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="table",
    show_default=True,
    help="Report format.",
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
    report_file: Path | None,
    fmt: str,
) -> None:
    """Walk the 16 acceptance functions against one connected charger, then judge the run.

    Needs a recorder with the control API (and, for functions 12 and 13, the endpoints):
    `ocpp-audit record ... --control 9001 --endpoints 127.0.0.1`. Commands go through the control
    API; for physical steps you are told what to do at the charger (type s to skip the step, a to
    abort). At the end the run's slice of the capture is judged with the same rules as `analyse`;
    exit code 1 when an error rule fails.

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
        raise click.ClickException(str(exc).strip("'\"")) from None
    except (ConnectionError, OSError) as exc:
        raise click.ClickException(f"cannot run: {exc}") from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted") from None
    assert run.report is not None
    text = render(run.report, fmt)
    click.echo(text, nl=not text.endswith("\n"))
    if report_file is not None:
        try:
            report_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"{report_file}: cannot write: {exc}") from None
        say(f"report written to {report_file}")
    failed = [s for s in run.steps if s.status == "failed"]
    say(
        f"{len(run.steps)} steps: {sum(s.status == 'done' for s in run.steps)} done, "
        f"{len(failed)} failed, {sum(s.status == 'skipped' for s in run.steps)} skipped"
        + (", aborted" if run.aborted else "")
        + f"; capture {run.capture_dir}"
    )
    raise SystemExit(run.report.exit_status)
