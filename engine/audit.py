"""The profile audit: a change to a customer's contact, consent or opt-out fields by an import
or the API writes a `profile_changed` activity with each changed field's old and new value.
Taken per import batch: one read of the batch's existing customers before it is written, one
after, one bulk insert of the activities. (Unsubscribe links and provider webhooks write their
own activities, `unsubscribed` and `opted_out`, with the reason.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from engine.models import Activity, Customer
from engine.models.base import utcnow

AUDITED = ("email", "phone", "email_opt_out", "sms_opt_out", "marketing_consent")
C = Customer.__table__.c


def snapshot(conn: Connection, external_ids: Iterable[str]) -> dict[str, Any]:
    """The audited fields of the customers that exist among `external_ids`, by external id."""
    rows = conn.execute(select(C.id, C.external_id, *(C[f] for f in AUDITED))
                        .where(C.external_id.in_(list(external_ids))))
    return {r.external_id: r for r in rows}


def record_changes(conn: Connection, before: dict[str, Any], source: str,
                   now: datetime | None = None) -> int:
    """Compare the customers of `before` with what they hold now; write one activity per
    customer with changed fields. Returns how many customers changed."""
    if not before:
        return 0
    now = now or utcnow()
    after = {r.id: r for r in conn.execute(
        select(C.id, *(C[f] for f in AUDITED)).where(C.id.in_([r.id for r in before.values()])))}
    activities = []
    for old in before.values():
        new = after[old.id]
        changed = {f: {"old": _json(getattr(old, f)), "new": _json(getattr(new, f))}
                   for f in AUDITED if getattr(old, f) != getattr(new, f)}
        if changed:
            activities.append({
                "customer_id": old.id, "at": now, "kind": "profile_changed",
                "summary": f"Profile changed ({source}): {', '.join(changed)}",
                "details": {"source": source, "fields": changed}})
    if activities:
        conn.execute(insert(Activity), activities)
    return len(activities)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
