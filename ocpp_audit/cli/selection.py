"""Never pass on nothing: say why a capture, charger or time window selects no frames.

An analysis of nothing looks like a clean one (exit 0, a JUnit file with ``tests="0"``), so a
command that found nothing to judge, export or replay stops with exit 2 and one line saying what
was asked and what the capture holds: ``no charger 'cp001' in CAPTURE; chargers: CP001, CP002``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from ocpp_audit.cli.errors import InputError, names

MAX_LISTED = 20  # chargers named in a message; the rest are counted


@dataclass(frozen=True)
class Span:
    """One charger's frames in a capture: how many, first and last (UTC)."""

    frames: int
    first: dt.datetime
    last: dt.datetime


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def charger_spans(
    parts: Sequence[Path], *, messages_only: bool = False, captures: Sequence[Path] = ()
) -> dict[str, Span]:
    """charge_point_id -> its Span over every frame of ``parts`` and of the open journals of
    ``captures`` (no charger or window filter)."""
    import duckdb

    from ocpp_audit.capture.live import read_open_journals
    from ocpp_audit.capture.parts import frames_sql

    journals = read_open_journals(captures)
    if not parts and not journals.rows:
        return {}
    where = "charge_point_id IS NOT NULL" + (" AND event = 'message'" if messages_only else "")
    con = duckdb.connect()
    try:
        live = None
        if journals.rows:
            live = "open_journal_rows"
            con.register(live, journals.table)
        rows = con.execute(
            f"SELECT charge_point_id, count(*), epoch_us(min(ts)), epoch_us(max(ts)) "
            f"FROM ({frames_sql(parts, journal=live)}) WHERE {where} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()

    def moment(us: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC)

    return {cp: Span(count, moment(first), moment(last)) for cp, count, first, last in rows}


def _being_recorded(capture: Path) -> bool:
    from ocpp_audit.capture.live import journal_folders

    return any(folder.glob("*.journal") for folder in journal_folders([capture]))


def local_captures(values: Sequence[str | Path]) -> list[Path]:
    """The captures as local folders: an ``s3://...`` (or other remote) capture is fetched into
    the local cache first (only parts not fetched before), saying so on stderr."""
    from ocpp_audit.capture.remote import is_remote, remote_capture

    local: list[Path] = []
    for value in values:
        if not is_remote(value):
            local.append(Path(value))
            continue
        folder, parts, fetched = remote_capture(str(value))
        shown = str(value).split("?", 1)[0]
        click.echo(f"{shown}: {parts} part(s), {fetched} fetched now into {folder}", err=True)
        local.append(folder)
    return local


def require_parts(captures: Sequence[Path], *, live: bool = False) -> list[Path]:
    """The Parquet parts of ``captures``; InputError for a folder with none (a wrong or empty
    folder, even next to good ones, is a mistake rather than a capture of nothing).

    ``live``: the command reads open journals too (query, analyse), so a capture being recorded
    whose first journal is not sealed yet is no mistake.
    """
    from ocpp_audit.capture.parts import find_parts

    for capture in captures:
        if find_parts([capture]):
            continue
        if _being_recorded(capture):
            if live:
                continue
            raise InputError(
                f"no Parquet parts under {capture} yet: it is being recorded and its open journal "
                f"is sealed at the next rotation or when the recorder stops (query and analyse "
                f"read it now)"
            )
        raise InputError(f"no Parquet parts under {capture}")
    return find_parts(captures)


def _listing(chargers: Collection[str]) -> str:
    shown = sorted(chargers)[:MAX_LISTED]
    more = len(chargers) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _window(since: object, until: object) -> str:
    if since is not None and until is not None:
        return f"between {since} and {until}"
    if since is not None:
        return f"since {since}"
    return f"before {until}"


def check_found(
    captures: Sequence[Path],
    parts: Sequence[Path],
    found: Collection[str],
    *,
    chargers: Sequence[str] = (),
    since: object = None,
    until: object = None,
    what: str = "frames",
    messages_only: bool = False,
) -> None:
    """Raise InputError when the selection found no charger, or not every charger asked for,
    saying why: no parts, no such charger, or a time window that holds none of its frames.

    ``found``: the chargers the command got from the capture with the filters applied. The capture
    is read again (unfiltered) only when something is missing, to say what there is.
    """
    missing = [cp for cp in chargers if cp not in found]
    if found and not missing:
        return
    where = names(captures)
    being_recorded = any(_being_recorded(capture) for capture in captures)
    if not parts and not being_recorded:
        raise InputError(f"no Parquet parts under {where}")
    spans = charger_spans(parts, messages_only=messages_only, captures=captures)
    if not spans:
        held = f"{len(parts)} part(s)" + (" and an open journal" if being_recorded else "")
        raise InputError(f"no charger's {what} in {where} ({held})")
    absent = [cp for cp in missing if cp not in spans]
    if absent:
        asked = ", ".join(repr(cp) for cp in absent)
        hint = ""
        by_fold = {cp.casefold(): cp for cp in spans}
        near = [by_fold[cp.casefold()] for cp in absent if cp.casefold() in by_fold]
        if near:
            hint = f" (did you mean {', '.join(repr(cp) for cp in near)}?)"
        plural = "chargers" if len(absent) > 1 else "charger"
        raise InputError(f"no {plural} {asked} in {where}; chargers: {_listing(spans)}{hint}")
    # Everything asked for is in the capture, so the time window left it out.
    if since is None and until is None:
        return  # nothing this check can explain; the caller says what it found
    left_out = missing or sorted(spans)
    first = min(spans[cp].first for cp in left_out)
    last = max(spans[cp].last for cp in left_out)
    whose = f" of {', '.join(repr(cp) for cp in missing)}" if missing else ""
    raise InputError(
        f"no {what}{whose} {_window(since, until)} in {where}; "
        f"the capture has them from {_iso(first)} to {_iso(last)}"
    )
