"""Segments: rules compiled to SQL over customers and evaluated inside the database as of a date.

The engine API used by campaigns, the CLI and the web:
`count`, `sample`, `member_ids` (a selectable for INSERT ... SELECT) and `validate_rules`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, func, select

from engine.models import Customer, Segment
from engine.segments.rules import Catalog, compile_rules, validate_rules
from engine.segments.scoped import Scope

__all__ = ["Catalog", "Scope", "compile_rules", "count", "load_catalog", "member_ids", "sample",
           "validate_rules"]


def load_catalog(conn: Connection) -> dict[str, Any]:
    """Every saved segment's rules by key (segments are few; their members never load)."""
    return dict(conn.execute(select(Segment.key, Segment.rules)).all())


def member_ids(rules: Any, as_of: date, catalog: Catalog) -> Select[int]:
    return select(Customer.id).where(compile_rules(rules, as_of, catalog))


def count(conn: Connection, rules: Any, as_of: date, catalog: Catalog | None = None) -> int:
    catalog = load_catalog(conn) if catalog is None else catalog
    stmt = select(func.count()).select_from(Customer).where(compile_rules(rules, as_of, catalog))
    return int(conn.execute(stmt).scalar_one())


SAMPLE_COLUMNS = (Customer.id, Customer.external_id, Customer.first_name, Customer.last_name,
                  Customer.email, Customer.phone)


def sample(conn: Connection, rules: Any, as_of: date, n: int = 10,
           catalog: Catalog | None = None) -> list[dict[str, Any]]:
    catalog = load_catalog(conn) if catalog is None else catalog
    stmt = (select(*SAMPLE_COLUMNS).where(compile_rules(rules, as_of, catalog))
            .order_by(Customer.id).limit(n))
    return [dict(r._mapping) for r in conn.execute(stmt)]
