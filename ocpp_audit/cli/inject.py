"""``ocpp-audit inject``: send one server-initiated CALL to a charger through a recorder's control API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ocpp_audit.cli.control_options import (
    control_options,
    control_url,
    read_token,
    unreachable,
)
from ocpp_audit.cli.errors import InputError


def parse_payload(action: str, payload_json: str) -> dict[str, Any]:
    """The payload as a dict, refused (exit 2) when it is not JSON or breaks the action's schema."""
    try:
        payload = json.loads(payload_json)
    except ValueError as exc:
        raise InputError(f"PAYLOAD_JSON is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InputError("PAYLOAD_JSON must be a JSON object")
    from ocpp_audit.protocol.constants import OcppVersion, actions
    from ocpp_audit.recorder.injection import schema_complaint

    # Which version the charger speaks only the recorder knows (it checks the payload against that
    # version's schema before sending): here a payload no version accepts is refused at once, with
    # the complaint of the first version that has the action.
    complaints = {version: schema_complaint(action, payload, version) for version in OcppVersion}
    if all(complaint is not None for complaint in complaints.values()):
        having = [version for version in OcppVersion if action in actions(version)]
        raise InputError(
            f"invalid payload, nothing sent: {complaints[having[0] if having else OcppVersion.V16]}"
        )
    return payload


@click.command()
@control_options
@click.option(
    "--timeout",
    "call_timeout",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the charger's answer (and for a backend CALL ahead of ours).",
)
@click.argument("charge_point_id")
@click.argument("action")
@click.argument("payload_json", default="{}", required=False)
def inject(
    control: str,
    token: str | None,
    token_file: Path | None,
    call_timeout: float,
    charge_point_id: str,
    action: str,
    payload_json: str,
) -> None:
    """Send ACTION to a connected charger and print its answer as JSON.

    The payload is checked against the JSON schema of ACTION in the OCPP version the charger's
    connection negotiated (1.6, 2.0.1 or 2.1) first; an invalid one is refused and nothing is
    sent. The CALL and its answer are recorded (injected = true); the answer
    never reaches the backend. Exit 0 on a CALLRESULT, 1 on a CALLERROR or no answer in time, 2 on
    a usage error, an unknown charger or an invalid payload.

    \b
    Example:
      ocpp-audit record --standalone --capture captures/lab --control 9001
      ocpp-audit inject --token-file captures/lab/control-token CP001 \\
          ChangeAvailability '{"connectorId": 1, "type": "Inoperative"}'
      ocpp-audit inject --token-file captures/lab/control-token CS201 \\
          ChangeAvailability '{"operationalStatus": "Inoperative", "evse": {"id": 1}}'
    """
    payload = parse_payload(action, payload_json)
    secret = read_token(token, token_file)
    from ocpp_audit.recorder.control import ControlClient

    url = control_url(control)
    client = ControlClient(url, secret)
    try:
        status, answer = client.call(charge_point_id, action, payload, call_timeout)
    except OSError as exc:
        raise unreachable("the control API", url, exc) from None
    if status == 200:
        click.echo(json.dumps(answer, indent=2))
        if answer.get("message_type") != 3:
            raise SystemExit(1)  # a CALLERROR (or a malformed answer) is on stdout
        return
    error = answer.get("error", f"HTTP {status}")
    if status in (502, 504):  # the charger went away, or did not answer in time: its failure
        raise click.ClickException(error)
    if status == 401:
        raise InputError(f"the control API refused the token ({error})")
    raise InputError(error)
