"""contacts.view: without it, email addresses and phone numbers are masked in the customer API
and pages, messages, data sets and exports, and are not searched. And the finer checks of a
campaign save: a status change needs campaigns.run, a sender or reply-to change senders.edit."""

from __future__ import annotations

import copy
import csv
import io

from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import insert

from engine import datasets
from engine.access.masking import mask_email, mask_phone, mask_text
from engine.db import write_transaction
from engine.models import Customer
from tests.campaign_docs import BIRTHDAY, SEGMENTS, TEMPLATES
from tests.conftest import Db
from tests.test_permissions import user_with
from tests.webapp import birthday_run, ok, session_client, token_for

ANA_EMAIL, ANA_PHONE = "ana@example.com", "+27821234567"


def test_mask_rules() -> None:
    assert mask_email(ANA_EMAIL) == "a***@example.com"
    assert (mask_email("no-at-sign"), mask_email("@x.org"), mask_email(None)) == \
        ("***", "***", None)
    assert (mask_phone(ANA_PHONE), mask_phone("7"), mask_phone(None)) == ("***67", "***7", None)
    assert mask_text(f"Email address {ANA_EMAIL} marked not valid; SMS to {ANA_PHONE}") == \
        "Email address a***@example.com marked not valid; SMS to ***67"


def test_sql_masks_equal_the_python_ones(db: Db) -> None:
    """Data sets mask in SQL; the same values as the API's Python rule, on both databases."""
    contacts = [("ana@example.com", "+27821234567"), ("x@y", "7"), ("no-at", ""),
                ("@lead.org", "12"), (None, None), ("ü@ñ.example", "+4915112345678")]
    with write_transaction(db.engine) as conn:
        conn.execute(insert(Customer), [{"external_id": f"C{i}", "email": e, "phone": p}
                                         for i, (e, p) in enumerate(contacts)])
        ds = datasets.for_rules(conn, {"all": []}, "external_id,email,phone", _today(),
                                masked=True)
        got = [row[1:] for row in datasets.rows(conn, ds)]
    assert got == [(mask_email(e), mask_phone(p)) for e, p in contacts]


def _today():  # type: ignore[no-untyped-def]
    from datetime import date

    return date(2025, 3, 10)


def _world(app: Flask, db: Db) -> tuple[dict[str, str], dict[str, str]]:
    """Ana with an email (set through the API: a profile_changed activity) and a queued SMS;
    an analyst without contacts.view and the built-in viewer with it."""
    client, marketer = app.test_client(), token_for(db, "marketer")
    ok(client.put("/api/v1/customers/C1", json={"email": ANA_EMAIL}, headers=marketer))
    birthday_run(client, marketer)
    return user_with(db, "analyst", {"view", "data.export"}), token_for(db, "viewer")


def test_customer_api_masks_contacts_without_contacts_view(app: Flask, db: Db) -> None:
    analyst, viewer = _world(app, db)
    client = app.test_client()
    full = ok(client.get("/api/v1/customers/C1", headers=viewer))
    assert (full["email"], full["phone"]) == (ANA_EMAIL, ANA_PHONE)
    masked = ok(client.get("/api/v1/customers/C1", headers=analyst))
    assert (masked["email"], masked["phone"]) == ("a***@example.com", "***67")
    assert masked["first_name"] == "<b>Ana</b>"
    # Search by name works; by email or phone finds nobody (it would reveal them).
    by_name = ok(client.get("/api/v1/customers?q=ana", headers=analyst))
    assert [(c["external_id"], c["email"]) for c in by_name["items"]] == [
        ("C1", "a***@example.com")]
    for q in ("ana@example", "082 123 4567", "2123"):
        assert ok(client.get(f"/api/v1/customers?q={q}", headers=analyst))["total"] == 0, q
        assert ok(client.get(f"/api/v1/customers?q={q}", headers=viewer))["total"] == 1, q
    # Messages' addresses, and the old and new values of a profile change.
    for url in ("/api/v1/messages", "/api/v1/customers/C1/messages"):
        assert [m["address"] for m in ok(client.get(url, headers=analyst))] == ["***67"], url
        assert [m["address"] for m in ok(client.get(url, headers=viewer))] == [ANA_PHONE], url
    changed = [a for a in ok(client.get("/api/v1/customers/C1/activity", headers=analyst))
               if a["kind"] == "profile_changed"]
    assert changed[0]["details"]["fields"]["email"] == {"old": None, "new": "a***@example.com"}
    preview = ok(client.post("/api/v1/segments/preview", headers=user_with(
        db, "builder", {"campaigns.edit"}), json={"rules": SEGMENTS[0]["rules"]}))
    assert [(s["email"], s["phone"]) for s in preview["sample"]] == [
        ("a***@example.com", "***67")]


def test_data_sets_and_exports_mask_contacts(app: Flask, db: Db) -> None:
    analyst, viewer = _world(app, db)
    client = app.test_client()
    query = "columns=external_id,email,phone&date=2025-03-10"
    page = ok(client.get(f"/api/v1/segments/member-1y/dataset?{query}", headers=analyst))
    assert page["items"] == [{"external_id": "C1", "email": "a***@example.com",
                              "phone": "***67"}]
    as_csv = ok(client.get(f"/api/v1/segments/member-1y/dataset.csv?{query}", headers=analyst))
    assert list(csv.reader(io.StringIO(as_csv))) == [
        ["external_id", "email", "phone"], ["C1", "a***@example.com", "***67"]]
    xlsx = client.get(f"/api/v1/segments/member-1y/dataset.xlsx?{query}", headers=analyst)
    data = xlsx.data
    xlsx.close()  # as a WSGI server does: closes the spooled file
    book = load_workbook(io.BytesIO(data), read_only=True)
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    book.close()
    assert rows == [["external_id", "email", "phone"], ["C1", "a***@example.com", "***67"]]
    export = ok(client.get("/api/v1/segments/member-1y/export.csv?date=2025-03-10",
                           headers=analyst))
    assert export.splitlines()[1] == "C1,<b>Ana</b>,,a***@example.com,***67"
    export = ok(client.get("/api/v1/segments/member-1y/export.csv?date=2025-03-10",
                           headers=viewer))
    assert export.splitlines()[1] == f"C1,<b>Ana</b>,,{ANA_EMAIL},{ANA_PHONE}"


def test_pages_mask_contacts(app: Flask, db: Db) -> None:
    _world(app, db)
    client, _ = session_client(app, "analyst")
    for path in ("/customers", "/customers?q=ana", "/customers/C1", "/messages",
                 "/segments/member-1y/dataset?column=external_id&column=email&column=phone"
                 "&date=2025-03-10"):
        page = ok(client.get(path))
        assert ANA_EMAIL not in page and ANA_PHONE not in page, path
        assert "a***@example.com" in page or "***67" in page, path
    viewer, _ = session_client(app, "viewer")
    assert ANA_EMAIL in ok(viewer.get("/customers/C1"))


def test_campaign_save_needs_run_and_senders_for_those_changes(app: Flask, db: Db) -> None:
    client, marketer = app.test_client(), token_for(db, "marketer")
    ok(client.post("/api/v1/segments", json=SEGMENTS[0], headers=marketer), 201)
    for template in TEMPLATES:
        ok(client.post("/api/v1/templates", json=template, headers=marketer), 201)
    designer = user_with(db, "designer", {"view", "campaigns.edit"})
    active = ok(client.post("/api/v1/campaigns", json=BIRTHDAY, headers=designer), 403)
    assert active["error"]["details"] == [{"path": "permission", "message": "campaigns.run"}]
    assert client.get("/api/v1/campaigns/birthday-bonus", headers=designer).status_code == 404
    draft = copy.deepcopy(BIRTHDAY) | {"status": "draft"}
    assert ok(client.post("/api/v1/campaigns", json=draft, headers=designer), 201)[
        "version"] == 1
    with_sender = copy.deepcopy(draft)
    with_sender["graph"]["nodes"][3]["config"]["sender"] = "Shop"
    refused = ok(client.put("/api/v1/campaigns/birthday-bonus", json=with_sender,
                            headers=designer), 403)
    assert refused["error"]["details"] == [{"path": "permission", "message": "senders.edit"}]
    assert ok(client.get("/api/v1/campaigns/birthday-bonus", headers=designer))["version"] == 1
    assert ok(client.put("/api/v1/campaigns/birthday-bonus", json=with_sender,
                         headers=marketer))["version"] == 2
    # An unchanged sender needs nothing more; other edits go through.
    bigger = copy.deepcopy(with_sender)
    bigger["graph"]["nodes"][2]["config"]["amount"] = 150
    assert ok(client.put("/api/v1/campaigns/birthday-bonus", json=bigger,
                         headers=designer))["version"] == 3
    activate = ok(client.put("/api/v1/campaigns/birthday-bonus", headers=designer,
                             json=bigger | {"status": "active"}), 403)
    assert activate["error"]["details"][0]["message"] == "campaigns.run"
    # The editor greys out what the user may not do.
    from tests.test_pages import boot_of

    page, _ = session_client(app, "designer")
    boot = boot_of(ok(page.get("/campaigns/birthday-bonus/edit")))
    assert (boot["can_write"], boot["can_run"], boot["can_edit_senders"]) == (True, False, False)


def test_explain_masks_the_customers_contact_values(app: Flask, db: Db) -> None:
    analyst, viewer = _world(app, db)
    client, marketer = app.test_client(), token_for(db, "marketer")
    ok(client.post("/api/v1/segments", headers=marketer, json={
        "key": "example-mail", "name": "Example mail",
        "rules": {"field": "email", "op": "contains", "value": "example"}}), 201)
    campaign = copy.deepcopy(BIRTHDAY) | {"key": "mail-check", "status": "draft"}
    campaign["graph"]["nodes"][1]["config"]["segment"] = "example-mail"
    ok(client.post("/api/v1/campaigns", headers=marketer, json=campaign), 201)
    url = "/api/v1/customers/C1/explain?campaign=mail-check&date=2025-03-10"

    def email_values(answer: dict) -> list:  # type: ignore[type-arg]
        return [c["customer_value"] for n in answer["nodes"] if isinstance(n["detail"], dict)
                for c in n["detail"].get("conditions", []) if c["field"] == "email"]

    assert email_values(ok(client.get(url, headers=viewer))) == [ANA_EMAIL]
    assert email_values(ok(client.get(url, headers=analyst))) == ["a***@example.com"]
    page, _ = session_client(app, "analyst")
    profile = ok(page.get("/customers/C1?explain=mail-check&on=2025-03-10"))
    assert ANA_EMAIL not in profile and "a***@example.com" in profile
