"""``ocpp-audit replay``: replay the charger side of a capture against a backend under test."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from ocpp_audit.capture.parts import CaptureError, check_part
from ocpp_audit.cli.errors import InputError
from ocpp_audit.cli.output import emit, output_options
from ocpp_audit.cli.params import basic_auth
from ocpp_audit.cli.progress import progress
from ocpp_audit.cli.selection import check_found, local_captures, require_parts
from ocpp_audit.replay.compare import parse_ignore
from ocpp_audit.replay.replayer import ReplayOptions
from ocpp_audit.replay.replayer import replay as run_replay
from ocpp_audit.replay.report import FORMATS, render
from ocpp_audit.replay.script import load_scripts


def _speed(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter("a positive factor such as 2 or 0.5, or max") from None
    if not speed > 0:
        raise click.BadParameter("a positive factor such as 2 or 0.5, or max")
    return speed


def _ignore(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for text in value:
        try:
            parse_ignore(text)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


@click.command()
@click.argument("capture", nargs=-1, required=True, type=click.Path())
@click.option("--target", required=True, metavar="URL", help="ws:// or wss:// URL of the backend.")
@click.option(
    "--charger", "chargers", multiple=True, metavar="ID", help="Replay only this charger."
)
@click.option(
    "--speed",
    default="1",
    callback=_speed,
    metavar="FACTOR|max",
    show_default=True,
    help="Recorded spacing divided by FACTOR; max: no waiting between CALLs.",
)
@click.option(
    "--capture",
    "capture_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Record the replay here [default: replay-<UTC time>].",
)
@output_options(
    FORMATS,
    "table",
    output_flags=("-o", "--output", "--report"),
    output_help="Write the report to FILE instead of standard output.",
)
@click.option(
    "--ignore",
    multiple=True,
    callback=_ignore,
    metavar="JSONPATH",
    help="Also ignore this answer field: $.a.b, $.list[*].c, $..anywhere (repeatable).",
)
@click.option(
    "--auth", callback=basic_auth, metavar="USER:PASS", help="HTTP Basic auth for the target."
)
@click.option(
    "--answer-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the target's answer to one CALL.",
)
def replay(
    capture: tuple[str, ...],
    target: str,
    chargers: tuple[str, ...],
    speed: float | None,
    capture_dir: Path | None,
    output: Path | None,
    fmt: str,
    ignore: tuple[str, ...],
    auth: tuple[str, str] | None,
    answer_timeout: float,
) -> None:
    """Replay the charger side of CAPTURE against the backend at --target, and compare answers.

    Each charger connects as it did (same path and subprotocols), sends its recorded CALLs in order
    with the recorded spacing divided by --speed, and waits for each answer. The transactionId the
    target assigns replaces the recorded one in later MeterValues and StopTransaction. CALLs the
    target sends get the charger's recorded answer to that action, else CALLERROR NotImplemented.
    currentTime and transactionId values are never compared; --ignore adds more fields.

    Exit status: 0 when every answer matches, 1 on differences, 2 on usage or input errors (a
    capture or --charger with nothing to replay, a target that cannot be reached).

    \b
    Example:
        ocpp-audit replay captures/lab-good --target ws://127.0.0.1:9000 --speed max
        ocpp-audit replay captures/lab-good --target ws://csms:9000/ocpp --charger LAB-GOOD-01 \\
            --ignore '$.idTagInfo.expiryDate' --format junit --report replay.xml
    """
    if capture_dir is None:
        capture_dir = Path(f"replay-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    capture = tuple(local_captures(capture))
    parts = require_parts(capture)
    for part in parts:
        check_part(part)
    try:
        scripts = load_scripts(list(capture), chargers=chargers)
    except CaptureError:
        check_found(capture, parts, (), chargers=chargers)  # says what the capture holds
        raise
    check_found(capture, parts, {s.charge_point_id for s in scripts}, chargers=chargers)
    options = ReplayOptions(
        target=target,
        speed=speed,
        ignore=ignore,
        auth=auth,
        answer_timeout=answer_timeout,
        capture_dir=capture_dir,
    )
    check_reachable(target, options.open_timeout)
    try:
        from ocpp_audit.recorder.relay import redact_url

        calls = sum(len(c.calls) for s in scripts for c in s.connections)
        pace = "as fast as answers come" if speed is None else f"at {speed:g}x the recorded pace"
        click.echo(
            f"Replaying {len(scripts)} charger(s), {calls} recorded CALL(s) against "
            f"{redact_url(target)}, {pace}",
            err=True,
        )
        with progress("replaying", unit="chargers") as show:
            report = asyncio.run(run_replay(scripts, options, show))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    emit(render(report, fmt), output)
    if output is not None:
        click.echo(
            f"{report.differences} difference(s); report in {output}; "
            f"replay recorded in {capture_dir}",
            err=True,
        )
    sys.exit(1 if report.differences else 0)


def check_reachable(target: str, timeout: float) -> None:
    """Refuse (exit 2) a target nothing listens on, before replaying: a backend that is down is
    a connection error, not one difference per recorded CALL.

    A TCP connection, opened and closed: a target that is up but refuses the WebSocket handshake
    (HTTP 401, 404, ...) is left to the replay, which reports it as a difference of the target.
    """
    from ocpp_audit.recorder.relay import redact_url

    parts = urlsplit(target)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise click.BadParameter("expected a ws:// or wss:// URL", param_hint="--target")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--target") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise InputError(f"cannot connect to the target {redact_url(target)}: {reason}") from None
