"""The recorder service: the capture writer, the built-in central system when standalone, an engine.

    async with RecorderService(options) as service:
        ...  # chargers connect to service.url

Entering starts the writer (sealing any journal a crash left), the built-in central system on
127.0.0.1 port 0 when ``options.standalone`` (it becomes the upstream), then the engine. Leaving
stops them in reverse order and closes the writer, which seals the journal into Parquet parts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ocpp_audit.capture.writer import CaptureWriter
from ocpp_audit.recorder.engines import create_engine
from ocpp_audit.recorder.options import RecordOptions

if TYPE_CHECKING:
    from ocpp_audit.capture.remote import PartUploader
    from ocpp_audit.recorder.control import ControlServer
    from ocpp_audit.recorder.endpoints import FileEndpoints
    from ocpp_audit.recorder.metrics import RecorderMetrics
    from ocpp_audit.recorder.mirror import MirrorHub, MirrorState
    from ocpp_audit.recorder.mitm_engine import MitmEngine
    from ocpp_audit.recorder.relay import RelayEngine
    from ocpp_audit.web import WebServer

logger = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 3600.0  # how often --retain-days looks for expired days
UPLOAD_GRACE_S = 30.0  # at stop, how long the last parts may take to reach the object store

# Garbage collection in a recorder holding thousands of connections: a full collection walks every
# object (about 1.2 s at 10,000 chargers, which every charger then waits through). So the recorder
# turns automatic full collections off and freezes (gc.freeze: out of every later collection; a
# list splice, free) whatever is alive every GC_FREEZE_INTERVAL_S. Young collections keep Python's
# defaults and still free the short-lived cycles of each frame. A connection that closes leaves
# its cycles (about 100 objects) to the one complete collection every GC_FULL_INTERVAL_S, so memory
# stays bounded at the cost of one pause per interval. (Collecting the unfrozen objects every round,
# or raising the young threshold, measured worse: bench/bench_fleet.py, see the commit message.)
# Every second rather than every 5 s: at 9,872 chargers the objects of 5 s of traffic made
# generation-1 collections of 77-93 ms, each charger's worst latency (relay p99 99-103 ms -> 19-28
# ms; 22.9 ms at 0.2 s, so not much more to gain by freezing more often).
GC_FREEZE_INTERVAL_S = 1.0
GC_FULL_INTERVAL_S = 3600.0
GC_THRESHOLD_GEN2 = 1_000_000  # young collections between automatic full ones: never, in effect


def tune_gc() -> None:
    """Collect and freeze what start-up made; automatic full collections off (see gc_maintenance)."""
    gc.collect()
    gc.freeze()
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, GC_THRESHOLD_GEN2)


async def gc_maintenance(
    freeze_interval_s: float = GC_FREEZE_INTERVAL_S, full_interval_s: float = GC_FULL_INTERVAL_S
) -> None:
    """Freeze what is alive every ``freeze_interval_s``; every ``full_interval_s``, unfreeze and
    collect everything first (one full pause), so frozen garbage is freed."""
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(freeze_interval_s)
        started = time.monotonic()
        if started - last_full >= full_interval_s:
            gc.unfreeze()
            found = gc.collect()
            last_full = time.monotonic()
            logger.info(
                "full garbage collection: %d object(s) freed in %.2f s", found, last_full - started
            )
        gc.freeze()


class StandaloneBackend(Protocol):
    """What ``--standalone`` records in front of: a backend the recorder starts and stops itself
    (the lab's built-in central system). The recorder knows it only by this shape, so it never
    imports the lab (which imports the recorder)."""

    url: str

    async def start(self, host: str, port: int) -> None: ...

    async def stop(self) -> None: ...


class RecorderService:
    """Writer + (the standalone backend, when given) + engine, started and stopped together."""

    def __init__(
        self,
        options: RecordOptions,
        backend: StandaloneBackend | None = None,
        *,
        tune_gc: bool = False,
    ) -> None:
        """``backend``: with ``options.standalone``, the backend to start on loopback and record
        in front of (``ocpp_audit.lab.central_system.CentralSystem``). ``tune_gc``: freeze
        long-lived objects and run collections rarely (see ``tune_gc``); process-wide, so for a
        process that runs one recorder (``ocpp-audit record``)."""
        if not options.standalone and not options.upstream:
            raise ValueError("give an upstream URL, or run standalone")
        if options.standalone and backend is None:
            raise ValueError(
                "a standalone recorder needs its backend (the built-in central system)"
            )
        self.options = options
        # the standalone backend; named for what it is in practice, the built-in central system
        self.central_system: Any = backend if options.standalone else None
        self.writer: CaptureWriter | None = None
        self.engine: RelayEngine | MitmEngine | None = None
        self.recovered: list[Path] = []  # parts sealed at start from a journal a crash left
        self.upstream: str | None = options.upstream
        self.url = ""
        self.control: ControlServer | None = None  # the control API, when options.control_host
        self.control_token_file: Path | None = None  # where a generated control token was written
        self.endpoints: FileEndpoints | None = None  # firmware/diagnostics, when endpoints_host
        self.metrics: RecorderMetrics | None = None  # when metrics_host
        self.uploader: PartUploader | None = None  # when the capture is in an object store
        self.metrics_server: WebServer | None = None  # /metrics, /healthz, /readyz
        self.mirrors: MirrorHub | None = None  # the read-only shadow backends, when any
        self._stopped = False
        self._tune_gc = tune_gc
        self._gc_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._gc_threshold = gc.get_threshold()

    async def __aenter__(self) -> RecorderService:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        options = self.options
        self.writer = CaptureWriter(
            options.capture_dir,
            rotate_seconds=options.rotate_seconds,
            rotate_bytes=options.rotate_bytes,
            on_write_error=options.on_write_error,
        )
        # Sealing a crash's journal may take a while; keep the loop free meanwhile.
        self.recovered = await asyncio.to_thread(self.writer.start)
        if options.capture_url is not None:
            from ocpp_audit.capture.remote import PartUploader

            # Sealed parts (and those a stopped recorder left) go to the object store.
            self.uploader = PartUploader(options.capture_url, options.capture_dir)
            self.writer.on_parts = self.uploader.submit
            self.uploader.start()
        if self.recovered:
            logger.info("sealed %d part(s) left by an earlier run", len(self.recovered))
        if self.central_system is not None:
            await self.central_system.start("127.0.0.1", 0)
            self.upstream = self.central_system.url
            options = dataclasses.replace(options, upstream=self.upstream)
        sink = self.writer
        if options.pseudonymise_key:
            from ocpp_audit.recorder.pseudonymise import IdTagPseudonymiser, PseudonymisingSink

            # The engine writes through the pseudonymiser: idTags change in the capture only.
            sink = PseudonymisingSink(self.writer, IdTagPseudonymiser(options.pseudonymise_key))
        if options.metrics_host:
            from ocpp_audit.recorder.metrics import MetricsSink, RecorderMetrics

            # Every row both engines write is counted on its way to the journal.
            self.metrics = RecorderMetrics()
            sink = MetricsSink(sink, self.metrics)
        if options.mirrors:
            from ocpp_audit.recorder.mirror import MirrorHub

            self.mirrors = MirrorHub(options, sink)
        self.engine = create_engine(options, sink, self.mirrors)  # type: ignore[arg-type]
        if self.metrics is not None:
            self._watch_engine(self.engine, self.metrics)
        await self.engine.start()
        scheme = "wss" if options.tls_cert else "ws"
        host = options.listen_host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        self.url = f"{scheme}://{host}:{self.engine.port}"
        if options.endpoints_host:
            await self._start_endpoints(options)
        if options.control_host:
            await self._start_control(options)
        if self.metrics is not None:
            await self._start_metrics(options, self.metrics)
        if options.retain_days is not None:
            self._retention_task = asyncio.create_task(self._retention(options.retain_days))
        if self._tune_gc:
            tune_gc()
            self._gc_task = asyncio.create_task(gc_maintenance())

    async def _retention(self, days: int) -> None:
        """Every RETENTION_INTERVAL_S, remove the sealed days older than ``days``."""
        from ocpp_audit.capture.retention import prune

        while True:
            try:
                await asyncio.to_thread(prune, self.options.capture_dir, days)
            except Exception:  # a failed clean-up never stops the recording
                logger.exception("retention: pruning %s failed", self.options.capture_dir)
            await asyncio.sleep(RETENTION_INTERVAL_S)

    def _watch_engine(self, engine: Any, metrics: RecorderMetrics) -> None:
        metrics.watch(self.writer, lambda: len(engine.registry), lambda: self.uploader)
        if self.options.engine == "relay":
            engine.observe_forward = metrics.observe_forward
        else:  # the mitmproxy engine: its recording addon times each message
            engine.addon.recording.observe_forward = metrics.observe_forward

    async def _start_metrics(self, options: RecordOptions, metrics: RecorderMetrics) -> None:
        from ocpp_audit.recorder.metrics import metrics_application
        from ocpp_audit.web import WebServer

        assert options.metrics_host
        self.metrics_server = WebServer(
            metrics_application(metrics, self.not_ready),
            options.metrics_host,
            options.metrics_port,
            idle_timeout=options.http_idle_timeout,
            name="metrics",
        )
        await self.metrics_server.start()

    def not_ready(self) -> list[str]:
        """Why the recorder is not ready (for /readyz); empty when it is."""
        problems = []
        if self.engine is None or self._stopped:
            problems.append("not listening")
        writer = self.writer
        if writer is None:
            problems.append("no capture writer")
        else:
            if writer.failing:
                problems.append(f"capture {writer.capture_dir}: journal writes are failing")
            reason = writer.writable()
            if reason is not None:
                problems.append(f"capture folder not writable: {reason}")
        return problems

    async def _start_endpoints(self, options: RecordOptions) -> None:
        """HTTP firmware + FTP diagnostics; each finished upload becomes an ``upload`` row."""
        from ocpp_audit.recorder.endpoints import FileEndpoints

        assert options.endpoints_host
        self.endpoints = FileEndpoints(
            options.capture_dir,
            firmware=options.firmware,
            host=options.endpoints_host,
            http_port=options.http_port,
            ftp_port=options.ftp_port,
            on_upload=self._record_upload,
            # FTP logins for connected chargers only (each with its own password for this run)
            accept_login=self._is_connected,
            idle_timeout=options.http_idle_timeout,
        )
        await self.endpoints.start()

    def _is_connected(self, charge_point_id: str) -> bool:
        return self.engine is not None and self.engine.registry.get(charge_point_id) is not None

    def _record_upload(
        self, charge_point_id: str, file_name: str, size: int, content: dict[str, object]
    ) -> None:
        """Write the upload into the capture, on the charger's live connection when it has one."""
        from ocpp_audit.capture.connection import now_us
        from ocpp_audit.capture.schema import Event

        detail = {"file_name": file_name, "size": size, "content": content}
        link = self.engine.registry.get(charge_point_id) if self.engine is not None else None
        if link is not None:
            link.recorder.event(Event.UPLOAD, detail)
        elif self.writer is not None:
            self.writer.append(
                {
                    "event": Event.UPLOAD.value,
                    "ts": now_us(),
                    "charge_point_id": charge_point_id,
                    "detail": json.dumps(detail),
                }
            )

    def mirror_states(self) -> list[MirrorState]:
        """Each mirror's state now (connected, queued, dropped, ...), for the control API and
        metrics; empty without mirrors."""
        return self.mirrors.snapshot() if self.mirrors is not None else []

    async def seal(self) -> None:
        """Rotate the journal and wait until it is sealed, so what was recorded so far is readable."""
        writer = self.writer
        if writer is None:
            return

        def rotate_and_wait() -> None:
            writer.rotate()
            if not writer.wait_sealed(120):
                logger.warning("capture %s: sealing took over 120 s", writer.capture_dir)

        await asyncio.to_thread(rotate_and_wait)

    async def _start_control(self, options: RecordOptions) -> None:
        """The control API; a generated token goes to <capture>/control-token, mode 0600."""
        from ocpp_audit.recorder.control import (
            TOKEN_FILE_NAME,
            ControlServer,
            generate_token,
            is_loopback,
            write_token_file,
        )

        assert self.engine is not None and options.control_host
        token = options.control_token
        if not token:
            token = generate_token()
            self.control_token_file = options.capture_dir / TOKEN_FILE_NAME
            write_token_file(self.control_token_file, token)
        # A non-loopback control API is served over TLS with the recorder's own certificate
        # (--tls-cert/--tls-key); ControlServer refuses a public address without it.
        ssl_context = None
        if options.tls_cert is not None and not is_loopback(options.control_host):
            from ocpp_audit.recorder.relay import server_ssl_context

            ssl_context = server_ssl_context(options)
        self.control = ControlServer(
            self.engine.registry,
            token,
            options.control_host,
            options.control_port,
            ssl_context=ssl_context,
            idle_timeout=options.http_idle_timeout,
        )
        self.control.capture_dir = options.capture_dir
        self.control.seal = self.seal
        self.control.endpoints = self.endpoints
        self.control.mirror_states = self.mirror_states
        await self.control.start()

    async def _stop(self) -> None:
        """Engine, then central system, then the writer; each step runs even if one before fails."""
        if self._stopped:
            return
        self._stopped = True
        if self._retention_task is not None:
            self._retention_task.cancel()
        if self._gc_task is not None:
            self._gc_task.cancel()
            gc.unfreeze()
            gc.set_threshold(*self._gc_threshold)
        engine, central_system, writer = self.engine, self.central_system, self.writer
        try:
            if self.control is not None:
                await self.control.stop()
            if self.control_token_file is not None:
                self.control_token_file.unlink(missing_ok=True)
            if self.endpoints is not None:
                await self.endpoints.stop()
            if self.metrics_server is not None:
                await self.metrics_server.stop()
            if engine is not None:
                await engine.stop()
        finally:
            try:
                if central_system is not None:
                    await central_system.stop()
            finally:
                if writer is not None:
                    await asyncio.to_thread(writer.close)
                if self.uploader is not None:  # the last parts, sealed just now
                    await asyncio.to_thread(self.uploader.stop, UPLOAD_GRACE_S)
