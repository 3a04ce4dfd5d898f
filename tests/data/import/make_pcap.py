"""Makes ocpp-ws.pcap and ocpp-ws.pcapng: real OCPP-J WebSocket exchanges on 127.0.0.1 (websockets
client and server, through a relay that notes every byte and when it passed), written as TCP
segments with dpkt. Run from the repository: ``python tests/data/import/make_pcap.py``.

Connections (one TCP stream each):
1. CP042, permessage-deflate, subprotocol ocpp1.6, Basic auth: Boot, a fragmented answer, a
   RemoteStart the backend sends, a ping; the charger closes with 1000.
2. CP043, no compression: a Heartbeat, then the backend closes with 1001 "going away".
3. A TLS (wss://) stream: a real ClientHello and nothing readable.
Segments of stream 1 are cut small and one arrives twice and one out of order, as on a real wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import sys
import time
from pathlib import Path

import dpkt
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

HERE = Path(__file__).parent
BOOT = '[2,"b-1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"X1"}]'
BOOT_ANSWER = [
    '[3,"b-1",{"currentTime":"2024-03-05T13:02:11Z",',
    '"interval":300,"status":"Accepted"}]',
]
REMOTE = '[2,"r-7","RemoteStartTransaction",{"connectorId":1,"idTag":"04A2B3C4"}]'
REMOTE_ANSWER = '[3,"r-7",{"status":"Accepted"}]'
HEARTBEAT = '[2,"h-1","Heartbeat",{}]'
HEARTBEAT_ANSWER = '[3,"h-1",{"currentTime":"2024-03-05T13:05:00Z"}]'


async def record() -> list[tuple[int, list[tuple[float, bool, bytes]]]]:
    """Per connection: (client port, [(time, from client, bytes)])."""
    connections: list[tuple[int, list[tuple[float, bool, bytes]]]] = []

    async def backend(ws):
        if ws.request.path.endswith("CP042"):
            await ws.recv()
            await ws.send(BOOT_ANSWER)  # a fragmented message
            await ws.send(REMOTE)
            await ws.recv()
            await ws.wait_closed()
        else:
            await ws.recv()
            await ws.send(HEARTBEAT_ANSWER)
            await ws.close(1001, "going away")

    async def relay(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        log: list[tuple[float, bool, bytes]] = []
        connections.append((writer.get_extra_info("peername")[1], log))

        async def pipe(source, sink, from_client):
            while data := await source.read(65536):
                log.append((time.time(), from_client, data))
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    async with serve(backend, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = server.sockets[0].getsockname()[1]
        proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
        proxy_port = proxy.sockets[0].getsockname()[1]
        auth = "Basic " + base64.b64encode(b"CP042:secret").decode()
        async with connect(
            f"ws://127.0.0.1:{proxy_port}/ocpp/CP042",
            subprotocols=["ocpp1.6", "ocpp2.0.1"],
            additional_headers={"Authorization": auth},
        ) as ws:
            await ws.send(BOOT)
            await ws.recv()
            await ws.recv()
            await ws.send(REMOTE_ANSWER)
            await (await ws.ping())
        async with connect(
            f"ws://127.0.0.1:{proxy_port}/ocpp/CP043", subprotocols=["ocpp1.6"], compression=None
        ) as ws:
            await ws.send(HEARTBEAT)
            await ws.recv()
            await ws.wait_closed()
        await asyncio.sleep(0.2)
        proxy.close()
    return connections


def client_hello() -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="csms.example")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def packets(client_port, log, server_port, *, messy):
    """Ethernet/IPv4/TCP packets for one stream: handshake, the data, FIN both ways."""
    client, server = b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01"
    seq = {True: 1000, False: 5000}
    t0 = log[0][0] - 0.001 if log else time.time()

    def packet(ts, from_client, flags, data=b""):
        tcp = dpkt.tcp.TCP(
            sport=client_port if from_client else server_port,
            dport=server_port if from_client else client_port,
            seq=seq[from_client],
            ack=seq[not from_client],
            flags=flags,
            data=data,
        )
        ip = dpkt.ip.IP(
            src=client if from_client else server,
            dst=server if from_client else client,
            p=dpkt.ip.IP_PROTO_TCP,
            data=tcp,
        )
        ip.len = len(bytes(ip))
        return ts, bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x00" * 6, data=ip))

    out = [packet(t0, True, dpkt.tcp.TH_SYN)]
    seq[True] += 1
    out.append(packet(t0, False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK))
    seq[False] += 1
    out.append(packet(t0, True, dpkt.tcp.TH_ACK))
    for ts, from_client, data in log:
        size = 7 if messy else 1460
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        segs = []
        for chunk in chunks:
            segs.append(packet(ts, from_client, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, chunk))
            seq[from_client] += len(chunk)
        if messy and len(segs) > 3:
            segs[1], segs[2] = segs[2], segs[1]  # out of order
            segs.insert(4, segs[3])  # and one sent twice
        out.extend(segs)
    end = (log[-1][0] if log else t0) + 0.001
    for side in (True, False):
        out.append(packet(end, side, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK))
        seq[side] += 1
    return out


def main() -> None:
    connections = asyncio.run(record())
    server_port = 9000
    all_packets = []
    for number, (client_port, log) in enumerate(connections):
        all_packets += packets(client_port, log, server_port, messy=number == 0)
    hello = [(time.time(), True, client_hello())]
    all_packets += packets(50443, hello, 443, messy=False)
    with (HERE / "ocpp-ws.pcap").open("wb") as stream:
        writer = dpkt.pcap.Writer(stream)
        for ts, data in all_packets:
            writer.writepkt(data, ts=ts)
    with (HERE / "ocpp-ws.pcapng").open("wb") as stream:
        writer = dpkt.pcapng.Writer(stream)
        for ts, data in all_packets:
            writer.writepkt(data, ts=ts)
    print(f"{len(all_packets)} packets", file=sys.stderr)


if __name__ == "__main__":
    main()
