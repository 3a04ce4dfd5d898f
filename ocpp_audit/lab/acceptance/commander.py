"""A :class:`~ocpp_audit.lab.simulator.scenario.Commander` over the recorder's control API.

Commands are injected (``POST /chargers/<id>/calls``); the charger's CALLs come from the control
API's per-charger feed (``GET /chargers/<id>/messages``, long-polled). A mark is the recorder's
clock in microseconds (the control API listens on loopback, so it is this machine's clock too):
``wait_for_message(after=mark)`` takes only CALLs the recorder logged at or after that instant.

Requests go through the asyncio :class:`AsyncControlClient`, so the event loop stays free (the
recorder may be in this very process, as in the demo) and no thread pool is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ocpp_audit.capture.connection import now_us
from ocpp_audit.protocol import errors
from ocpp_audit.recorder.control import AsyncControlClient

__all__ = ["CallErrorReceived", "ControlCommander", "ControlError"]

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
POLL_S = 5.0  # one long-poll of the messages feed waits at most this long


class ControlError(Exception):
    """The control API refused a request (unknown charger, bad token, ...)."""


class CallErrorReceived(errors.CallErrorReceived):
    """The charger answered an injected CALL with a CALLERROR: the protocol's exception, which the
    built-in central system raises too, so the scenario catches both commanders' as one class."""

    def __init__(self, error_code: str, error_description: str, error_details: Any) -> None:
        super().__init__(error_code, error_description, error_details)
        self.args = (f"CALLERROR {error_code}: {error_description}",)


class ControlCommander:
    """Sends CALLs and waits for charger messages through the control API at ``client.url``."""

    def __init__(self, client: AsyncControlClient) -> None:
        self.client = client

    async def call(
        self, charge_point_id: str, action: str, payload: Payload, timeout: float = 30
    ) -> Payload:
        """Inject one CALL; the CALLRESULT payload, or CallErrorReceived / TimeoutError / ..."""
        try:
            status, answer = await self.client.call(charge_point_id, action, payload, timeout)
        except OSError as exc:
            raise ConnectionError(f"control API at {self.client.url}: {exc}") from exc
        if status == 200:
            if answer.get("message_type") == 3:
                result = answer.get("payload")
                return result if isinstance(result, dict) else {}
            if answer.get("message_type") == 4:
                raise CallErrorReceived(
                    str(answer.get("error_code")),
                    str(answer.get("error_description") or ""),
                    answer.get("error_details"),
                )
            raise ValueError(f"{action}: malformed answer {answer.get('raw')!r}")
        error = answer.get("error", f"HTTP {status}")
        if status == 504:
            raise TimeoutError(error)
        if status == 502:
            raise ConnectionError(error)
        if status == 404:
            raise LookupError(error)
        raise ControlError(f"{action} to {charge_point_id}: {error} (HTTP {status})")

    def mark(self) -> int:
        """Now, in microseconds since the epoch (the recorder's clock: same machine)."""
        return now_us()

    async def wait_for_message(
        self,
        charge_point_id: str,
        action: str,
        *,
        after: int = 0,
        predicate: Callable[[Payload], bool] | None = None,
        timeout: float = 10,
    ) -> Payload:
        """The first ``action`` CALL from the charger logged at or after ``after`` that matches."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cursor = 0
        while True:
            remaining = deadline - loop.time()
            wait = max(0.0, min(POLL_S, remaining))
            try:
                status, document = await self.client.messages(
                    charge_point_id, after=cursor, action=action, wait=wait
                )
            except OSError as exc:
                raise ConnectionError(f"control API at {self.client.url}: {exc}") from exc
            if status != 200:
                raise ControlError(f"messages of {charge_point_id}: {document.get('error')}")
            for message in document.get("messages", []):
                cursor = max(cursor, int(message["index"]) + 1)
                payload = message.get("payload")
                if not isinstance(payload, dict) or int(message.get("ts_us", 0)) < after:
                    continue
                if predicate is None or predicate(payload):
                    return payload
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"no {action} from {charge_point_id} within {timeout:g} s"
                    + (" matching the expected values" if predicate is not None else "")
                )
