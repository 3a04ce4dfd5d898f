"""ocpp-audit import of each format's samples: every frame byte-exact, every skipped line counted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ocpp_audit.cli import main
from ocpp_audit.importers import detect_format, import_files
from ocpp_audit.importers.common import ImportSummary

DATA = Path(__file__).parent / "data" / "import"


def _rows(capture: Path) -> list[dict[str, object]]:
    relation = duckdb.connect().sql(
        f"SELECT event, epoch_us(ts) AS ts, connection_id, charge_point_id, direction, seq, raw, "
        f"action, parse_error, path, subprotocols_offered, subprotocol, remote_address, "
        f"auth_user, close_code, close_reason, closed_by "
        f"FROM read_parquet('{capture}/frames/**/*.parquet') ORDER BY ts, seq"
    )
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _import(
    tmp_path: Path, name: str, fmt: str, **options: object
) -> tuple[ImportSummary, list[dict[str, object]]]:
    capture = tmp_path / "capture"
    summary = import_files([DATA / name], fmt, capture, **options)  # type: ignore[arg-type]
    return summary, (_rows(capture) if summary.rows else [])


def _messages(rows: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(r["direction"], r["action"], r["raw"]) for r in rows if r["event"] == "message"]


def _frames_on(path: Path, marker: str) -> list[str]:
    """The text after ``marker`` on each line that has it (the sample's frames, as written)."""
    return [line.split(marker, 1)[1] for line in path.read_text().splitlines() if marker in line]


def test_steve_log_pasted_from_a_web_page_with_tabs(tmp_path: Path) -> None:
    # Copied from SteVe's web page, every space is a tab, inside the frames too: no line matched
    # "] Received: " with its single spaces, so none of its 8 rows (6 frames) came in.
    summary, rows = _import(tmp_path, "steve-pasted.log", "steve", timezone="Europe/Berlin")
    assert summary.skipped == Counter({"not an OCPP frame line": 2})
    assert [r["event"] for r in rows] == ["open"] + ["message"] * 6 + ["close"]
    sent = [
        line.split(":\t", 1)[1]
        for line in (DATA / "steve-pasted.log").read_text().splitlines()
        if "Received:\t" in line or "Sending:\t" in line
    ]
    assert [r["raw"] for r in rows[1:-1]] == sent
    assert sent[0].startswith('[2,\t"100",\t"BootNotification"')
    assert [r["action"] for r in rows[1:-1]][:2] == ["BootNotification", "BootNotification"]
    assert rows[1]["parse_error"] is None  # tabs are JSON whitespace
    assert rows[-1]["close_code"] == 1006


def test_evcc_log_every_variant(tmp_path: Path) -> None:
    summary, rows = _import(tmp_path, "evcc.log", "evcc", timezone="Europe/Berlin")
    assert summary.skipped == Counter({"not an OCPP frame line": 1})  # the [lp-1 ] line
    assert summary.noted["text after a frame on its line, not part of it"] == 1  # the │ border
    assert summary.noted["ocpp-go errors quoting a frame already imported"] == 1
    assert summary.noted["frames taken from an ocpp-go error line (FormationViolation)"] == 1
    assert summary.noted["frames truncated in the log, imported as malformed"] == 1
    assert [r["event"] for r in rows] == ["open"] + ["message"] * 8 + ["close"]
    assert {r["charge_point_id"] for r in rows} == {"ABL_10022482"}
    lines = (DATA / "evcc.log").read_text().splitlines()
    assert _messages(rows) == [
        ("cp_to_cs", "BootNotification", lines[1].split("ABL_10022482: ")[1]),
        ("cs_to_cp", "BootNotification", lines[2].split("ABL_10022482: ")[1]),
        ("cs_to_cp", "TriggerMessage", lines[4].split("ABL_10022482: ")[1]),
        ("cp_to_cs", "TriggerMessage", '[3,"2879576313",{"status":"Accepted"}]'),
        ("cs_to_cp", "ChangeConfiguration", lines[6].split("ABL_10022482: ")[1]),
        ("cp_to_cs", "ChangeConfiguration", lines[7].split("ABL_10022482: ")[1]),
        (
            "cp_to_cs",
            "StatusNotification",
            '[2,"cp-77","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Bogus"}]',
        ),
        ("cp_to_cs", None, lines[10].split("ABL_10022482: ")[1]),
    ]
    assert rows[8]["parse_error"] == "truncated in the log"
    # 2023/08/15 11:13:01 in Berlin (CEST) is 09:13:01 UTC
    assert rows[1]["ts"] == 1692090781_000000


def test_microocpp_console_without_times(tmp_path: Path) -> None:
    summary, rows = _import(tmp_path, "microocpp.log", "microocpp", chargers=["CP7"])
    assert summary.skipped == Counter({"not an OCPP frame line": 4, "blank line": 1})
    sent = _frames_on(DATA / "microocpp.log", "[MO] Send: ")
    received = _frames_on(DATA / "microocpp.log", "[MO] Recv: ")
    messages = _messages(rows)
    assert [raw for d, _, raw in messages if d == "cp_to_cs"] == sent
    assert [raw for d, _, raw in messages if d == "cs_to_cp"] == received
    assert [r["action"] for r in rows][:2] == ["BootNotification", "BootNotification"]
    assert [r["ts"] for r in rows] == list(range(7))  # file order, 1 µs apart
    assert any("without a time" in what for what in summary.noted)
    assert "no connection open/close lines" in summary.lines()[-1]


def test_microocpp_needs_a_charger(tmp_path: Path) -> None:
    summary, rows = _import(tmp_path, "microocpp.log", "microocpp")
    assert rows == []
    assert summary.skipped["no charge point id (give one with --charger)"] == 7


def test_microocpp_console_with_times(tmp_path: Path) -> None:
    summary, rows = _import(tmp_path, "microocpp-timed.log", "microocpp", chargers=["CP7"])
    assert summary.skipped == Counter({"not an OCPP frame line": 2})
    assert [r["raw"] for r in rows] == [
        *_frames_on(DATA / "microocpp-timed.log", ": ")[1:3],
        *_frames_on(DATA / "microocpp-timed.log", ": ")[4:],
    ]
    assert rows[0]["ts"] == 1709647331_003120  # 2024-03-05 14:02:11.003120 UTC


def test_libocpp_message_log(tmp_path: Path) -> None:
    summary, rows = _import(tmp_path, "libocpp-ocpp.log", "libocpp", chargers=["YETI1"])
    assert summary.skipped == Counter(
        {"blank line": 19, "libocpp SYS line that is not a connection change": 3}
    )
    assert [r["event"] for r in rows] == ["open"] + ["message"] * 6 + ["close", "open"] + [
        "message"
    ] * 2
    assert len({r["connection_id"] for r in rows}) == 2  # Disconnected, Connected: two connections
    text = (DATA / "libocpp-ocpp.log").read_text()
    boot = rows[1]["raw"]
    assert boot.startswith("[\n  2,\n") and boot.endswith("\n  }\n]") and boot in text
    assert json.loads(boot)[3]["chargePointModel"] == "Yeti"
    assert [r["direction"] for r in rows[1:7]] == ["cp_to_cs", "cs_to_cp"] * 2 + [
        "cs_to_cp",
        "cp_to_cs",
    ]
    assert rows[-1]["parse_error"] == "truncated in the log"
    assert (
        rows[-1]["raw"]
        == '[\n  2,\n  "a9f4c3d2-0004",\n  "MeterValues",\n  {\n    "connectorId": 1,'
    )
    assert rows[1]["ts"] == 1709643730_250000  # 2024-03-05T13:02:10.250Z
    assert (
        summary.noted[
            "frames as libocpp re-serialised them (ocpp.log), not the wire bytes: use ocpp_raw.log"
        ]
        == 8
    )


def test_libocpp_raw_message_log(tmp_path: Path) -> None:
    summary, rows = _import(tmp_path, "libocpp-ocpp_raw.log", "libocpp", chargers=["YETI1"])
    assert summary.skipped == Counter({"blank line": 12})
    frames = [
        line.split(">", 1)[1].split(" ", 1)[1].strip()
        for line in (DATA / "libocpp-ocpp_raw.log").read_text().splitlines()
        if line
    ]
    assert [r["raw"] for r in rows] == frames
    assert [r["action"] for r in rows][-2:] == ["RemoteStartTransaction"] * 2
    assert not summary.noted.get("text after a frame on its line, not part of it")


@pytest.mark.parametrize("name", ["ocpp-ws.pcap", "ocpp-ws.pcapng"])
def test_pcap_of_plain_websockets(tmp_path: Path, name: str) -> None:
    import dpkt

    summary, rows = _import(tmp_path, name, "pcap")
    tls = (
        "TLS (wss://) streams, not readable from a capture: record them with "
        "`ocpp-audit record` in front of the backend"
    )
    assert summary.skipped == Counter({tls: 1})
    assert summary.noted["WebSocket ping/pong frames (not OCPP, not imported)"] == 2
    first = [r for r in rows if r["charge_point_id"] == "CP042"]
    second = [r for r in rows if r["charge_point_id"] == "CP043"]
    assert [r["event"] for r in first] == ["open"] + ["message"] * 4 + ["close"]
    assert [r["event"] for r in second] == ["open", "message", "message", "close"]
    assert len({r["connection_id"] for r in rows}) == 2
    opened = first[0]
    assert (opened["path"], opened["subprotocol"], opened["auth_user"]) == (
        "/ocpp/CP042",
        "ocpp1.6",
        "CP042",
    )
    assert opened["subprotocols_offered"] in ("ocpp1.6,ocpp2.0.1", '["ocpp1.6", "ocpp2.0.1"]')
    assert opened["remote_address"].startswith("127.0.0.1:")
    # compressed (permessage-deflate), masked, cut into 7-byte segments, one out of order, one
    # twice; the answer to the boot was sent in two fragments
    assert _messages(first) == [
        (
            "cp_to_cs",
            "BootNotification",
            '[2,"b-1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"X1"}]',
        ),
        (
            "cs_to_cp",
            "BootNotification",
            '[3,"b-1",{"currentTime":"2024-03-05T13:02:11Z","interval":300,"status":"Accepted"}]',
        ),
        (
            "cs_to_cp",
            "RemoteStartTransaction",
            '[2,"r-7","RemoteStartTransaction",{"connectorId":1,"idTag":"04A2B3C4"}]',
        ),
        ("cp_to_cs", "RemoteStartTransaction", '[3,"r-7",{"status":"Accepted"}]'),
    ]
    assert (first[-1]["close_code"], first[-1]["closed_by"]) == (1000, "charger")
    assert (second[-1]["close_code"], second[-1]["close_reason"], second[-1]["closed_by"]) == (
        1001,
        "going away",
        "backend",
    )
    # times are the capture's
    with (DATA / name).open("rb") as stream:
        reader = dpkt.pcapng.Reader(stream) if name.endswith("ng") else dpkt.pcap.Reader(stream)
        packet_times = {round(float(ts) * 1_000_000) for ts, _ in reader}
    assert {r["ts"] for r in rows} <= packet_times


def test_pcap_stream_cut_by_the_capture_is_counted(tmp_path: Path) -> None:
    import dpkt

    out = tmp_path / "cut.pcap"
    with (DATA / "ocpp-ws.pcap").open("rb") as source, out.open("wb") as target:
        writer = dpkt.pcap.Writer(target)
        for number, (ts, data) in enumerate(dpkt.pcap.Reader(source)):
            if number >= 3:  # the first stream's SYN, SYN-ACK, ACK are not in this capture
                writer.writepkt(data, ts=ts)
    summary = import_files([out], "pcap", tmp_path / "capture")
    assert summary.skipped["TCP streams whose start is not in the capture"] == 1
    assert summary.frames == 2  # the second stream only


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("steve.log", "steve"),
        ("steve-pasted.log", "steve"),
        ("ocpp-log.log", "ocpp-log"),
        ("messy-ocpp-log.log", "ocpp-log"),
        ("sample.jsonl", "jsonl"),
        ("evcc.log", "evcc"),
        ("microocpp.log", "microocpp"),
        ("microocpp-timed.log", "microocpp"),
        ("libocpp-ocpp.log", "libocpp"),
        ("libocpp-ocpp_raw.log", "libocpp"),
        ("ocpp-ws.pcap", "pcap"),
        ("ocpp-ws.pcapng", "pcap"),
    ],
)
def test_auto_detects_each_sample(name: str, fmt: str) -> None:
    assert detect_format(DATA / name) == fmt


def _cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["import", *args, "--capture", str(tmp_path / "c")])
    return result.exit_code, result.output


def test_auto_is_the_default(tmp_path: Path) -> None:
    code, output = _cli(tmp_path, str(DATA / "evcc.log"))
    assert code == 0, output
    assert "format detected: evcc: 1" in output and "imported 8 frames" in output


def test_file_in_no_format_exits_2_with_its_lines(tmp_path: Path) -> None:
    log = tmp_path / "other.log"
    log.write_text("hello world\nnothing OCPP here\n")
    code, output = _cli(tmp_path, str(log))
    assert code == 2
    # one error line (the CLI's exit policy), quoting the file's first lines
    (line,) = [line for line in output.splitlines() if line.startswith("Error:")]
    assert (
        "not in a supported format" in line and "it starts: hello world nothing OCPP here" in line
    )


def test_wrong_format_exits_2_with_a_hint(tmp_path: Path) -> None:
    code, output = _cli(tmp_path, str(DATA / "evcc.log"), "--format", "steve")
    assert code == 2
    assert "no line of it reads as --format steve" in output
    assert "it looks like --format evcc" in output
    assert "charge point connected: ABL_10022482" in output


def _make_pcap_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pcap", DATA / "make_pcap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pcap_refused_handshake_is_a_refused_row(tmp_path: Path) -> None:
    import dpkt

    make_pcap = _make_pcap_module()
    log = [
        (1709643731.0, True, b"GET /ocpp/CP9 HTTP/1.1\r\nHost: csms\r\nUpgrade: websocket\r\n"
         b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"),
        (1709643731.1, False, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
    ]  # fmt: skip
    out = tmp_path / "refused.pcap"
    with out.open("wb") as stream:
        writer = dpkt.pcap.Writer(stream)
        for ts, data in make_pcap.packets(50000, log, 9000, messy=False):
            writer.writepkt(data, ts=ts)
    capture = tmp_path / "capture"
    summary = import_files([out], "pcap", capture)
    assert summary.skipped == Counter()
    (row,) = duckdb.sql(
        f"SELECT event, charge_point_id, http_status, path, epoch_us(ts) "
        f"FROM read_parquet('{capture}/frames/**/*.parquet')"
    ).fetchall()
    assert row == ("refused", "CP9", 401, "/ocpp/CP9", 1709643731_100000)


def test_binary_and_text_formats_mistaken_for_each_other_exit_2(tmp_path: Path) -> None:
    code, output = _cli(tmp_path, str(DATA / "ocpp-ws.pcap"), "--format", "steve")
    assert code == 2 and "it looks like --format pcap" in output
    code, output = _cli(tmp_path, str(DATA / "evcc.log"), "--format", "pcap")
    assert code == 2 and "not a pcap or pcapng file" in output
