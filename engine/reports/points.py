"""The points report: bonus ledger movements (accruals, expiries, redemptions, adjustments)
found by description, legal entity, campaign, customer, kind and booking dates.

Rows come latest booking first, a page at a time by keyset (`after`: the last row's
booked_on and id), with no rows to skip however deep the page; the totals per kind cover the whole
filter. Customers appear by external id only: no name or contact details."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql.expression import ColumnElement

from engine.models import BonusLedger, Campaign, Customer
from engine.models.effects import LEDGER_KINDS
from engine.sql import AnySelect

COLUMNS = ("id", "booked_on", "kind", "amount", "expires_at", "legal_entity", "description",
           "campaign", "customer")
# A page cursor: the last row's booked_on (as a day number, date.toordinal) and id. Any two
# numbers make a cursor ("rows before this one"), so a client cannot send a wrong one.
CURSOR_PATTERN = r"^([0-9]{1,18})\.([0-9]{1,18})$"
CURSOR = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True)
class PointsFilter:
    """Which ledger rows a report covers; None: any. `description` is a substring of the
    description in any case; `legal_entity` the whole name in any case."""

    description: str | None = None
    legal_entity: str | None = None
    campaign: str | None = None
    customer: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(f: PointsFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.description:
        where.append(func.lower(BonusLedger.description).like(_like(f.description), escape="\\"))
    if f.legal_entity:
        where.append(func.lower(BonusLedger.legal_entity) == f.legal_entity.lower())
    # Campaign and customer by their ids, so the ledger is filtered before anything is joined.
    if f.campaign:
        where.append(BonusLedger.campaign_id.in_(
            select(Campaign.id).where(Campaign.key == f.campaign)))
    if f.customer:
        where.append(BonusLedger.customer_id.in_(
            select(Customer.id).where(Customer.external_id == f.customer)))
    if f.kind:
        where.append(BonusLedger.kind == f.kind)
    if f.since:
        where.append(BonusLedger.booked_on >= f.since)
    if f.until:
        where.append(BonusLedger.booked_on <= f.until)
    return where


ORDER = (BonusLedger.booked_on.desc(), BonusLedger.id.desc())


def _shown(ledger: Any) -> AnySelect:
    """COLUMNS of the ledger rows in `ledger` (a subquery), latest booking first."""
    return (select(ledger.c.id, ledger.c.booked_on, ledger.c.kind, ledger.c.amount,
                   ledger.c.expires_at, ledger.c.legal_entity, ledger.c.description,
                   Campaign.key.label("campaign"), Customer.external_id.label("customer"))
            .select_from(ledger).join(Customer, Customer.id == ledger.c.customer_id)
            .outerjoin(Campaign, Campaign.id == ledger.c.campaign_id)
            .order_by(ledger.c.booked_on.desc(), ledger.c.id.desc()))


def statement(f: PointsFilter) -> AnySelect:
    """Every row of the filter, latest booking first (the CSV)."""
    return _shown(select(BonusLedger).where(*_where(f)).subquery())


def parse_cursor(text: str) -> tuple[date, int]:
    """A page cursor ("739698.1042") as (booked_on, id); ValueError saying what is wrong."""
    match = CURSOR.fullmatch(text)
    if match is None:
        raise ValueError(f"expected the `next` of a previous answer (two whole numbers joined "
                         f"by a dot), got {text!r}")
    day = min(max(int(match[1]), 1), date.max.toordinal())
    return date.fromordinal(day), int(match[2])


def cursor_of(row: dict[str, Any]) -> str:
    return f"{row['booked_on'].toordinal()}.{row['id']}"


def page(conn: Connection, f: PointsFilter, limit: int,
         after: tuple[date, int] | None = None) -> dict[str, Any]:
    """`limit` rows after the cursor, the cursor of the next page (None on the last) and the
    totals per kind over the whole filter."""
    where = _where(f)
    if after is not None:
        day, last = after
        where.append(or_(BonusLedger.booked_on < day,
                         and_(BonusLedger.booked_on == day, BonusLedger.id < last)))
    # The page is picked from the ledger alone; only its rows are joined to their names.
    picked = select(BonusLedger).where(*where).order_by(*ORDER).limit(limit + 1).subquery()
    rows = [dict(r._mapping) for r in conn.execute(_shown(picked))]
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = cursor_of(rows[-1]) if more else None
    return {"items": rows, "next": cursor, "totals": totals(conn, f)}


def totals(conn: Connection, f: PointsFilter) -> dict[str, Any]:
    """Rows and points per kind (every kind, 0 when none), and the net points."""
    found = {r.kind: {"rows": int(r.rows), "points": int(r.points)} for r in conn.execute(
        select(BonusLedger.kind, func.count().label("rows"),
               func.coalesce(func.sum(BonusLedger.amount), 0).label("points"))
        .where(*_where(f)).group_by(BonusLedger.kind))}
    kinds = {k: found.get(k, {"rows": 0, "points": 0}) for k in LEDGER_KINDS}
    return {"kinds": kinds, "rows": sum(k["rows"] for k in kinds.values()),
            "net": sum(k["points"] for k in kinds.values())}
