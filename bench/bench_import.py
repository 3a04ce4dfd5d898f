"""Benchmark of ``ocpp-audit import``: lines (or packets) per second and peak memory, per format.

For each format a log of about ``--mb`` megabytes is generated in a temporary folder (realistic
OCPP 1.6-J traffic: Boot, Heartbeat, StatusNotification, MeterValues with 12 sampled values,
Start/StopTransaction, each CALL with its answer, from 50 chargers), then imported in a child
process that reports its own time and peak RSS. One format's file exists at a time, and is deleted
after its run.

    .venv/bin/python bench/bench_import.py                # ~300 MB per format
    .venv/bin/python bench/bench_import.py --mb 50        # a shared machine
    .venv/bin/python bench/bench_import.py --mb 2 --formats steve,pcap

Prints a table and writes ``bench/results/import.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"
FORMATS = ("jsonl", "steve", "ocpp-log", "evcc", "microocpp", "libocpp", "pcap", "mitmproxy")
CHARGERS = 50
START = 1_735_689_600.0  # 2025-01-01T00:00:00Z


# -- traffic --------------------------------------------------------------------------------
def _exchanges(rng: random.Random) -> Iterator[tuple[float, str, bool, str]]:
    """(time, charger, from the charger, frame), endlessly: each CALL then its answer."""
    number = 0
    now = START
    energy = dict.fromkeys(range(CHARGERS), 0)
    while True:
        number += 1
        now += rng.random() * 0.05
        charger = rng.randrange(CHARGERS)
        cp = f"CP{charger:05d}"
        uid = f"{number:x}"
        kind = rng.random()
        if kind < 0.55:
            energy[charger] += rng.randrange(50, 500)
            sampled = [
                {
                    "value": f"{rng.uniform(0, 32):.2f}",
                    "context": "Sample.Periodic",
                    "measurand": measurand,
                    "phase": phase,
                    "unit": unit,
                }
                for measurand, unit in (
                    ("Current.Import", "A"),
                    ("Voltage", "V"),
                    ("Power.Active.Import", "W"),
                )
                for phase in ("L1", "L2", "L3")
            ] + [{"value": str(energy[charger]), "measurand": "Energy.Active.Import.Register"}]
            stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            call = [
                2,
                uid,
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": charger + 1,
                    "meterValue": [{"timestamp": stamp, "sampledValue": sampled}],
                },
            ]
            answer: list[object] = [3, uid, {}]
        elif kind < 0.85:
            call = [2, uid, "Heartbeat", {}]
            answer = [3, uid, {"currentTime": datetime.fromtimestamp(now, UTC).isoformat()}]
        elif kind < 0.95:
            status = rng.choice(["Available", "Preparing", "Charging", "Finishing"])
            call = [
                2,
                uid,
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": status},
            ]
            answer = [3, uid, {}]
        else:
            call = [2, uid, "RemoteStartTransaction", {"connectorId": 1, "idTag": "04A2B3C4"}]
            answer = [3, uid, {"status": "Accepted"}]
        from_charger = call[2] != "RemoteStartTransaction"
        yield now, cp, from_charger, json.dumps(call, separators=(",", ":"))
        yield now + 0.01, cp, not from_charger, json.dumps(answer, separators=(",", ":"))


def _local(ts: float, sep: str = "-", fraction: str = ",") -> tuple[str, str]:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime(f"%Y{sep}%m{sep}%d"), moment.strftime("%H:%M:%S") + (
        f"{fraction}{moment.microsecond // 1000:03d}" if fraction else ""
    )


def _text_line(fmt: str, ts: float, cp: str, from_charger: bool, frame: str) -> str:
    if fmt == "jsonl":
        from ocpp_audit.importers.jsonl import export_line

        direction = "cp_to_cs" if from_charger else "cs_to_cp"
        return export_line(datetime.fromtimestamp(ts, UTC), cp, direction, frame, None, None)
    if fmt == "steve":
        day, clock = _local(ts)
        verb = "Received" if from_charger else "Sending"
        return (
            f"[INFO ] {day} {clock} de.rwth.idsg.steve.ocpp.ws.WebSocketLogger - "
            f"[chargeBoxId={cp}, sessionId=s-{cp}] {verb}: {frame}\n"
        )
    if fmt == "ocpp-log":
        day, clock = _local(ts)
        verb = "receive message" if from_charger else "send"
        return f"{day} {clock} INFO ocpp: {cp}: {verb} {frame}\n"
    if fmt == "evcc":
        day, clock = _local(ts, "/", "")
        verb = "recv" if from_charger else "send"
        return f"[ocpp  ] TRACE {day} {clock} {verb} {cp}: {frame}\n"
    if fmt == "microocpp":
        day, clock = _local(ts, "-", ".")
        verb = "Send" if from_charger else "Recv"
        return f"{day} {clock} [MO] {verb}: {frame}\n"
    if fmt == "libocpp":
        stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        pretty = json.dumps(json.loads(frame), indent=2, sort_keys=True)
        head = (
            "ChargePoint>CentralSystem Message "
            if from_charger
            else "CentralSystem>ChargePoint  Message"
        )
        return f"{stamp}: {head}\n{pretty}\n\n"
    raise ValueError(fmt)


def generate(fmt: str, path: Path, size: int, seed: int = 1) -> int:
    """Write about ``size`` bytes of ``fmt`` to ``path``; returns how many frames."""
    rng = random.Random(seed)
    if fmt == "pcap":
        return _generate_pcap(path, size, rng)
    if fmt == "mitmproxy":
        return _generate_flows(path, size, rng)
    frames = 0
    written = 0
    with path.open("w", encoding="utf-8") as stream:
        for ts, cp, from_charger, frame in _exchanges(rng):
            text = _text_line(fmt, ts, cp, from_charger, frame)
            stream.write(text)
            written += len(text)
            frames += 1
            if written >= size:
                return frames
    return frames


def _generate_pcap(path: Path, size: int, rng: random.Random) -> int:
    import dpkt
    from websockets.frames import Frame, Opcode

    seq: dict[tuple[int, bool], int] = {}
    frames = 0

    def packet(charger: int, from_client: bool, flags: int, data: bytes = b"") -> bytes:
        port = 40000 + charger
        key = (charger, from_client)
        tcp = dpkt.tcp.TCP(
            sport=port if from_client else 9000,
            dport=9000 if from_client else port,
            seq=seq[key],
            ack=seq[(charger, not from_client)],
            flags=flags,
            data=data,
        )
        seq[key] = (seq[key] + len(data) + (1 if flags & dpkt.tcp.TH_SYN else 0)) % (1 << 32)
        ip = dpkt.ip.IP(
            src=b"\x0a\x00\x00\x02" if from_client else b"\x0a\x00\x00\x01",
            dst=b"\x0a\x00\x00\x01" if from_client else b"\x0a\x00\x00\x02",
            p=dpkt.ip.IP_PROTO_TCP,
            data=tcp,
        )
        ip.len = len(bytes(ip))
        return bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x00" * 6, data=ip))

    with path.open("wb") as stream:
        writer = dpkt.pcap.Writer(stream)
        for charger in range(CHARGERS):
            seq[(charger, True)], seq[(charger, False)] = 1000, 5000
            cp = f"CP{charger:05d}"
            for from_client, flags, data in (
                (True, dpkt.tcp.TH_SYN, b""),
                (False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, b""),
                (
                    True,
                    dpkt.tcp.TH_ACK,
                    f"GET /ocpp/{cp} HTTP/1.1\r\nHost: csms\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode(),
                ),
                (
                    False,
                    dpkt.tcp.TH_ACK,
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                    b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n",
                ),
            ):
                writer.writepkt(packet(charger, from_client, flags, data), ts=START)
        for ts, cp, from_charger, frame in _exchanges(rng):
            data = Frame(Opcode.TEXT, frame.encode()).serialize(mask=from_charger, extensions=[])
            flags = dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH
            writer.writepkt(packet(int(cp[2:]), from_charger, flags, data), ts=ts)
            frames += 1
            if stream.tell() >= size:
                return frames
    return frames


def _generate_flows(path: Path, size: int, rng: random.Random) -> int:
    from mitmproxy import io
    from mitmproxy.test import tflow
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    frames = 0
    exchanges = _exchanges(rng)
    with path.open("wb") as stream:
        writer = io.FlowWriter(stream)
        while stream.tell() < size:
            flow = tflow.twebsocketflow()
            flow.websocket.messages = []
            for _ in range(2000):
                ts, cp, from_charger, frame = next(exchanges)
                flow.request.path = f"/ocpp/{cp}"
                flow.websocket.messages.append(
                    WebSocketMessage(Opcode.TEXT, from_charger, frame.encode(), ts)
                )
                frames += 1
            writer.add(flow)
    return frames


# -- measuring ------------------------------------------------------------------------------
def _child(fmt: str, log: Path, capture: Path) -> None:
    """Import one file and print what it took (run in its own process: its own peak RSS)."""
    from ocpp_audit.importers import import_files

    lines = 0
    if fmt not in ("pcap", "mitmproxy"):
        with log.open("rb") as stream:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    started = time.perf_counter()
    summary = import_files(
        [log], fmt, capture, chargers=["CP00000"] if fmt in ("microocpp", "libocpp") else ()
    )
    seconds = time.perf_counter() - started
    if fmt == "pcap":
        import dpkt

        with log.open("rb") as stream:
            lines = sum(1 for _ in dpkt.pcap.Reader(stream))
    if fmt == "mitmproxy":
        lines = summary.frames  # messages: a flow file has no lines
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "lines": lines,
                "frames": summary.frames,
                "rows": summary.rows,
                "skipped": sum(summary.skipped.values()),
                "peak_rss_mb": rss_kb / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=300, help="size of each generated log")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--child", nargs=3, metavar=("FORMAT", "LOG", "CAPTURE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    from _procs import print_table, write_result

    results: dict[str, dict[str, float]] = {}
    size = int(args.mb * 1024 * 1024)
    for fmt in args.formats.split(","):
        folder = Path(tempfile.mkdtemp(prefix=f"bench-import-{fmt}-"))
        try:
            log = folder / f"log.{fmt}"
            started = time.perf_counter()
            try:
                frames = generate(fmt, log, size)
            except ImportError as error:
                print(f"{fmt}: skipped ({error})", file=sys.stderr)
                continue
            generated = time.perf_counter() - started
            completed = subprocess.run(
                [sys.executable, __file__, "--child", fmt, str(log), str(folder / "capture")],
                capture_output=True,
                text=True,
                check=False,
            )
            if completed.returncode:
                print(completed.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{fmt}: import failed")
            figures = json.loads(completed.stdout.strip().splitlines()[-1])
            figures["log_mb"] = log.stat().st_size / 1024 / 1024
            figures["lines_per_s"] = figures["lines"] / figures["seconds"]
            figures["frames_per_s"] = figures["frames"] / figures["seconds"]
            figures["mb_per_s"] = figures["log_mb"] / figures["seconds"]
            figures["generated_frames"] = frames
            figures["generate_seconds"] = generated
            results[fmt] = figures
            unit = {"pcap": "packets", "mitmproxy": "messages"}.get(fmt, "lines")
            print(
                f"{fmt:10s} {figures['log_mb']:7.1f} MB  {figures['lines_per_s']:>10,.0f} {unit}/s  "
                f"{figures['frames_per_s']:>9,.0f} frames/s  {figures['mb_per_s']:5.1f} MB/s  "
                f"peak RSS {figures['peak_rss_mb']:6.0f} MB",
                flush=True,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(
        [
            (fmt, f"{r['lines_per_s']:,.0f}/s {r['peak_rss_mb']:.0f} MB")
            for fmt, r in results.items()
        ],
        value_width=24,
    )
    write_result(
        {
            "benchmark": "import",
            "mb_per_format": args.mb,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "results": results,
        },
        args.output,
    )


if __name__ == "__main__":
    main()
