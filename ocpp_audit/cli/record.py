"""``ocpp-audit record``: put the recorder between chargers and a backend, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import re
import signal
import ssl
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from ocpp_audit.cli import config_file
from ocpp_audit.cli.errors import InputError
from ocpp_audit.recorder.engines import ENGINES

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

    from ocpp_audit.lab.central_system import CentralSystemConfig
    from ocpp_audit.recorder.options import RecordOptions

DEFAULT_LISTEN = "127.0.0.1:9000"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9000`` for IPv6, ``:9000`` for every interface) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--listen")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _capture_location(capture: str, journal_dir: Path | None) -> tuple[Path, str | None]:
    """--capture and --journal-dir -> (local folder, object store URI or None); the store is
    checked here, before anything starts, so a wrong bucket or endpoint exits 2 naming it."""
    from ocpp_audit.capture.remote import RemoteCapture, is_remote

    if not is_remote(capture):
        if journal_dir is not None:
            raise click.UsageError("--journal-dir is for a --capture in an object store (s3://...)")
        return Path(capture), None
    if journal_dir is None:
        raise click.UsageError(
            "--capture s3://... needs --journal-dir DIR: the journal stays on local disk"
        )
    remote = RemoteCapture(capture)  # CaptureError (exit 2) when pyarrow cannot open it
    remote.parts()  # lists the prefix: reachable, and the credentials are good
    return journal_dir, capture


def parse_control(value: str, option: str = "--control") -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` -> (host, port); host 127.0.0.1 by default."""
    host, sep, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected [HOST:]PORT, got {value!r}", param_hint=option)
    host = host.strip("[]") if sep and host else "127.0.0.1"
    return host, int(port)


ID_TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")  # OCPP 1.6 7.15


def parse_id_tags(values: tuple[str, ...]) -> dict[str, str] | None:
    """``TAG`` or ``TAG=STATUS`` values -> the central system's idTag table (None: accept all)."""
    if not values:
        return None
    table: dict[str, str] = {}
    for value in values:
        tag, sep, status = value.partition("=")
        status = status if sep else "Accepted"
        if not tag or len(tag) > 20 or status not in ID_TAG_STATUSES:
            raise click.BadParameter(
                f"expected TAG[=STATUS] (TAG up to 20 characters, STATUS one of "
                f"{', '.join(ID_TAG_STATUSES)}), got {value!r}",
                param_hint="--id-tag",
            )
        table[tag] = status
    return table


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    is_eager=True,  # read before the other options, whose defaults it sets
    expose_value=False,
    callback=config_file.load,
    metavar="FILE",
    help="Read options from a TOML file (keys: the long option names, such as listen, upstream, "
    "capture, rotate-seconds); flags given here win. Secrets only from their environment "
    "variables.",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the configuration in force (defaults, --config file, flags) as TOML, secrets "
    "masked, and exit.",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Where chargers connect (port 0: any free port).",
)
@click.option(
    "--upstream",
    metavar="URL",
    help="The backend (ws:// or wss://); the charger's path is appended to its path.",
)
@click.option(
    "--capture",
    "capture_dir",
    required=True,
    metavar="DIR|URI",
    help="Capture folder (Parquet parts under frames/), or an object store location such as "
    "s3://bucket/prefix (with --journal-dir): sealed parts are uploaded there.",
)
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="With --capture s3://...: the local folder of the journal and of parts not uploaded yet.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="relay",
    show_default=True,
    help="Recording engine.",
)
@click.option(
    "--standalone",
    is_flag=True,
    help="No backend: answer chargers with the built-in central system.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certificate (PEM) to serve wss:// to chargers.",
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its key (PEM)."
)
@click.option(
    "--upstream-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA bundle (PEM) to verify a wss:// backend with.",
)
@click.option(
    "--insecure-upstream",
    is_flag=True,
    help="Do not verify the wss:// backend's certificate.",
)
@click.option(
    "--rotate-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seal the journal into a Parquet part at least this often.",
)
@click.option(
    "--rotate-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=64.0,
    show_default=True,
    help="... or when the journal grows past this many MiB.",
)
@click.option(
    "--address-budget-mb",
    type=click.FloatRange(min=0),
    default=64.0,
    show_default=True,
    help="Message data all connections from one remote address may make the recorder hold; "
    "beyond it they stop reading until it is forwarded (0: no limit; relay engine).",
)
@click.option(
    "--on-write-error",
    type=click.Choice(["continue", "close"]),
    default="continue",
    show_default=True,
    help="When the disk fails: keep forwarding unrecorded (a gap row marks the hole), "
    "or close the charger's connection (1011).",
)
@click.option(
    "--pseudonymise-idtags",
    "pseudonymise_key",
    metavar="KEY",
    envvar="OCPP_AUDIT_IDTAG_KEY",
    help="Replace idTags in the capture (never on the wire) by a keyed hash (HMAC-SHA256 under "
    "KEY): the same tag gives the same value. Also read from OCPP_AUDIT_IDTAG_KEY.",
)
@click.option(
    "--control",
    metavar="[HOST:]PORT",
    help="Serve the control API (inject CALLs; see `ocpp-audit inject`) here; host 127.0.0.1 "
    "unless given. A non-loopback host needs --tls-cert/--tls-key: it is then served over https.",
)
@click.option(
    "--metrics",
    metavar="[HOST:]PORT",
    help="Serve Prometheus metrics at /metrics, and /healthz and /readyz for an orchestrator, "
    "here; host 127.0.0.1 unless given (0.0.0.0 for a scraper on another machine).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per log line (time, level, logger, event, charge_point_id) for "
    "log collectors; -v for the connection lines.",
)
@click.option(
    "--retain-days",
    type=click.IntRange(min=1),
    metavar="N",
    help="Remove sealed parts of days older than N days (whole UTC days), at start and hourly; "
    "never the journal. See also `ocpp-audit prune`.",
)
@click.option(
    "--control-token",
    envvar="OCPP_AUDIT_CONTROL_TOKEN",
    help="Bearer token of the control API (also OCPP_AUDIT_CONTROL_TOKEN); by default one is "
    "generated into <capture>/control-token, readable by its owner only.",
)
@click.option(
    "--endpoints",
    "endpoints_host",
    metavar="HOST",
    help="Serve firmware over HTTP and receive diagnostics over FTP on HOST (e.g. 127.0.0.1), "
    "any free ports, for `ocpp-audit acceptance` (UpdateFirmware, GetDiagnostics).",
)
@click.option(
    "--firmware",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="With --endpoints: the firmware file to serve (default: a generated test image).",
)
@click.option(
    "--id-tag",
    "id_tags",
    multiple=True,
    metavar="TAG[=STATUS]",
    help="Standalone: an idTag the central system knows (status Accepted unless given); once "
    "any is given, every other idTag is Invalid. Repeatable. (Default: every idTag Accepted.)",
)
@click.option(
    "--boot-status",
    type=click.Choice(["Accepted", "Pending", "Rejected"]),
    default="Accepted",
    show_default=True,
    help="Standalone: the BootNotification answer.",
)
@click.option(
    "--heartbeat-interval",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Standalone: the heartbeat interval (s) given at boot.",
)
@click.option(
    "--mirror",
    "mirror_texts",
    multiple=True,
    metavar="[NAME=]URL",
    help="A read-only shadow backend (ws:// or wss://, user:password@ for its own credentials): "
    "every charger CALL is also sent there, its answers recorded under NAME (default mirror1, "
    "mirror2, ...) and never delivered. Repeatable. See `ocpp-audit compare`.",
)
@click.option(
    "--mirror-queue",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="CALLs waiting per charger and mirror (held in memory while a mirror is slow or down); "
    "beyond, they are dropped for that mirror and counted in a gap row.",
)
@click.option(
    "--loop",
    "loop_name",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop: auto is uvloop for the relay engine when installed (faster), else asyncio.",
)
def record(
    listen: str,
    upstream: str | None,
    capture_dir: str,
    journal_dir: Path | None,
    engine: str,
    standalone: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    upstream_ca: Path | None,
    insecure_upstream: bool,
    rotate_seconds: float,
    rotate_mb: float,
    address_budget_mb: float,
    on_write_error: str,
    pseudonymise_key: str | None,
    control: str | None,
    metrics: str | None,
    log_format: str,
    retain_days: int | None,
    control_token: str | None,
    endpoints_host: str | None,
    firmware: Path | None,
    id_tags: tuple[str, ...],
    boot_status: str,
    heartbeat_interval: int,
    mirror_texts: tuple[str, ...],
    mirror_queue: int,
    loop_name: str,
    print_config: bool,
) -> None:
    """Record every OCPP-J frame between chargers and a backend into a capture folder.

    Chargers connect to the recorder instead of the backend; each connection is relayed with the
    same path, subprotocol and credentials, and every frame is journalled before it is forwarded.
    SIGINT or SIGTERM closes the chargers with 1001 (going away) and seals the capture.

    \b
    Example:
      ocpp-audit record --listen 0.0.0.0:9000 --upstream ws://csms.example.com:9000 \\
          --capture captures/site-a
      ocpp-audit record --standalone --listen 127.0.0.1:9000 --capture captures/lab
      ocpp-audit record --upstream ws://old-csms:9000 --mirror new=wss://new-csms.example.com/ocpp \
          --capture captures/migration
    """
    if print_config:
        click.echo(config_file.effective(click.get_current_context()), nl=False)
        return
    if log_format == "json":
        import logging

        from ocpp_audit.display import JsonLogFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    if not upstream and not standalone:
        raise click.UsageError("give --upstream URL, or --standalone to answer chargers ourselves")
    local_capture, capture_url = _capture_location(capture_dir, journal_dir)
    if upstream and standalone:
        raise click.UsageError("--upstream and --standalone exclude each other")
    if upstream and urlsplit(upstream).scheme not in ("ws", "wss"):
        from ocpp_audit.recorder.relay import redact_url

        raise click.BadParameter(
            f"expected a ws:// or wss:// URL, got {redact_url(upstream)!r}", param_hint="--upstream"
        )
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    host, port = parse_listen(listen)
    control_host, control_port = parse_control(control) if control else (None, 0)
    metrics_host, metrics_port = parse_control(metrics, "--metrics") if metrics else (None, 0)
    if control_host is not None and tls_cert is None:
        from ocpp_audit.recorder.control import is_loopback

        if not is_loopback(control_host):
            raise click.BadParameter(
                f"{control_host} is not a loopback address: give --tls-cert and --tls-key so the "
                "control API (token included) is served over TLS",
                param_hint="--control",
            )

    if engine == "mitmproxy":  # an optional extra: say so before anything starts
        from ocpp_audit.recorder.engines import EngineUnavailableError, mitm_engine_class

        try:
            mitm_engine_class()
        except EngineUnavailableError as error:
            raise InputError(str(error)) from None

    from ocpp_audit.lab.central_system import CentralSystemConfig
    from ocpp_audit.recorder.options import MirrorSpec, RecordOptions

    mirrors = []
    for position, text in enumerate(mirror_texts, 1):
        try:
            mirrors.append(MirrorSpec.parse(text, position))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--mirror") from None
    names = [mirror.name for mirror in mirrors]
    if len(set(names)) != len(names):
        raise click.BadParameter(
            f"two mirrors have the same name: {', '.join(names)}", param_hint="--mirror"
        )

    options = RecordOptions(
        capture_dir=local_capture,
        capture_url=capture_url,
        listen_host=host,
        listen_port=port,
        upstream=upstream,
        standalone=standalone,
        engine=engine,  # type: ignore[arg-type]
        tls_cert=tls_cert,
        tls_key=tls_key,
        upstream_ca=upstream_ca,
        insecure_upstream=insecure_upstream,
        rotate_seconds=rotate_seconds,
        rotate_bytes=max(1, int(rotate_mb * 1024 * 1024)),
        address_budget_bytes=int(address_budget_mb * 1024 * 1024),
        on_write_error=on_write_error,  # type: ignore[arg-type]
        pseudonymise_key=pseudonymise_key.encode() if pseudonymise_key else None,
        control_host=control_host,
        control_port=control_port,
        control_token=control_token,
        endpoints_host=endpoints_host,
        firmware=firmware,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        retain_days=retain_days,
        mirrors=tuple(mirrors),
        mirror_queue=mirror_queue,
    )
    if id_tags and not standalone:
        raise click.UsageError("--id-tag is for the built-in central system: add --standalone")
    if firmware is not None and not endpoints_host:
        raise click.UsageError("--firmware needs --endpoints HOST")
    config = (
        CentralSystemConfig(
            boot_status=boot_status,
            heartbeat_interval=heartbeat_interval,
            id_tags=parse_id_tags(id_tags),
        )
        if standalone
        else None
    )
    check_tls_files(options)
    try:
        _run_on_loop(_run(options, config), loop_name, engine)
    except OSError as exc:
        raise InputError(cannot_record(exc, options)) from None


# asyncio and uvloop: "error while attempting to bind on address ('127.0.0.1', 9000): ..."
_BIND_ADDRESS = re.compile(r"address \('([^']*)', (\d+)")


def cannot_record(error: OSError, options: RecordOptions) -> str:
    """The one line for a recorder that could not start, naming the address it could not take."""
    if error.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return f"cannot record: {error}"
    found = _BIND_ADDRESS.search(str(error))
    host, port = (found[1], int(found[2])) if found else (options.listen_host, options.listen_port)
    option = "--listen"
    if options.control_host is not None and port == options.control_port != options.listen_port:
        option = "--control"
    if options.metrics_host is not None and port == options.metrics_port != options.listen_port:
        option = "--metrics"
    reason = {
        errno.EADDRINUSE: "address already in use",
        errno.EADDRNOTAVAIL: "not an address of this machine",
        errno.EACCES: "permission denied (a port below 1024?)",
    }[error.errno]
    shown = f"[{host}]" if ":" in host else host
    return f"cannot listen on {shown}:{port} ({option}): {reason}"


def check_tls_files(options: RecordOptions) -> None:
    """Load --tls-cert/--tls-key and --upstream-ca before starting, so that a bad file is named
    (OpenSSL alone says "[SSL] PEM lib (_ssl.c:3905)", naming none) and exits 2."""

    def no_password() -> bytes:
        raise InputError(
            f"--tls-key {options.tls_key}: the key is encrypted; give an unencrypted key "
            "(the recorder runs unattended)"
        )

    if options.tls_cert is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                options.tls_cert, options.tls_key, password=no_password
            )
        except (ssl.SSLError, OSError) as error:
            raise InputError(_tls_problem(options, error)) from None
    if options.upstream_ca is not None:
        try:
            ssl.create_default_context(cafile=str(options.upstream_ca))
        except (ssl.SSLError, OSError) as error:
            raise InputError(
                f"--upstream-ca {options.upstream_ca}: not a PEM CA bundle ({_ssl_reason(error)})"
            ) from None


def _ssl_reason(error: Exception) -> str:
    return getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)


def _tls_problem(options: RecordOptions, error: Exception) -> str:
    """Which of --tls-cert and --tls-key is at fault, as far as OpenSSL lets us tell."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(options.tls_cert))
    except (ssl.SSLError, OSError):
        return f"--tls-cert {options.tls_cert}: not a PEM certificate ({_ssl_reason(error)})"
    if "KEY_VALUES_MISMATCH" in str(error):
        return f"--tls-key {options.tls_key}: not the key of the certificate {options.tls_cert}"
    return f"--tls-key {options.tls_key}: not a PEM private key ({_ssl_reason(error)})"


def _run_on_loop(main: Coroutine[Any, Any, None], loop_name: str, engine: str) -> None:
    """Run on uvloop (the relay does about 1.2x the round trips, bench_proxy) or asyncio's loop."""
    if loop_name == "auto":
        has_uvloop = importlib.util.find_spec("uvloop") is not None
        loop_name = "uvloop" if has_uvloop and engine == "relay" else "asyncio"
    if loop_name == "asyncio":
        asyncio.run(main)
        return
    try:
        import uvloop
    except ImportError:
        main.close()
        raise click.UsageError("--loop uvloop: uvloop is not installed") from None
    uvloop.run(main)


async def _run(options: RecordOptions, config: CentralSystemConfig | None) -> None:
    from ocpp_audit.recorder.service import RecorderService

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    from ocpp_audit.lab.central_system import CentralSystem
    from ocpp_audit.recorder.relay import redact_url

    backend = CentralSystem(config) if options.standalone else None
    async with RecorderService(options, backend, tune_gc=True) as service:
        backend = (
            "built-in central system"
            if service.central_system
            else redact_url(service.upstream or "")
        )
        where = service.options.capture_dir
        if service.uploader is not None:
            where = f"{service.uploader.remote.shown} (journal in {where})"
        click.echo(f"Recording on {service.url} -> {backend}; capture in {where}")
        for mirror in service.mirror_states():
            click.echo(f"Mirroring every charger CALL to {mirror.name} ({mirror.url}), read-only")
        if service.control is not None:
            where = service.control_token_file or "given with --control-token"
            click.echo(f"Control API on {service.control.url} (token: {where})")
        if service.metrics_server is not None:
            url = service.metrics_server.url
            click.echo(f"Metrics on {url}/metrics (health: {url}/healthz, {url}/readyz)")
        if service.endpoints is not None:
            endpoints = service.endpoints
            click.echo(
                f"Firmware on {endpoints.firmware_location}; diagnostics uploads to "
                f"ftp://{endpoints.host}:{endpoints.ftp_port}/ (user name = charge point id)"
            )
        await stopping.wait()
        click.echo("Stopping: closing chargers (1001) and sealing the capture ...", err=True)
    parts = len(service.writer.parts) if service.writer is not None else 0
    where = service.options.capture_dir
    if service.uploader is not None:
        where = service.uploader.remote.shown
        left = service.uploader.pending
        if left:
            where = f"{where} ({left} part(s) still in {service.options.capture_dir})"
    click.echo(f"Capture sealed in {where} ({parts} part(s) written)", err=True)
