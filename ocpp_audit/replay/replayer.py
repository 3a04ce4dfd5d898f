"""Replaying the charger side of a capture against a backend under test.

Per charger, per recorded connection: connect to the target as that charger (same path, the same
subprotocols offered, Basic auth when given), send the charger's CALLs in their recorded order at
the recorded spacing divided by the speed factor, and wait for each answer (OCPP-J 1.6 section
4.1.1: one CALL outstanding at a time). Chargers replay concurrently.

- transactionId carried forward: the target's StartTransaction answer assigns its own id (OCPP 1.6
  section 4.10); it replaces the recorded id in that transaction's later MeterValues and
  StopTransaction. On an OCPP 2.0.1 or 2.1 connection the transactionId is the charger's own
  (TransactionEventRequest transactionInfo.transactionId, E01) and every event keeps its seqNo:
  the TransactionEvents go as recorded, nothing is substituted.
- CALLs the target sends are answered with the charger's recorded answer to the same action (the
  n-th CALL of an action gets the n-th recorded answer, the last one again after that), else with
  CALLERROR NotImplemented (OCPP-J 1.6 section 4.2.3: "Requested Action is not known by receiver").

The replay is recorded on the replaying side with :class:`ConnectionRecorder` and
:class:`CaptureWriter`: the capture then holds exactly what this charger sent and received, with no
relay hop added to the latencies, and the target URL can be anything the replayer reaches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ocpp_audit.capture.connection import ConnectionRecorder, RowSink
from ocpp_audit.capture.schema import ClosedBy, Direction
from ocpp_audit.capture.writer import CaptureWriter
from ocpp_audit.display import wire_logger
from ocpp_audit.protocol import frames
from ocpp_audit.protocol.answers import (
    DEFAULT_IGNORE,
    Answer,
    Difference,
    IgnorePath,
    TransactionIds,
    compare_answers,
    parse_ignore,
)
from ocpp_audit.protocol.constants import OcppVersion, version_of_subprotocol
from ocpp_audit.protocol.tracker import Answered, CallTracker
from ocpp_audit.replay.script import ChargerScript, ConnectionScript, RecordedCall

__all__ = [
    "CallOutcome",
    "ChargerOutcome",
    "ReplayOptions",
    "ReplayReport",
    "TargetCall",
    "replay",
    "target_url",
]

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024 * 1024


@dataclass
class ReplayOptions:
    target: str  # ws:// or wss:// URL of the backend under test
    speed: float | None = 1.0  # recorded spacing divided by this; None: as fast as possible
    ignore: Sequence[str] = ()  # ignore paths on top of DEFAULT_IGNORE
    auth: tuple[str, str] | None = None  # Basic auth user and password
    answer_timeout: float = 30.0  # seconds to wait for the target's answer to one CALL
    open_timeout: float = 10.0
    capture_dir: Path | None = None  # record the replay here; None: not recorded

    def ignore_paths(self) -> list[IgnorePath]:
        return [parse_ignore(text) for text in (*DEFAULT_IGNORE, *self.ignore)]


@dataclass
class CallOutcome:
    """One recorded CALL, replayed: the recorded and the target's answers, and how they differ."""

    connection: int  # index of the recorded connection, from 0
    unique_id: str
    action: str
    recorded: Answer | None
    replayed: Answer | None
    recorded_latency_ms: float | None
    replayed_latency_ms: float | None
    differences: list[Difference]
    transaction_id: tuple[object, object] | None = None  # (recorded, sent) when substituted

    def to_dict(self) -> dict[str, object]:
        return {
            "connection": self.connection,
            "unique_id": self.unique_id,
            "action": self.action,
            "recorded": None if self.recorded is None else self.recorded.to_dict(),
            "replayed": None if self.replayed is None else self.replayed.to_dict(),
            "recorded_latency_ms": self.recorded_latency_ms,
            "replayed_latency_ms": self.replayed_latency_ms,
            "transaction_id": None
            if self.transaction_id is None
            else {"recorded": self.transaction_id[0], "sent": self.transaction_id[1]},
            "differences": [d.to_dict() for d in self.differences],
        }


@dataclass
class TargetCall:
    """A CALL the target sent to the replaying charger, and how it was answered."""

    unique_id: str
    action: str
    answered_with: str  # "recorded CALLRESULT" | "recorded CALLERROR <code>" | "NotImplemented"

    def to_dict(self) -> dict[str, object]:
        return {
            "unique_id": self.unique_id,
            "action": self.action,
            "answered_with": self.answered_with,
        }


@dataclass
class ChargerOutcome:
    charge_point_id: str
    calls: list[CallOutcome] = field(default_factory=list)
    target_calls: list[TargetCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # refused handshakes, early closes
    skipped: int = 0  # recorded binary charger frames, not replayed

    @property
    def differences(self) -> int:
        return sum(len(call.differences) for call in self.calls) + len(self.problems)

    def to_dict(self) -> dict[str, object]:
        return {
            "charge_point_id": self.charge_point_id,
            "differences": self.differences,
            "problems": list(self.problems),
            "skipped_frames": self.skipped,
            "calls": [call.to_dict() for call in self.calls],
            "target_calls": [call.to_dict() for call in self.target_calls],
        }


@dataclass
class ReplayReport:
    target: str
    speed: float | None
    ignore: list[str]
    chargers: list[ChargerOutcome]
    capture_dir: Path | None = None

    @property
    def differences(self) -> int:
        return sum(charger.differences for charger in self.chargers)

    def to_dict(self) -> dict[str, object]:
        return {
            "format_version": 1,
            "target": self.target,
            "speed": "max" if self.speed is None else self.speed,
            "ignore": list(self.ignore),
            "capture": None if self.capture_dir is None else str(self.capture_dir),
            "differences": self.differences,
            "chargers": [charger.to_dict() for charger in self.chargers],
        }


def target_url(target: str, charge_point_id: str, recorded_path: str | None) -> str:
    """The URL to connect to as a charger.

    A target without a path (``ws://host:9000``) gets the recorded request path as it was
    (``/ocpp/CP001?x=1``); a target with a path (``ws://host:9000/ocpp``) gets the charge point id
    appended (OCPP-J 1.6 section 3.1.1: the URL ends with the charge point's identity).
    """
    parts = urlsplit(target)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"target {target!r}: give a ws:// or wss:// URL")
    if parts.path.strip("/") or not recorded_path:
        path = f"{parts.path.rstrip('/')}/{quote(charge_point_id, safe='')}"
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return f"{parts.scheme}://{parts.netloc}/{recorded_path.lstrip('/')}"


def _answer_of(frame: frames.CallResult | frames.CallError) -> Answer:
    if isinstance(frame, frames.CallError):
        return Answer(4, frame.error_details, frame.error_code, frame.error_description)
    return Answer(3, frame.payload)


class _ChargerReplay:
    def __init__(
        self,
        script: ChargerScript,
        options: ReplayOptions,
        ignore: list[IgnorePath],
        sink: RowSink | None,
        clock_origin: tuple[float, int],
    ) -> None:
        self.script = script
        self.options = options
        self.ignore = ignore
        self.sink = sink
        self.clock_origin = clock_origin  # (loop time, recorded µs) that coincide
        self.outcome = ChargerOutcome(script.charge_point_id, skipped=script.skipped)
        self.transaction_ids = TransactionIds()  # recorded id -> the target's (1.6)
        self.backend_assigns_ids = True  # False on a 2.0.1 / 2.1 connection: the charger's ids
        self.answers_used: dict[str, int] = {}
        # The connection being replayed: its CALLs in flight, each tagged with its waiter.
        self.tracker = CallTracker()

    async def _wait_until(self, recorded_us: int) -> None:
        if self.options.speed is None:
            return
        loop = asyncio.get_running_loop()
        start, origin_us = self.clock_origin
        due = start + (recorded_us - origin_us) / 1e6 / self.options.speed
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _headers(self) -> dict[str, str]:
        if self.options.auth is None:
            return {}
        user, password = self.options.auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    async def run(self) -> ChargerOutcome:
        for index, connection in enumerate(self.script.connections):
            await self._wait_until(connection.opened_us)
            await self._replay_connection(index, connection)
        return self.outcome

    async def _replay_connection(self, index: int, script: ConnectionScript) -> None:
        charge_point_id = self.script.charge_point_id
        url = target_url(self.options.target, charge_point_id, script.path)
        request_path = urlsplit(url).path + (
            f"?{urlsplit(url).query}" if urlsplit(url).query else ""
        )
        headers = self._headers()
        recorder = ConnectionRecorder(self.sink, charge_point_id) if self.sink is not None else None
        self.tracker = CallTracker()
        try:
            websocket = await connect(
                url,
                subprotocols=script.subprotocols or None,  # type: ignore[arg-type]
                additional_headers=headers,
                open_timeout=self.options.open_timeout,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                proxy=None,
                logger=wire_logger(__name__ + ".wire"),  # no Basic-auth header or frame at -vv
            )
        except (OSError, TimeoutError, InvalidHandshake) as error:
            status = error.response.status_code if isinstance(error, InvalidStatus) else 502
            reason = f"HTTP {status}" if isinstance(error, InvalidStatus) else str(error)
            self.outcome.problems.append(f"connection {index}: {url}: {reason}")
            if recorder is not None:
                recorder.refused(
                    path=request_path,
                    http_status=status,
                    reason=reason,
                    subprotocols_offered=script.subprotocols,
                    authorization=headers.get("Authorization"),
                    tls=url.startswith("wss:"),
                )
            for call in script.calls:
                self._outcome(index, call, None, None, None)
            return
        # OCPP-J section 3.1.2: the subprotocol the target chose is the version spoken.
        self.backend_assigns_ids = version_of_subprotocol(websocket.subprotocol) in (
            None,
            OcppVersion.V16,
        )
        if recorder is not None:
            local = websocket.local_address
            recorder.opened(
                path=request_path,
                subprotocols_offered=script.subprotocols,
                subprotocol=websocket.subprotocol,
                remote_address=f"{local[0]}:{local[1]}" if local else None,
                authorization=headers.get("Authorization"),
                tls=url.startswith("wss:"),
            )
        receiver = asyncio.create_task(self._receive(websocket, recorder))
        closed_early = False
        try:
            for call in script.calls:
                await self._wait_until(call.ts_us)
                if receiver.done() and not closed_early:
                    closed_early = True
                    self.outcome.problems.append(
                        f"connection {index}: closed by the target "
                        f"(code {websocket.close_code}) before the replay of it ended"
                    )
                await self._send_call(index, call, websocket, recorder)
        finally:
            closed_by_target = receiver.done()
            await websocket.close(1000, "replay done")
            await asyncio.gather(receiver, return_exceptions=True)
            if recorder is not None:
                recorder.closed(
                    websocket.close_code if closed_by_target else 1000,
                    websocket.close_reason if closed_by_target else "replay done",
                    ClosedBy.BACKEND if closed_by_target else ClosedBy.CHARGER,
                )

    async def _send_call(
        self,
        index: int,
        call: RecordedCall,
        websocket: ClientConnection,
        recorder: ConnectionRecorder | None,
    ) -> None:
        payload_json = call.payload_json
        payload = call.payload
        # 1.6: the backend assigns transaction ids; 2.0.1 and 2.1 keep the charger's own.
        substituted = (
            self.transaction_ids.substitute(call.action, payload)
            if self.backend_assigns_ids
            else None
        )
        if substituted is not None:
            payload_json = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        if call.malformed_raw is not None:
            text = call.malformed_raw
        else:
            text = f"[2,{json.dumps(call.unique_id)},{json.dumps(call.action)},{payload_json}]"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        replayed: Answer | None = None
        latency_ms: float | None = None
        try:
            frame = (
                recorder.message(Direction.CP_TO_CS, text)
                if recorder is not None
                else frames.parse(text)
            )
            # A CALL whose unique id can be read is in flight, malformed or not (section 4.2.3).
            self.tracker.feed(Direction.CP_TO_CS, frame, tag=future)
            sent_at = loop.time()
            await websocket.send(text)
            if call.expects_answer:
                replayed = await asyncio.wait_for(future, self.options.answer_timeout)
                latency_ms = round((loop.time() - sent_at) * 1000, 3)
        except TimeoutError:
            logger.info("%s: no answer to %s", self.script.charge_point_id, call.action)
        except (ConnectionClosed, ConnectionError):
            pass  # the target closed the connection: no answer
        finally:
            if replayed is None and call.expects_answer:
                # OCPP-J 1.6 section 4.1.1: the next CALL may go once this one "timed out".
                self.tracker.timed_out(Direction.CP_TO_CS, call.unique_id)
        if (
            self.backend_assigns_ids
            and call.action == "StartTransaction"
            and replayed is not None
            and call.answer is not None
        ):
            recorded_tx = call.answer.payload.get("transactionId")
            target_tx = replayed.payload.get("transactionId")
            self.transaction_ids.assigned(recorded_tx, target_tx)
        self._outcome(index, call, replayed, latency_ms, substituted)

    def _outcome(
        self,
        index: int,
        call: RecordedCall,
        replayed: Answer | None,
        latency_ms: float | None,
        substituted: tuple[object, object] | None,
    ) -> None:
        self.outcome.calls.append(
            CallOutcome(
                connection=index,
                unique_id=call.unique_id,
                action=call.action,
                recorded=call.answer,
                replayed=replayed,
                recorded_latency_ms=call.latency_ms,
                replayed_latency_ms=latency_ms,
                differences=compare_answers(call.answer, replayed, self.ignore),
                transaction_id=substituted,
            )
        )

    async def _receive(
        self, websocket: ClientConnection, recorder: ConnectionRecorder | None
    ) -> None:
        try:
            async for message in websocket:
                frame = (
                    recorder.message(Direction.CS_TO_CP, message)
                    if recorder is not None
                    else frames.parse(message)
                )
                event = self.tracker.feed(Direction.CS_TO_CP, frame)
                if isinstance(frame, frames.Call):
                    await self._answer_target_call(frame, websocket, recorder)
                elif isinstance(event, Answered):
                    future = event.call.tag
                    if not isinstance(future, asyncio.Future) or future.done():
                        continue  # the replay stopped waiting for it
                    if isinstance(frame, frames.CallResult | frames.CallError):
                        future.set_result(_answer_of(frame))
                    elif isinstance(frame, frames.Malformed):
                        # A malformed answer is still an answer, and differs from any recorded one.
                        future.set_result(Answer(4, {}, "Malformed", frame.reason))
        except ConnectionClosed:
            pass
        finally:
            # No answer can come any more: the CALL waiting for one ends now, not at its timeout.
            for call in self.tracker.connection_lost():
                future = call.tag
                if isinstance(future, asyncio.Future) and not future.done():
                    future.set_exception(ConnectionError("connection closed"))

    async def _answer_target_call(
        self,
        call: frames.Call,
        websocket: ClientConnection,
        recorder: ConnectionRecorder | None,
    ) -> None:
        recorded = self.script.answers.get(call.action)
        if recorded:
            used = self.answers_used.get(call.action, 0)
            self.answers_used[call.action] = used + 1
            answer = recorded[min(used, len(recorded) - 1)]
            if answer.message_type == 4:
                reply: frames.CallResult | frames.CallError = frames.CallError.create(
                    call.unique_id,
                    answer.error_code or "GenericError",
                    answer.error_description or "",
                    answer.payload,
                )
                answered_with = f"recorded CALLERROR {answer.error_code}"
            else:
                reply = frames.CallResult.create(call.unique_id, answer.payload)
                answered_with = "recorded CALLRESULT"
        else:
            reply = frames.CallError.create(
                call.unique_id, "NotImplemented", f"no recorded answer to {call.action}"
            )
            answered_with = "NotImplemented"
        self.outcome.target_calls.append(TargetCall(call.unique_id, call.action, answered_with))
        text = reply.serialize()
        if recorder is not None:
            recorder.message(Direction.CP_TO_CS, text)
        self.tracker.feed(Direction.CP_TO_CS, reply)
        await websocket.send(text)


async def replay(
    scripts: Sequence[ChargerScript],
    options: ReplayOptions,
    progress: Callable[[int, int, str], None] | None = None,
) -> ReplayReport:
    """Replay each charger's script against ``options.target``; the report of what differed.

    Raises ValueError for a bad target URL or ignore path (before connecting anywhere).
    ``progress(done, total, charge_point_id)`` hears of each charger whose replay finished.
    """
    ignore = options.ignore_paths()
    for script in scripts:
        target_url(options.target, script.charge_point_id, None)
    if options.speed is not None and options.speed <= 0:
        raise ValueError("speed must be a positive factor, or max")
    writer = CaptureWriter(options.capture_dir) if options.capture_dir is not None else None
    if writer is not None:
        await asyncio.to_thread(writer.start)
    try:
        origin_us = min((s.first_us for s in scripts if s.connections), default=0)
        origin = (asyncio.get_running_loop().time(), origin_us)
        runs = [_ChargerReplay(script, options, ignore, writer, origin) for script in scripts]
        finished = 0

        async def run_one(run: _ChargerReplay) -> ChargerOutcome:
            nonlocal finished
            outcome = await run.run()
            finished += 1
            if progress is not None:
                progress(finished, len(runs), run.script.charge_point_id)
            return outcome

        if progress is not None:
            progress(0, len(runs), "")
        outcomes = await asyncio.gather(*(run_one(run) for run in runs))
    finally:
        if writer is not None:
            await asyncio.to_thread(writer.close)
    return ReplayReport(
        target=options.target,
        speed=options.speed,
        ignore=[path.text for path in ignore],
        chargers=list(outcomes),
        capture_dir=options.capture_dir,
    )
