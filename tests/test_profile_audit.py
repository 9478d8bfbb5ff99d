"""The profile audit: changes to contact, consent and opt-out fields by an import or the API
are in the customer's timeline with the old and new values; unchanged rows write nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from engine.models import Activity, Customer
from tests.conftest import Db
from tests.webapp import token_for

HEADER = "external_id,first_name,email,phone,sms_opt_out,marketing_consent\n"


def changes(db: Db) -> list[tuple[str, str, dict[str, Any]]]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(Customer.external_id, Activity.summary, Activity.details)
                            .join(Customer, Customer.id == Activity.customer_id)
                            .where(Activity.kind == "profile_changed")
                            .order_by(Activity.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_reimport_records_what_changed(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "A1,Ana,ana@example.com,+27821234567,no,yes\n"
                             "B2,Ben,ben@example.com,,no,no\n")
    assert nf("import", "customers", str(path)).code == 0
    assert changes(db) == []  # new customers: nothing changed
    # Ana's email and SMS opt-out change; Ben's name changes (not audited); then the same file.
    path.write_text(HEADER + "A1,Ana,ANA.NEW@example.com,+27821234567,yes,yes\n"
                             "B2,Benjamin,ben@example.com,,no,no\n")
    assert nf("import", "customers", str(path)).code == 0
    assert nf("import", "customers", str(path)).code == 0
    (ext, summary, details), = changes(db)
    assert (ext, summary) == ("A1", "Profile changed (import people.csv): email, sms_opt_out")
    assert details == {"source": "import people.csv", "fields": {
        "email": {"old": "ana@example.com", "new": "ANA.NEW@example.com"},
        "sms_opt_out": {"old": False, "new": True}}}


def test_an_api_upsert_records_what_changed(app: Flask, db: Db) -> None:
    client, marketer = app.test_client(), token_for(db, "marketer")
    answer = client.put("/api/v1/customers/C9", headers=marketer,
                        json={"first_name": "Cara", "phone": "+27831112222"})
    assert answer.status_code == 200, answer.json
    answer = client.post("/api/v1/customers/bulk", headers=marketer, json={"records": [
        {"external_id": "C9", "phone": "+27831113333", "marketing_consent": True}]})
    assert answer.status_code == 200, answer.json
    (ext, summary, details), = changes(db)
    assert (ext, summary) == ("C9", "Profile changed (API): phone, marketing_consent")
    assert details["fields"] == {"phone": {"old": "+27831112222", "new": "+27831113333"},
                                 "marketing_consent": {"old": False, "new": True}}
    # The customer's timeline shows it, newest first.
    timeline = client.get("/api/v1/customers/C9/activity", headers=marketer)
    assert timeline.status_code == 200
    assert [a["kind"] for a in timeline.json] == ["profile_changed"]
