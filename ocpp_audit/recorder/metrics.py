"""Operations: Prometheus metrics, and the health checks an orchestrator asks, on one HTTP port.

``record --metrics HOST:PORT`` serves, with ``prometheus_client`` (never a hand-written format):

- ``/metrics``: the Prometheus text format (metric names below, documented in the README);
- ``/healthz``: 200 while the process runs;
- ``/readyz``: 200 when the recorder listens, the capture writer is not failing and a journal
  can be written in the capture folder now; else 503 with the reasons, one per line.

Counting costs the charger nothing it can notice: every row both engines write goes through
:class:`MetricsSink` (one wrapper around the capture writer, so neither engine has its own
counting code), which reads the row it is handed and adds to plain integers in a dict: 2.3 us a
row and 0.9 us a latency observation here, against 10 and 4 us through ``prometheus_client``'s
own Counter and Histogram, which take a lock per increment. Those, and what only the writer or the engine knows (journal bytes not sealed, chargers
connected), become Prometheus samples when Prometheus scrapes, in :class:`_StateCollector`.

Each :class:`RecorderMetrics` has its own registry, so several recorders in one process (tests)
never share counters.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from aiohttp import web

    from ocpp_audit.capture.remote import PartUploader
    from ocpp_audit.capture.writer import CaptureWriter

__all__ = ["MetricsSink", "RecorderMetrics", "metrics_application"]

PREFIX = "ocpp_audit"
# Forwarding latency the recorder adds (record, then send): microseconds to a few milliseconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
SEAL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def close_class(code: object) -> str:
    """A close code's class for a label: normal (1000, 1001), abnormal (1006: no close frame),
    protocol (other 1002-1015), application (3000-4999), none."""
    if not isinstance(code, int):
        return "none"
    if code in (1000, 1001):
        return "normal"
    if code == 1006:
        return "abnormal"
    if 1002 <= code <= 1015:
        return "protocol"
    if 3000 <= code <= 4999:
        return "application"
    return "other"


# The per-frame counters: (name, help, label names). They are plain integers in a dict while the
# recorder runs (an increment costs a dict update, no lock: rows are written from the event loop)
# and become Prometheus samples only when scraped (_FrameCollector).
FRAME_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "connections_opened": ("Charger WebSocket connections set up end to end.", ()),
    "connections_closed": (
        "Charger connections that ended, by close code class.",
        ("close_class",),
    ),
    "connections_refused": (
        "Charger handshakes refused (the backend refused or could not be reached).",
        (),
    ),
    "frames": (
        "WebSocket messages that crossed the recorder, by direction (those the journal could "
        "not take are also in frames_unrecorded).",
        ("direction",),
    ),
    "frame_bytes": (
        "Bytes of the messages that crossed the recorder, by direction.",
        ("direction",),
    ),
    "frames_malformed": (
        "Messages that are not valid OCPP-J (forwarded unchanged, recorded with the error).",
        ("direction",),
    ),
    "calls": ("CALLs recorded, by action and direction.", ("action", "direction")),
    "callerrors": (
        "CALLERRORs recorded, by the action of the CALL they answer and by direction.",
        ("action", "direction"),
    ),
    "injected_calls": ("CALLs sent by ocpp-audit (active mode) to chargers.", ("action",)),
}


class RecorderMetrics:
    """The recorder's metrics, in a registry of their own."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: a scrape shows what an operator reads
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.seal_duration = Histogram(
            f"{PREFIX}_seal_duration_seconds",
            "Time to seal one journal into Parquet parts.", buckets=SEAL_BUCKETS, registry=r,
        )  # fmt: skip
        self.sealed_rows = Counter(
            f"{PREFIX}_sealed_rows", "Rows sealed into Parquet parts.", registry=r
        )
        # (counter name, *label values) -> count
        self.counts: dict[tuple[str, ...], int] = defaultdict(int)
        # the forwarding latency histogram: per bucket (and +Inf) counts, and the sum
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self._state = _StateCollector(self)
        r.register(self._state)

    def watch(
        self,
        writer: CaptureWriter | None,
        chargers: Callable[[], int] | None = None,
        uploader: Callable[[], PartUploader | None] | None = None,
    ) -> None:
        """Read the writer's state, the number of connected chargers and the uploads to an object
        store at each scrape."""
        self._state.writer = writer
        self._state.chargers = chargers
        self._state.uploader = uploader
        if writer is not None:
            writer.on_sealed = self._sealed

    def _sealed(self, seconds: float, rows: int) -> None:
        self.seal_duration.observe(seconds)
        self.sealed_rows.inc(rows)

    def count_row(self, row: dict[str, object]) -> None:
        """Count what one capture row records."""
        counts = self.counts
        event = row.get("event")
        if event == "message":
            direction = row.get("direction")
            counts["frames", direction] += 1  # type: ignore[index]
            raw = row.get("raw")
            if raw.__class__ is str:
                size = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
            else:
                size = len(row.get("raw_binary") or b"")  # type: ignore[arg-type]
            counts["frame_bytes", direction] += size  # type: ignore[index]
            if row.get("parse_error") is not None:
                counts["frames_malformed", direction] += 1  # type: ignore[index]
                return
            kind = row.get("message_type")
            if kind == 2:
                action = row.get("action") or ""
                counts["calls", action, direction] += 1  # type: ignore[index]
                if row.get("injected") and direction == "cs_to_cp":
                    counts["injected_calls", action] += 1  # type: ignore[index]
            elif kind == 4 or kind == 5:
                counts["callerrors", row.get("action") or "", direction] += 1  # type: ignore[index]
        elif event == "open":
            counts["connections_opened",] += 1
        elif event == "close":
            counts["connections_closed", close_class(row.get("close_code"))] += 1
        elif event == "refused":
            counts["connections_refused",] += 1

    def observe_forward(self, started: float) -> None:
        """A message was handed on; ``started`` is ``time.perf_counter()`` at its arrival."""
        seconds = time.perf_counter() - started
        self.latency_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """What is read at scrape time: the writer's counters and the chargers connected."""

    def __init__(self, metrics: RecorderMetrics) -> None:
        self.metrics = metrics
        self.writer: CaptureWriter | None = None
        self.chargers: Callable[[], int] | None = None
        self.uploader: Callable[[], PartUploader | None] | None = None

    def _frame_counters(self) -> Iterator[Metric]:
        counts = dict(self.metrics.counts)  # a copy: the loop may add keys meanwhile
        for name, (documentation, labels) in FRAME_COUNTERS.items():
            family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))
            if not labels:
                family.add_metric([], counts.get((name,), 0))
            for key, count in sorted(counts.items(), key=lambda item: str(item[0])):
                if key[0] == name and labels:
                    family.add_metric([str(value) for value in key[1:]], count)
            yield family
        buckets = list(self.metrics.latency_buckets)
        cumulative, total = [], 0
        for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], buckets, strict=True):
            total += count
            cumulative.append((bound, total))
        yield HistogramMetricFamily(
            f"{PREFIX}_forward_latency_seconds",
            "Time the recorder adds to a message: from receiving it to handing it to the other "
            "side, recording included.",
            buckets=cumulative,
            sum_value=self.metrics.latency_sum,
        )

    def collect(self) -> Iterator[Metric]:
        yield from self._frame_counters()
        uploader = self.uploader() if self.uploader is not None else None
        if uploader is not None:
            yield CounterMetricFamily(
                f"{PREFIX}_parts_uploaded", "Sealed parts uploaded to the object store.",
                value=uploader.uploaded,
            )  # fmt: skip
            yield CounterMetricFamily(
                f"{PREFIX}_upload_failures",
                "Uploads to the object store that failed (the part stays on disk, retried).",
                value=uploader.failures,
            )  # fmt: skip
            yield GaugeMetricFamily(
                f"{PREFIX}_parts_pending_upload",
                "Sealed parts on local disk waiting for the object store.",
                value=uploader.pending,
            )  # fmt: skip
        if self.chargers is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_chargers_connected", "Chargers connected now.", value=self.chargers()
            )
        writer = self.writer
        if writer is None:
            return
        yield GaugeMetricFamily(
            f"{PREFIX}_journal_unsealed_bytes",
            "Journal bytes not sealed into Parquet parts yet.",
            value=writer.unsealed_bytes,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_capture_write_errors",
            "Journal writes that failed (the disk refused a row).",
            value=writer.write_errors,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_frames_unrecorded",
            "Rows forwarded or closed on but not recorded because the journal write failed "
            "(each burst ends in a gap row).",
            value=writer.unrecorded,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_seal_failures", "Journals whose sealing failed (retried).",
            value=writer.seal_failures,
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{PREFIX}_capture_writable",
            "1 when a journal can be written in the capture folder now, else 0.",
            value=0 if writer.failing else 1,
        )


class MetricsSink:
    """The capture writer, as the engines see it, counting each row it passes on."""

    def __init__(self, sink: Any, metrics: RecorderMetrics) -> None:
        self.sink = sink
        self.metrics = metrics

    def append(self, row: dict[str, object]) -> None:
        self.sink.append(row)  # the journal first ("close" policy: a row it refuses is not
        self.metrics.count_row(row)  # forwarded, and not counted)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


def metrics_application(
    metrics: RecorderMetrics, not_ready: Callable[[], list[str]]
) -> web.Application:
    """``/metrics``, ``/healthz`` and ``/readyz``; ``not_ready()`` lists what is wrong (empty:
    ready)."""
    from aiohttp import web

    async def scrape(request: web.Request) -> web.Response:
        body = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        problems = not_ready()
        if problems:
            return web.Response(
                status=503, text="not ready\n" + "".join(f"{p}\n" for p in problems)
            )
        return web.Response(text="ready\n")

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
