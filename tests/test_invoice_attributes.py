"""Invoice columns beyond the known ones (policy number, plate, car model, insurer): kept in
`invoices.attributes` by every import path, read by templates as `invoice.attributes.NAME`, and
shown on the customer's page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from engine.models import Invoice
from tests.conftest import Db
from tests.webapp import ok, session_client, token_for

INVOICES = "external_id,customer_external_id,amount,currency,due_date,paid_at"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def attributes(db: Db) -> dict[str, dict[str, Any]]:
    with db.engine.connect() as conn:
        return {ext: attrs for ext, attrs in conn.execute(
            select(Invoice.external_id, Invoice.attributes))}


def with_customer(nf: Any, tmp_path: Path) -> None:
    result = nf("import", "customers", str(write(tmp_path, "c.csv",
                "external_id,first_name,phone\nC1,Ana,+27821234567\n")))
    assert result.code == 0, result.err


def test_csv_import_keeps_extra_columns_and_reimport_updates_them(nf: Any, db: Db,
                                                                  tmp_path: Path) -> None:
    with_customer(nf, tmp_path)
    path = write(tmp_path, "i.csv", f"{INVOICES},policy_number,car_model,plate,year,insurer\n"
                 "I1,C1,450.00,ZAR,2026-01-13,,PN-123,VW Golf,007,2019,\n"
                 "I2,C1,99.90,ZAR,2026-02-13,,PN-124, Polo ,CA 123-456,,Old Mutual\n")
    result = nf("import", "invoices", str(path))
    assert (result.code, result.out) == (0, "invoices: 2 rows, 2 inserted, 0 updated\n")
    # As for customers: an empty cell is absent, a plain number is a number, 007 stays text.
    assert attributes(db) == {
        "I1": {"policy_number": "PN-123", "car_model": "VW Golf", "plate": "007", "year": 2019},
        "I2": {"policy_number": "PN-124", "car_model": "Polo", "plate": "CA 123-456",
               "insurer": "Old Mutual"}}
    again = write(tmp_path, "i2.csv", f"{INVOICES},policy_number,insurer\n"
                  "I1,C1,450.00,ZAR,2026-01-13,,PN-999,Santam\n")
    result = nf("import", "invoices", str(again))
    assert (result.code, result.out) == (0, "invoices: 1 rows, 0 inserted, 1 updated\n")
    # Re-import changes the columns it carries and keeps the others (attributes merge).
    assert attributes(db)["I1"] == {"policy_number": "PN-999", "car_model": "VW Golf",
                                    "plate": "007", "year": 2019, "insurer": "Santam"}
    plain = write(tmp_path, "i3.csv", f"{INVOICES}\nI3,C1,1,ZAR,2026-03-01,\n")
    assert nf("import", "invoices", str(plain)).code == 0
    assert attributes(db)["I3"] == {}


def test_json_lines_import_keeps_extra_keys(nf: Any, db: Db, tmp_path: Path) -> None:
    with_customer(nf, tmp_path)
    lines = [{"external_id": "J1", "customer_external_id": "C1", "amount": 10,
              "due_date": "2026-01-13", "policy_number": "PN-123", "insured_value": 150000.5,
              "drivers": ["Ana", "Bo"], "note": None}]
    path = write(tmp_path, "i.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    result = nf("import", "invoices", str(path))
    assert (result.code, result.out) == (0, "invoices: 1 rows, 1 inserted, 0 updated\n")
    assert attributes(db) == {"J1": {"policy_number": "PN-123", "insured_value": 150000.5,
                                     "drivers": ["Ana", "Bo"]}}


def test_extra_columns_are_checked_as_customers_are(nf: Any, db: Db, tmp_path: Path) -> None:
    with_customer(nf, tmp_path)
    path = write(tmp_path, "i.csv", f"{INVOICES},policy no\nI1,C1,1,ZAR,2026-01-13,,PN-1\n")
    result = nf("import", "invoices", str(path))
    assert result.code == 2
    assert f"{path}:2: policy no: extra column names must be letters, digits and _" in result.err
    twice = write(tmp_path, "t.csv", f"{INVOICES},plate,plate\nI1,C1,1,ZAR,2026-01-13,,A,B\n")
    result = nf("import", "invoices", str(twice))
    assert result.code == 2 and "column 'plate' appears twice in the header" in result.err
    nul = write(tmp_path, "n.jsonl", json.dumps({
        "external_id": "I1", "customer_external_id": "C1", "amount": 1,
        "due_date": "2026-01-13", "plate": "A\x00B"}) + "\n")
    result = nf("import", "invoices", str(nul))
    assert result.code == 2 and "plate: text may not contain a NUL character" in result.err
    assert attributes(db) == {}


CAMPAIGNS = {
    "version": 2, "segments": [],
    "templates": [{"key": "policy-sms", "name": "Policy reminder", "channel": "sms",
                   "body": "Policy {{ invoice.attributes.policy_number }} for "
                           "{{ invoice.attributes.car_model }} renews on {{ invoice.due_date }}."}],
    "campaigns": [{"key": "policy-reminder", "name": "Policy reminder", "status": "active",
                   "purpose": "service", "graph": {"nodes": [
                       {"id": "t", "type": "trigger",
                        "config": {"kind": "invoice_due", "offset_days": -3}},
                       # An imported number compares as a number (CSV cells arrive as text).
                       {"id": "c", "type": "condition", "config": {"rules": {
                           "field": "invoice.attributes.year", "op": ">=", "value": 2015}}},
                       {"id": "m", "type": "send-message", "config": {"template": "policy-sms"}}],
                       "edges": [["t", "c"], ["c", "m", "yes"]]}}],
}


def test_an_invoice_due_message_reads_the_invoice_attributes(nf: Any, db: Db,
                                                            tmp_path: Path) -> None:
    with_customer(nf, tmp_path)
    invoices = write(tmp_path, "i.csv", f"{INVOICES},policy_number,car_model,year\n"
                     "I1,C1,450.00,ZAR,2026-01-13,,PN-123,VW Golf,2019\n"
                     "I2,C1,450.00,ZAR,2026-01-13,,PN-124,Toyota Corolla,2009\n"
                     "I3,C1,450.00,ZAR,2026-01-14,,PN-125,Kia Rio,2021\n")
    assert nf("import", "invoices", str(invoices)).code == 0
    campaigns = write(tmp_path, "campaigns.json", json.dumps(CAMPAIGNS))
    result = nf("import", "campaigns", str(campaigns))
    assert result.code == 0, result.err
    result = nf("run", "--date", "2026-01-10")
    assert result.code == 0, result.err
    result = nf("dispatch", "--once")
    assert result.code == 0 and result.out.startswith("claimed 1, sent 1,"), result.out
    sent = [p.read_text(encoding="utf-8") for p in (tmp_path / "outbox" / "sms").glob("*.txt")]
    assert len(sent) == 1
    assert "Policy PN-123 for VW Golf renews on 2026-01-13." in sent[0]


def test_customer_page_and_template_preview_show_invoice_attributes(app: Flask, db: Db) -> None:
    admin = token_for(db, "admin")
    client = app.test_client()
    ok(client.post("/api/v1/invoices/bulk", headers=admin, json={"records": [
        {"external_id": "I1", "customer_external_id": "C1", "amount": "450.00",
         "currency": "ZAR", "due_date": "2099-01-13", "policy_number": "PN-123",
         "car_model": "VW Golf", "note": "<script>alert(1)</script>"}]}))
    ok(client.put("/api/v1/invoices/I1", headers=admin, json={
        "customer_external_id": "C1", "amount": "450.00", "due_date": "2099-01-13",
        "plate": "CA 1"}))
    viewer, _csrf = session_client(app, "viewer")
    text = ok(viewer.get("/customers/C1"))
    section = text[text.index('id="invoices"'):text.index('id="messages"')]
    assert "<code>policy_number</code> PN-123" in section
    assert "<code>car_model</code> VW Golf" in section
    assert "<code>plate</code> CA 1" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "<script>alert" not in text
    marketer, csrf = session_client(app, "marketer")
    preview = ok(marketer.post("/api/v1/templates/preview", headers={"X-CSRFToken": csrf},
                               json={"template": {"key": "draft", "channel": "sms", "body":
                                     "Policy {{ invoice.attributes.policy_number }} for "
                                     "{{ invoice.attributes.car_model }}"},
                                     "customer": "C1"}))
    assert preview["body"] == "Policy PN-123 for VW Golf"
