"""The mitmproxy engine: mitmproxy in reverse-proxy mode, in-process, recording through the addons of
``ocpp_audit.recorder.mitm`` (``OcppCapture``).

Same shape as :class:`ocpp_audit.recorder.relay.RelayEngine`: ``await start()`` (listening when it
returns), ``port``, ``await stop()``. mitmproxy runs in the running asyncio loop as a ``Master`` with
only the addons a reverse proxy needs (core, proxyserver, next_layer, tlsconfig) plus the capture
addon: no KeepServing, no Block (chargers come from public addresses), no dumper, no termlog.

What maps to what:

- ``upstream`` ``ws://h:p/base`` -> mode ``reverse:http://h:p`` and the addon's
  ``ocpp_upstream_path=/base`` (mitmproxy's reverse mode takes no path); ``wss`` -> ``https``.
- ``connection_strategy=lazy``: the backend is dialled when the charger's handshake arrives, so an
  unreachable backend gives the charger 502 (with ``eager`` mitmproxy would drop the charger's TCP).
- ``tls_cert``/``tls_key`` -> mitmproxy's ``certs`` option (one PEM holding both, written to a
  private temporary folder); ``upstream_ca`` -> ``ssl_verify_upstream_trusted_ca``;
  ``insecure_upstream`` -> ``ssl_insecure``. Upstream certificates are verified by default.

``stop()`` stops listening, then closes each charger with 1001 (going away) and its backend
connection with the same close frame (``OcppCapture.close``, mitm/websocket_close.py: the close is queued on mitmproxy's own
WebSocket layer, so it goes through the TLS layer like any frame); connections that are not gone
within a grace period are cut (1006 for the peer). mitmproxy keeps its state in process-wide globals (``mitmproxy.ctx``), so one MitmEngine
runs per process at a time; a second ``start()`` while one runs raises ``RuntimeError``. After
``stop()`` the next engine starts cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from mitmproxy import options
from mitmproxy.addons import core, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master

from ocpp_audit.capture.writer import CaptureWriter
from ocpp_audit.recorder.mitm import OcppCapture
from ocpp_audit.recorder.options import RecordOptions

if TYPE_CHECKING:
    from ocpp_audit.recorder.mirror import MirrorHub

logger = logging.getLogger(__name__)

# RFC 6455 7.4.1: "1001 indicates that an endpoint is 'going away', such as a server going down".
GOING_AWAY = 1001
STOP_REASON = "recorder stopping"
CLOSE_GRACE_S = 2.0  # how long stop() waits for chargers and backends to finish the close handshake
START_TIMEOUT_S = 30.0


def reverse_mode(upstream: str) -> tuple[str, str]:
    """mitmproxy's ``reverse:`` mode spec and the path prefix for an upstream ws/wss URL.

    ``ws://csms:9000/base`` -> ``("reverse:http://csms:9000", "/base")``.
    """
    url = urlsplit(upstream)
    schemes = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
    if url.scheme not in schemes or not url.hostname:
        raise ValueError(f"upstream must be a ws:// or wss:// URL, got {upstream!r}")
    if url.query or url.fragment:
        raise ValueError(f"upstream must not have a query or fragment: {upstream!r}")
    return f"reverse:{schemes[url.scheme]}://{url.netloc}", url.path.rstrip("/")


class MitmEngine:
    """Records chargers through mitmproxy in reverse-proxy mode, into ``writer``."""

    _running: ClassVar[MitmEngine | None] = None

    def __init__(
        self, options: RecordOptions, writer: CaptureWriter, mirrors: MirrorHub | None = None
    ) -> None:
        if options.upstream is None:
            raise ValueError("the mitmproxy engine needs an upstream (ws:// or wss:// URL)")
        self.options = options
        self.writer = writer
        self.port: int = 0
        self.mirrors = mirrors
        self.addon = OcppCapture(writer, mirrors)
        self.registry = self.addon.registry  # live chargers, for injected CALLs (control API)
        self._master: Master | None = None
        self._proxyserver: proxyserver.Proxyserver | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._running_event = asyncio.Event()
        self._tmpdir: Path | None = None

    async def start(self) -> None:
        """Start mitmproxy in this loop; listening on ``port`` when this returns."""
        if MitmEngine._running is not None:
            raise RuntimeError("a mitmproxy engine is already running in this process")
        mode, upstream_path = reverse_mode(self.options.upstream or "")
        MitmEngine._running = self
        try:
            await self._start(mode, upstream_path)
        except BaseException:
            await self._teardown()
            raise

    async def _start(self, mode: str, upstream_path: str) -> None:
        opts = options.Options()
        master = Master(opts)  # binds mitmproxy.ctx to this master
        self._master = master
        self._proxyserver = proxyserver.Proxyserver()
        master.addons.add(
            core.Core(),
            self._proxyserver,
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            self.addon,
            _RunningSignal(self._running_event),
        )
        updates: dict[str, object] = {
            "mode": [mode],
            "listen_host": self.options.listen_host,
            "listen_port": self.options.listen_port,
            "connection_strategy": "lazy",
            "ocpp_upstream_path": upstream_path,
            "ssl_insecure": self.options.insecure_upstream,
            "ocpp_max_frame_bytes": self.options.max_frame_bytes,
        }
        if self.options.upstream_ca is not None:
            updates["ssl_verify_upstream_trusted_ca"] = str(self.options.upstream_ca)
        if self.options.tls_cert is not None:
            updates["certs"] = [f"*={self._combined_pem()}"]
        opts.update(**updates)

        self._run_task = asyncio.create_task(master.run(), name="mitmproxy master")
        waiter = asyncio.create_task(self._running_event.wait())
        done, _ = await asyncio.wait(
            {self._run_task, waiter}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if self._run_task in done:
            self._run_task.result()  # raises what mitmproxy raised
            raise RuntimeError("mitmproxy stopped while starting")
        if not done:
            raise TimeoutError("mitmproxy did not start listening in time")
        addresses = self._proxyserver.listen_addrs()
        if not addresses:
            errors = [str(s.last_exception) for s in self._proxyserver.servers if s.last_exception]
            raise OSError(errors[0] if errors else "mitmproxy is not listening")
        self.port = addresses[0][1]
        logger.info(
            "mitmproxy engine listening on %s:%d (%s)", self.options.listen_host, self.port, mode
        )

    def _combined_pem(self) -> Path:
        """mitmproxy wants certificate and key in one PEM file: write one only we can read."""
        assert self.options.tls_cert is not None
        key = self.options.tls_key or self.options.tls_cert
        self._tmpdir = Path(tempfile.mkdtemp(prefix="ocpp-audit-mitm-"))
        pem = self._tmpdir / "charger-facing.pem"
        fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Path(self.options.tls_cert).read_bytes().rstrip(b"\n") + b"\n")
            out.write(Path(key).read_bytes())
        return pem

    async def stop(self) -> None:
        """Stop listening, close chargers and backends with 1001, shut mitmproxy down."""
        if MitmEngine._running is not self:
            return
        await self._teardown()

    async def _teardown(self) -> None:
        try:
            ps = self._proxyserver
            if ps is not None and self._running_event.is_set():
                await ps.servers.update([])  # stop accepting chargers
                for flow in self.addon.live_flows():
                    self.addon.close(flow, GOING_AWAY, STOP_REASON)
                await self._wait_for_connections(ps, CLOSE_GRACE_S)
                for handler in list(ps.connections.values()):
                    for io in list(handler.transports.values()):
                        if io.handler is not None:
                            io.handler.cancel("recorder stopping")
                await self._wait_for_connections(ps, CLOSE_GRACE_S)
            if self.mirrors is not None:
                await self.mirrors.stop()
            if self._master is not None and self._run_task is not None:
                self._master.shutdown()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(self._run_task), START_TIMEOUT_S)
                if not self._run_task.done():
                    self._run_task.cancel()
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None
            MitmEngine._running = None

    @staticmethod
    async def _wait_for_connections(ps: proxyserver.Proxyserver, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while ps.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)


class _RunningSignal:
    """Sets an event in mitmproxy's ``running`` hook: the servers are set up (or failed)."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def running(self) -> None:
        self.event.set()
