"""Quiet hours: a daily window (`{"start": "21:00", "end": "08:00"}`, read in the customer's
own time zone) in which no message goes out; one due inside it waits until the window ends.

A window whose start is after its end crosses midnight. Times are wall-clock times in the zone,
so a window keeps its local hours across daylight-saving changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Connection, select

from engine.models import Customer
from engine.sql import among

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="expected HH:MM (24-hour)")


class QuietHoursSchema(Schema):
    start = fields.String(required=True, validate=HHMM)
    end = fields.String(required=True, validate=HHMM)

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_kw: Any) -> None:
        if data["start"] == data["end"]:
            raise ValidationError("must differ from start", "end")


@lru_cache(maxsize=1024)
def is_zone(name: str) -> bool:
    """Whether `name` is a time zone the zoneinfo database knows (Europe/Vilnius)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _clock(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


def quiet_until(due: datetime, zone: str, window: Mapping[str, str]) -> datetime | None:
    """When a message due at `due` (naive UTC) may go out, as naive UTC, if `due` falls in the
    window read in `zone`; None when it is outside the window."""
    tz = ZoneInfo(zone)
    local = due.replace(tzinfo=UTC).astimezone(tz)
    start, end, now = _clock(window["start"]), _clock(window["end"]), local.time()
    day = local.date()
    if start < end:
        inside = start <= now < end
    else:  # crosses midnight: the evening part ends tomorrow
        inside = now >= start or now < end
        if now >= start:
            day += timedelta(days=1)
    if not inside:
        return None
    ends = datetime.combine(day, end, tzinfo=tz)
    # A wall-clock end that does not exist (skipped by a DST change) reads as the moment after.
    return ends.astimezone(UTC).replace(tzinfo=None)


def window_for(node_config: Mapping[str, Any], channel: str,
               settings: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The node's quiet hours (`null` = none), else the workspace's default for the channel."""
    if "quiet_hours" in node_config:
        return node_config["quiet_hours"]  # type: ignore[no-any-return]
    defaults = settings.get("quiet_hours") or {}
    return defaults.get(channel)  # type: ignore[no-any-return]


def quiet_ends(conn: Connection, rows: Iterable[Any], when: Mapping[int, datetime],
               configs: Mapping[tuple[int, str], Mapping[str, Any]],
               campaign_zones: Mapping[int, str], settings: Mapping[str, Any]
               ) -> dict[int, datetime]:
    """For each message (outbox rows) whose time `when[id]` falls inside its quiet hours (its
    node's, else the workspace's for the channel; in the customer's zone, else the
    campaign's): when they end, as naive UTC."""
    windows = {r.id: w for r in rows if (w := window_for(
        configs.get((r.campaign_id, r.node_id), {}), r.channel, settings))}
    if not windows:
        return {}
    mine = [r for r in rows if r.id in windows]
    zones = dict(conn.execute(select(Customer.id, Customer.timezone).where(
        among(conn, Customer.id, {r.customer_id for r in mine}))).all())
    out = {}
    for r in mine:
        zone = zones.get(r.customer_id) or campaign_zones[r.campaign_id]
        if (end := quiet_until(when[r.id], zone, windows[r.id])) is not None:
            out[r.id] = end
    return out
