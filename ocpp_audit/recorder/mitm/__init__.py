"""The mitmproxy engine's addons, one module per concern, as mitmproxy's own addons are.

- upstream_path.py: ``ocpp_upstream_path``, the path prefix mitmproxy's reverse mode cannot take;
- idle_timeout.py: ``ocpp_idle_timeout`` replaces mitmproxy's 600 s idle cut-off (0: none);
- handshake_timeout.py: ``ocpp_handshake_timeout`` closes a connection not a WebSocket in time;
- frame_limit.py: ``ocpp_max_frame_bytes``, larger messages close the connection with 1009;
- control_frames.py: a ``ping`` or ``pong`` row for each WebSocket ping and pong (mitmproxy
  forwards them itself and only logs them);
- recording.py: the rows of each charger connection (open, message, close, refused), with
  injection.py (the control API's CALLs) and websocket_close.py (closing from the proxy);
- capture_file.py: ``capture_dir`` and the writer's life cycle under ``mitmdump``.

:class:`OcppCapture` holds them in that order in ``addons``, which mitmproxy walks for every hook, so
they load as one addon. The engine (``mitm_engine.MitmEngine``) hands it its capture writer; under
mitmproxy's own tools this module is the script (its ``addons`` list) and the capture_file addon
opens and closes the writer::

    mitmdump -s ocpp_audit/recorder/mitm/__init__.py --set capture_dir=captures/site-a \\
        --set connection_strategy=lazy --mode reverse:http://csms.example.com:9000
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mitmproxy import http

from ocpp_audit.capture.connection import RowSink
from ocpp_audit.recorder.mitm.capture_file import CaptureFile
from ocpp_audit.recorder.mitm.control_frames import ControlFrames
from ocpp_audit.recorder.mitm.frame_limit import FrameLimit
from ocpp_audit.recorder.mitm.handshake_timeout import HandshakeTimeout
from ocpp_audit.recorder.mitm.idle_timeout import IdleTimeout
from ocpp_audit.recorder.mitm.injection import MitmInjection
from ocpp_audit.recorder.mitm.recording import Recording
from ocpp_audit.recorder.mitm.upstream_path import UpstreamPath

if TYPE_CHECKING:
    from ocpp_audit.recorder.mirror import MirrorHub

__all__ = ["OcppCapture", "addons"]


class OcppCapture:
    """Records every OCPP-J WebSocket connection through mitmproxy into a capture.

    ``writer``: where rows go; when None, the capture_file addon opens one on ``capture_dir`` in
    ``running`` and closes it in ``done``. The order of ``addons`` matters: the path is rewritten
    before anything reads it, the frame limit drops a message before it is recorded, and the
    recording writes the close rows of live connections (done) before the writer is closed.
    """

    def __init__(self, writer: RowSink | None = None, mirrors: MirrorHub | None = None) -> None:
        self.capture_file = CaptureFile(writer)
        self.injection = MitmInjection()
        self.recording = Recording(self.capture_file, self.injection, mirrors)
        self.addons = [
            UpstreamPath(),
            IdleTimeout(),
            HandshakeTimeout(),
            FrameLimit(self.recording.close),
            self.recording,
            ControlFrames(self.recording.recorder_of_client),
            self.capture_file,
        ]
        self.registry = self.injection.registry  # live chargers, for injected CALLs (control API)

    def live_flows(self) -> list[http.HTTPFlow]:
        """The WebSocket flows that are open now."""
        return self.recording.live_flows()

    def close(self, flow: http.HTTPFlow, code: int, reason: str) -> bool:
        """Close both hops of a live WebSocket with ``code``; False if it is not open any more."""
        return self.recording.close(flow, code, reason)


addons = [OcppCapture()]
