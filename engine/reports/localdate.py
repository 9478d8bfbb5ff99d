"""The calendar date of a naive-UTC timestamp column in a time zone, computed in SQL.

PostgreSQL knows the time zone database (`timezone(zone, ts)`). SQLite does not, so there the
zone's UTC offsets over the dates the report covers become a CASE of ranges, each shifting the
timestamp by its offset before `date()` takes the day: exact across daylight-saving changes,
and still one set-based statement."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Date, DateTime, String, case, cast, func, literal, select
from sqlalchemy.sql.expression import ColumnElement

Offsets = list[tuple[datetime | None, int]]  # (from this UTC moment on, offset in seconds)


def utc_bounds(since: date | None, until: date | None,
               zone: str) -> tuple[datetime | None, datetime | None]:
    """[start of `since`, start of the day after `until`) in `zone`, as naive UTC."""
    tz = ZoneInfo(zone)

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)

    return (midnight(since) if since else None,
            midnight(until + timedelta(days=1)) if until else None)


def _offset(tz: ZoneInfo, moment: datetime) -> int:
    off = moment.replace(tzinfo=UTC).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def offsets(zone: str, start: datetime, end: datetime) -> Offsets:
    """The zone's UTC offsets from `start` to `end` (naive UTC): the first applies from the
    start, each later one from the moment (to the second) it took effect."""
    tz = ZoneInfo(zone)
    found: Offsets = [(None, _offset(tz, start))]
    day, step = start, timedelta(days=1)
    while day < end:
        nxt = min(day + step, end)
        if _offset(tz, nxt) != found[-1][1]:
            lo, hi = day, nxt  # the change lies in (lo, hi]: find its second
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                lo, hi = (mid, hi) if _offset(tz, mid) == found[-1][1] else (lo, mid)
            found.append((hi, _offset(tz, hi)))
        day = nxt
    return found


def local_date(conn: Connection, column: Any, zone: str,
               span: tuple[datetime | None, datetime | None]) -> ColumnElement[date]:
    """`column` (naive UTC) as a date in `zone`. `span`: the earliest and latest values the
    query can meet (needed on SQLite only, to bound the offsets; None: the data's own)."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(zone, func.timezone("UTC", column)), Date)
    start, end = span
    if start is None or end is None:
        low, high = conn.execute(select(func.min(column), func.max(column))).one()
        start, end = start or low, end or high
    if start is None or end is None:  # no rows: any expression will do
        return func.date(column, type_=Date)
    table = offsets(zone, start, end)
    if len(table) == 1:
        shift: Any = literal(f"{table[0][1]:+d} seconds", String)
    else:
        # From the latest change back: the first range that the moment is past applies.
        shift = case(*((column >= literal(moment, DateTime), f"{seconds:+d} seconds")
                       for moment, seconds in reversed(table[1:])),
                     else_=f"{table[0][1]:+d} seconds")
    return func.date(column, shift, type_=Date)
