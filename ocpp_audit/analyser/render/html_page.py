"""The visual report: one self-contained HTML page per analysis (``--format html``).

Per charger: the verdict table in the acceptance script's layout (each verdict linking to its evidence
in the frame list), a timeline (online/offline, connector statuses, transactions, boots, resets,
firmware and diagnostics steps), meter charts per transaction, heartbeat intervals, offline gaps with
the queued messages delivered after each, and a searchable frame list.

The data beyond the verdicts comes from the capture's views with bounded, aggregated queries, so a
week of one charger's traffic stays a page a browser opens at once:

- frame list: at most ``MAX_FRAMES`` rows per charger; evidence frames first, then every frame that
  is not a Heartbeat or MeterValues exchange, then the routine ones, shown in time order;
- charts: at most ``MAX_POINTS`` points per series (heartbeats: the longest interval of each bucket,
  so a late heartbeat never disappears; meter values: every k-th sample, gaps found on all samples);
- meter charts for the last ``MAX_TRANSACTIONS`` transactions; ``MAX_SEGMENTS`` timeline segments.

The charts are drawn by uPlot (MIT licence, vendored in ``assets/``) inlined into the page with the
data as JSON, so the file opens offline.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
from importlib import resources
from typing import Any

import duckdb

from ocpp_audit.analyser.capture import open_capture
from ocpp_audit.analyser.engine import MATERIALIZED_VIEWS, materialize_views
from ocpp_audit.analyser.model import RESULT_WORDS, ChargerReport, Report, RuleResult, result_notes
from ocpp_audit.capture.parts import error_line

logger = logging.getLogger(__name__)

MAX_FRAMES = 3000
MAX_POINTS = 2000
MAX_TRANSACTIONS = 30
MAX_SEGMENTS = 5000
MAX_GAPS = 50
MAX_QUEUED_SHOWN = 30
PAYLOAD_CHARS = 300

# Defaults when the report's rules do not say: the platform's limits from the acceptance script.
DEFAULT_MAX_GAP_S = 30.0  # meter values while Charging (rule meter-values, max_gap_s)
DEFAULT_MAX_INTERVAL_S = 3600.0  # heartbeats (rule heartbeat, max_interval_s)
DEFAULT_LATE_AFTER_S = 60.0  # view parameter late_after_s

# Measurands charted, and the unit each is shown in (OCPP 1.6 section 7.31 Measurand).
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"
ENERGY = "Energy.Active.Import.Register"
_SCALE = {"kW": 1000.0, "kWh": 1000.0}

_ROUTINE_ACTIONS = ("Heartbeat", "MeterValues")


def _asset(name: str) -> str:
    return resources.files("ocpp_audit.analyser").joinpath("assets", name).read_text("utf-8")


def _epoch(column: str) -> str:
    """SQL: a TIMESTAMPTZ as float seconds since the epoch (uPlot's time unit)."""
    return f"(epoch_us({column}) / 1e6)"


def _param(report: Report, rule_id: str, name: str, default: float) -> float:
    for rule in report.rules:
        if rule.id == rule_id:
            value = rule.params.get(name)
            if isinstance(value, int | float):
                return float(value)
    return default


def _ts_us(text: str | None) -> int | None:
    if not text:
        return None
    try:
        instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round(instant.timestamp() * 1_000_000)


# --- queries --------------------------------------------------------------------------------------


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> list[tuple]:
    try:
        return con.execute(sql, params).fetchall()
    except duckdb.Error as error:  # a custom view set without this view: the section stays empty
        logger.warning("html report: query failed: %s", error_line(error))
        return []


def _frames(
    con: duckdb.DuckDBPyConnection, cp: str, evidence: list[tuple[int | None, str | None]]
) -> tuple[list[list[Any]], int]:
    """The frame list: capped, evidence first, then non-routine frames, in time order."""
    con.execute("CREATE OR REPLACE TEMP TABLE html_evidence (ts TIMESTAMPTZ, unique_id VARCHAR)")
    if evidence:
        con.executemany(
            "INSERT INTO html_evidence VALUES (make_timestamptz(?::BIGINT), ?)",
            [(ts, uid) for ts, uid in evidence],
        )
    sql = f"""
        WITH f AS (
            SELECT ts, seq, connection_id, event, direction, message_type, unique_id, action,
                   parse_error, error_code, payload, raw, close_code, closed_by,
                   CASE WHEN unique_id IN (SELECT unique_id FROM html_evidence
                                           WHERE unique_id IS NOT NULL)
                          OR ts IN (SELECT ts FROM html_evidence) THEN 0
                        WHEN action IN {_ROUTINE_ACTIONS!r} THEN 2 ELSE 1 END AS priority
            FROM frames
            WHERE charge_point_id = $cp
        ),
        kept AS (
            SELECT * FROM f
            QUALIFY row_number() OVER (ORDER BY priority, ts, seq) <= {MAX_FRAMES}
        )
        SELECT epoch_us(ts), direction,
               CASE WHEN event <> 'message' THEN event
                    WHEN parse_error IS NOT NULL THEN 'malformed'
                    ELSE CASE message_type WHEN 2 THEN 'CALL' WHEN 3 THEN 'CALLRESULT'
                                           WHEN 4 THEN 'CALLERROR' END END,
               action, unique_id,
               CASE WHEN parse_error IS NOT NULL THEN parse_error
                    WHEN message_type = 4 THEN error_code
                    WHEN message_type = 3 THEN json_extract_string(payload, '$.status')
                    WHEN event = 'close' THEN concat_ws(' ', 'code', close_code, closed_by)
               END,
               left(coalesce(payload, raw), {PAYLOAD_CHARS})
        FROM kept ORDER BY ts, seq
    """
    rows = _rows(con, sql, {"cp": cp})
    total = _rows(con, "SELECT count(*) FROM frames WHERE charge_point_id = $cp", {"cp": cp})
    return [list(row) for row in rows], (total[0][0] if total else len(rows))


def _timeline(con: duckdb.DuckDBPyConnection, cp: str) -> dict[str, Any]:
    params = {"cp": cp}
    connections = _rows(
        con,
        f"""SELECT {_epoch("opened_at")}, {_epoch("closed_at")}, close_code, closed_by
            FROM connections WHERE charge_point_id = $cp ORDER BY opened_at
            LIMIT {MAX_SEGMENTS}""",
        params,
    )
    statuses = _rows(
        con,
        f"""SELECT connector_id, {_epoch("ts")}, status, error_code
            FROM status_notifications
            WHERE charge_point_id = $cp AND connector_id IS NOT NULL
              AND (previous_status IS NULL OR previous_status <> status OR error_code <> 'NoError')
            ORDER BY ts LIMIT {MAX_SEGMENTS}""",
        params,
    )
    transactions = _rows(
        con,
        f"""SELECT transaction_id, connector_id, {_epoch("start_ts")}, {_epoch("stop_ts")},
                   id_tag, meter_start, meter_stop, stop_reason, start_late, stop_late
            FROM transactions WHERE charge_point_id = $cp ORDER BY start_ts
            LIMIT {MAX_SEGMENTS}""",
        params,
    )
    events = _rows(
        con,
        f"""SELECT * FROM (
              SELECT {_epoch("ts")} AS t, 'boot' AS kind,
                     concat_ws(' ', 'BootNotification', status) AS label
              FROM boots WHERE charge_point_id = $cp
              UNION ALL
              SELECT {_epoch("call_ts")}, lower(action),
                     concat_ws(' ', action, json_extract_string(payload, '$.type'), status,
                               error_code)
              FROM calls
              WHERE charge_point_id = $cp AND direction = 'cs_to_cp' AND call_ts IS NOT NULL
                AND action IN ('Reset', 'UpdateFirmware', 'GetDiagnostics')
              UNION ALL
              SELECT {_epoch("ts")}, 'firmware', concat_ws(' ', 'Firmware', status)
              FROM firmware_status WHERE charge_point_id = $cp
              UNION ALL
              SELECT {_epoch("ts")}, 'diagnostics',
                     concat_ws(' ', 'Diagnostics', coalesce(status, 'upload ' || file_name))
              FROM diagnostics_status WHERE charge_point_id = $cp
            ) ORDER BY t LIMIT {MAX_SEGMENTS}""",
        params,
    )
    return {
        "connections": [list(r) for r in connections],
        "statuses": [list(r) for r in statuses],
        "transactions": [list(r) for r in transactions],
        "events": [list(r) for r in events],
    }


def _meter(con: duckdb.DuckDBPyConnection, cp: str, max_gap_s: float) -> list[dict[str, Any]]:
    """Per transaction (the last MAX_TRANSACTIONS): aligned series and the gaps over max_gap_s."""
    params: dict[str, object] = {"cp": cp}
    chosen = _rows(
        con,
        f"""SELECT transaction_id, connector_id, {_epoch("start_ts")}, {_epoch("stop_ts")}
            FROM transactions WHERE charge_point_id = $cp AND transaction_id IS NOT NULL
            ORDER BY start_ts DESC LIMIT {MAX_TRANSACTIONS}""",
        params,
    )
    if not chosen:
        return []
    ids = ", ".join(str(int(row[0])) for row in chosen)
    measurands = (POWER, CURRENT, VOLTAGE, ENERGY)
    samples = _rows(
        con,
        f"""WITH s AS (
                SELECT transaction_id, measurand, coalesce(phase, '') AS phase, unit,
                       {_epoch("coalesce(timestamp, ts)")} AS t, value
                FROM meter_samples
                WHERE charge_point_id = $cp AND transaction_id IN ({ids})
                  AND measurand IN {measurands!r} AND value IS NOT NULL
            ),
            numbered AS (
                SELECT *, row_number() OVER w AS n, count(*) OVER (
                    PARTITION BY transaction_id, measurand, phase) AS total
                FROM s WINDOW w AS (PARTITION BY transaction_id, measurand, phase ORDER BY t)
            )
            SELECT transaction_id, measurand, phase, unit, t, value FROM numbered
            WHERE total <= {MAX_POINTS} OR (n - 1) % ceil(total / {MAX_POINTS})::BIGINT = 0
                  OR n = total
            ORDER BY transaction_id, t""",
        params,
    )
    gaps = _rows(
        con,
        f"""WITH t AS (
                SELECT DISTINCT transaction_id, {_epoch("coalesce(timestamp, ts)")} AS t
                FROM meter_samples
                WHERE charge_point_id = $cp AND transaction_id IN ({ids})
            ),
            d AS (SELECT transaction_id, lag(t) OVER (PARTITION BY transaction_id ORDER BY t)
                         AS since, t FROM t)
            SELECT transaction_id, since, t FROM d WHERE t - since > $max_gap
            QUALIFY row_number() OVER (PARTITION BY transaction_id ORDER BY since) <= {MAX_POINTS}
            ORDER BY transaction_id, since""",
        {**params, "max_gap": max_gap_s},
    )
    by_tx: dict[int, dict[tuple[str, str], dict[float, float]]] = {}
    for tx, measurand, phase, unit, t, value in samples:
        series = by_tx.setdefault(tx, {}).setdefault((measurand, phase), {})
        series[t] = value * _SCALE.get(unit or "", 1.0)
    gaps_by_tx: dict[int, list[list[float]]] = {}
    for tx, since, t in gaps:
        gaps_by_tx.setdefault(tx, []).append([since, t])
    charts = []
    for tx, connector_id, start, stop in reversed(chosen):
        series = by_tx.get(tx, {})
        times = sorted({t for values in series.values() for t in values})
        charts.append(
            {
                "transaction_id": tx,
                "connector_id": connector_id,
                "start": start,
                "stop": stop,
                "times": times,
                "series": [
                    {
                        "measurand": measurand,
                        "phase": phase,
                        "values": [values.get(t) for t in times],
                    }
                    for (measurand, phase), values in sorted(series.items())
                ],
                "gaps": gaps_by_tx.get(tx, []),
            }
        )
    return charts


def _heartbeats(con: duckdb.DuckDBPyConnection, cp: str) -> dict[str, Any]:
    """Heartbeat intervals per connection, bucketed to MAX_POINTS keeping each bucket's longest."""
    params = {"cp": cp}
    beats = _rows(
        con,
        f"""WITH b AS (
                SELECT call_ts AS ts,
                       {_epoch("call_ts")} - {_epoch("lag(call_ts) OVER (PARTITION BY connection_id ORDER BY call_ts)")}
                           AS interval_s
                FROM calls
                WHERE charge_point_id = $cp AND action = 'Heartbeat' AND direction = 'cp_to_cs'
                  AND call_ts IS NOT NULL
            ),
            n AS (SELECT *, row_number() OVER (ORDER BY ts) AS i, count(*) OVER () AS total
                  FROM b WHERE interval_s > 0)
            SELECT {_epoch("arg_max(ts, interval_s)")}, max(interval_s)
            FROM n GROUP BY (i - 1) // ceil(total / {MAX_POINTS})::BIGINT
            ORDER BY 1""",
        params,
    )
    configured = _rows(
        con,
        f"""SELECT * FROM (
              SELECT {_epoch("ts")} AS t, interval_s FROM boots
              WHERE charge_point_id = $cp AND status = 'Accepted' AND interval_s > 0
              UNION ALL
              SELECT {_epoch("ts")}, TRY_CAST(value AS INTEGER) FROM configuration
              WHERE charge_point_id = $cp AND source = 'ChangeConfiguration'
                AND key = 'HeartbeatInterval' AND status = 'Accepted'
            ) WHERE interval_s > 0 ORDER BY t LIMIT {MAX_SEGMENTS}""",
        params,
    )
    return {"beats": [list(r) for r in beats], "configured": [list(r) for r in configured]}


def _offline_gaps(
    con: duckdb.DuckDBPyConnection, cp: str, late_after_s: float
) -> list[dict[str, Any]]:
    """The longest MAX_GAPS offline gaps, each with the first messages the charger sent after it."""
    gaps = _rows(
        con,
        f"""SELECT * FROM (
              SELECT connection_id, {_epoch("offline_from")}, {_epoch("opened_at")}, offline_s
              FROM connections WHERE charge_point_id = $cp AND offline_s > 0
              ORDER BY offline_s DESC LIMIT {MAX_GAPS}) ORDER BY 2""",
        {"cp": cp},
    )
    result = []
    for connection_id, offline_from, offline_until, offline_s in gaps:
        delivered = _rows(
            con,
            f"""WITH m AS (
                  SELECT ts, seq, unique_id, action,
                         TRY_CAST(coalesce(json_extract_string(payload, '$.timestamp'),
                                           json_extract_string(payload, '$.meterValue[0].timestamp'))
                                  AS TIMESTAMPTZ) AS stamped
                  FROM messages
                  WHERE connection_id = $connection_id AND direction = 'cp_to_cs'
                    AND message_type = 2
                )
                SELECT {_epoch("ts")}, unique_id, action, {_epoch("stamped")},
                       coalesce(stamped < $until, false),
                       coalesce({_epoch("ts")} - {_epoch("stamped")} > $late, false)
                FROM m ORDER BY ts, seq LIMIT {MAX_QUEUED_SHOWN}""",
            {
                "connection_id": connection_id,
                "until": dt.datetime.fromtimestamp(offline_until, dt.UTC),
                "late": late_after_s,
            },
        )
        result.append(
            {
                "from": offline_from,
                "until": offline_until,
                "seconds": offline_s,
                "delivered": [list(r) for r in delivered],
            }
        )
    return result


# --- assembling -----------------------------------------------------------------------------------


def _evidence_index(frames: list[list[Any]]) -> tuple[dict[str, list[tuple[int, int]]], list[int]]:
    by_uid: dict[str, list[tuple[int, int]]] = {}
    for index, frame in enumerate(frames):
        if frame[4] is not None:
            by_uid.setdefault(frame[4], []).append((frame[0], index))
    return by_uid, [frame[0] for frame in frames]


def _resolve(
    ts: int | None,
    unique_id: str | None,
    by_uid: dict[str, list[tuple[int, int]]],
    times: list[int],
) -> int | None:
    """The frame-list row an evidence item points at: same unique id nearest in time, else the
    frame at (or nearest) its time."""
    if unique_id is not None and unique_id in by_uid:
        candidates = by_uid[unique_id]
        if ts is None:
            return candidates[0][1]
        return min(candidates, key=lambda c: abs(c[0] - ts))[1]
    if ts is None or not times:
        return None
    position = bisect.bisect_left(times, ts)
    nearest = [p for p in (position - 1, position) if 0 <= p < len(times)]
    best = min(nearest, key=lambda p: abs(times[p] - ts))
    return best if abs(times[best] - ts) <= 1_000_000 else None


def _results(charger: ChargerReport) -> list[RuleResult]:
    return [*charger.functions, *charger.checks]


def _charger_data(
    report: Report,
    charger: ChargerReport,
    con: duckdb.DuckDBPyConnection | None,
    limits: dict[str, float],
) -> dict[str, Any]:
    cp = charger.charge_point_id
    evidence = [
        (_ts_us(item.get("ts")), item.get("unique_id"))
        for result in _results(charger)
        for finding in result.findings
        for item in finding.evidence
    ]
    if con is not None:
        frames, total = _frames(con, cp, evidence)
        data: dict[str, Any] = {
            "timeline": _timeline(con, cp),
            "meter": _meter(con, cp, limits["max_gap_s"]),
            "heartbeats": _heartbeats(con, cp),
            "gaps": _offline_gaps(con, cp, limits["late_after_s"]),
        }
    else:
        frames, total = [], 0
        data = {
            "timeline": {"connections": [], "statuses": [], "transactions": [], "events": []},
            "meter": [],
            "heartbeats": {"beats": [], "configured": []},
            "gaps": [],
        }
    by_uid, times = _evidence_index(frames)
    verdicts = []
    for result in _results(charger):
        findings = []
        for finding in result.findings:
            links = []
            for item in finding.evidence:
                row = _resolve(_ts_us(item.get("ts")), item.get("unique_id"), by_uid, times)
                links.append([item.get("ts"), item.get("unique_id"), row])
            findings.append([finding.verdict, finding.check, finding.detail, links])
        verdicts.append(
            {
                "function": result.rule.function,
                "id": result.rule.id,
                "title": result.rule.title,
                "criterion": result.rule.criterion,
                "severity": result.rule.severity,
                "verdict": RESULT_WORDS[result.verdict],
                "notes": result_notes(result),
                "findings": findings,
            }
        )
    return {
        "charge_point_id": cp,
        "identity": charger.identity,
        "verdicts": verdicts,
        "frames": frames,
        "frames_total": total,
        **data,
    }


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no '</' that would end it)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_html(report: Report, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """The report as one self-contained HTML page.

    ``con`` is an open capture (``open_capture``) to draw the timelines and charts from; without it
    the capture is opened again from ``report.source`` (what ``analyse`` recorded), and without that
    the page holds the verdicts only.
    """
    owned = None
    if con is None and report.source:
        owned = con = open_capture(**report.source)  # type: ignore[arg-type]
        # Every charger's queries read calls (a self-join of all messages): compute it once.
        materialize_views(con, MATERIALIZED_VIEWS)
    limits = {
        "max_gap_s": _param(report, "meter-values", "max_gap_s", DEFAULT_MAX_GAP_S),
        "max_interval_s": _param(report, "heartbeat", "max_interval_s", DEFAULT_MAX_INTERVAL_S),
        "late_after_s": _param(report, "offline-replay", "late_after_s", DEFAULT_LATE_AFTER_S),
    }
    try:
        chargers = [_charger_data(report, charger, con, limits) for charger in report.chargers]
    finally:
        if owned is not None:
            owned.close()
    document = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "limits": limits,
        "caps": {"frames": MAX_FRAMES, "points": MAX_POINTS, "transactions": MAX_TRANSACTIONS},
        "chargers": chargers,
    }
    page = _asset("report.html")
    for marker, text in (
        ("/*UPLOT_CSS*/", _asset("uPlot.min.css")),
        ("/*UPLOT_JS*/", _asset("uPlot.iife.min.js")),
        ("/*REPORT_DATA*/", _script_json(document)),
    ):
        page = page.replace(marker, text, 1)
    return page
