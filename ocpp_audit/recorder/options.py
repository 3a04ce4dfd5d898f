"""The options every recording engine takes, so `record --engine relay|mitmproxy` behave alike."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

# A mirror's name: letters, digits, '-', '_' and '.', as it appears in the capture's backend column.
MIRROR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class MirrorSpec:
    """A read-only shadow backend (recorder/mirror.py): fed every CALL the chargers send, its
    answers recorded under ``name`` and never delivered."""

    name: str
    url: str  # ws:// or wss://; the charger's path is appended as for the upstream
    # Basic-auth user and password for this mirror; None: the charger's own credentials.
    auth: tuple[str, str] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, position: int = 1) -> MirrorSpec:
        """``URL`` or ``NAME=URL`` (``--mirror``); a URL's ``user:password@`` becomes ``auth``.

        Without a name the mirror is called ``mirror<position>``. Raises ValueError.
        """
        name, sep, url = text.partition("=")
        if not sep or "://" in name:
            name, url = f"mirror{position}", text
        if not MIRROR_NAME.match(name):
            raise ValueError(
                f"mirror name {name!r}: letters, digits, '-', '_' and '.' only (up to 64)"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"mirror {name}: expected a ws:// or wss:// URL")
        auth = None
        if "@" in parts.netloc:
            user_info, _, host = parts.netloc.rpartition("@")
            user, _, password = user_info.partition(":")
            auth = (unquote(user), unquote(password))
            url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        return cls(name, url, auth)


# Frames up to 16 MiB pass; a larger one closes the connection with 1009 (RFC 6455 7.4.1:
# "1009 indicates that an endpoint is terminating the connection because it has received a message
# that is too big for it to process").
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024

# What all connections from one address may make the relay hold (recorder/budget.py): far above what
# chargers hold in flight (a message is a few KB; a thousand chargers behind one NAT address, each
# with a message in the relay, hold a few MB), far below what a deflate bomb would take.
DEFAULT_ADDRESS_BUDGET_BYTES = 64 * 1024 * 1024


@dataclass
class RecordOptions:
    capture_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 0  # 0: let the OS choose; the engine reports the bound port
    upstream: str | None = None  # ws:// or wss:// URL of the backend; None with standalone
    standalone: bool = False  # answer chargers with the built-in central system
    engine: Literal["relay", "mitmproxy"] = "relay"
    tls_cert: Path | None = None  # serve wss to chargers
    tls_key: Path | None = None
    upstream_ca: Path | None = None  # CA bundle to verify a wss upstream
    insecure_upstream: bool = False  # do not verify the upstream certificate (explicit opt-in)
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    # Message bytes all connections from one remote address may make the relay hold before they
    # stop reading (recorder/budget.py); 0: no limit.
    address_budget_bytes: int = DEFAULT_ADDRESS_BUDGET_BYTES
    rotate_seconds: float = 300.0  # seal the journal into a Parquet part at least this often
    rotate_bytes: int = 64 * 1024 * 1024  # ... or when the journal grows past this size
    on_write_error: Literal["continue", "close"] = "continue"
    open_timeout: float = 10.0  # how long to wait for the backend's handshake answer
    # The control API (recorder/control.py): off unless a host is given; loopback only for now.
    control_host: str | None = None
    control_port: int = 9001  # 0: any free port
    control_token: str | None = field(default=None, repr=False)  # None: generate one at start
    # Sealed parts go to this object store location (s3://bucket/prefix, capture/remote.py);
    # capture_dir is then the local folder of the journal and of parts not uploaded yet.
    capture_url: str | None = None
    # Remove sealed parts of days older than this many days, every hour (capture/retention.py).
    retain_days: int | None = None
    # Prometheus metrics, /healthz and /readyz (recorder/metrics.py): off unless a host is given.
    metrics_host: str | None = None
    metrics_port: int = 9464  # 0: any free port
    # Built-in firmware (HTTP) and diagnostics (FTP) endpoints (recorder/endpoints.py) for the
    # guided run: off unless a host is given; ports 0 = any free port.
    endpoints_host: str | None = None
    firmware: Path | None = None  # the file served for UpdateFirmware (None: a generated image)
    http_port: int = 0
    ftp_port: int = 0
    # The control API and the firmware endpoint close a connection that sends nothing for this
    # long (before, between or in the middle of requests); ocpp_audit.web.DEFAULT_IDLE_TIMEOUT_S.
    http_idle_timeout: float = 30.0
    # Replace idTags in the capture (never on the wire) by HMAC-SHA256 under this key; see
    # recorder/pseudonymise.py. Kept out of repr so it never reaches a log line.
    pseudonymise_key: bytes | None = field(default=None, repr=False)
    # Read-only shadow backends (recorder/mirror.py), each fed every CALL the chargers send.
    mirrors: tuple[MirrorSpec, ...] = ()
    # CALLs waiting per charger and mirror (beyond, a gap row counts them): held in memory, so at
    # most chargers x mirrors x mirror_queue CALLs while a mirror is down.
    mirror_queue: int = 100
    mirror_answer_timeout: float = 30.0  # seconds a mirror has to answer one CALL
    mirror_backoff: float = 1.0  # first wait before reconnecting a mirror, doubled up to ...
    mirror_backoff_max: float = 60.0
