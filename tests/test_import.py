"""Customer and invoice import through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from engine.models import Customer, Invoice
from tests.conftest import Db

HEADER = ("external_id,first_name,last_name,email,phone,birth_date,registered_at,"
          "email_opt_out,marketing_consent,employer,salary\n")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def customers(db: Db) -> dict[str, dict]:  # type: ignore[type-arg]
    with db.engine.connect() as conn:
        return {r.external_id: dict(r._mapping) for r in conn.execute(select(Customer.__table__))}


def test_good_file_imports_and_normalises(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "c.csv", HEADER
                 + "C1,Thandi,Nkosi,Thandi@Example.COM,082 123 4567,1990-02-28,2020-05-01,no,yes,Acme,15000\n"
                 + "C2,Piet,,not-an-email,12345,2000-02-29,,YES,0,,007\n")
    result = nf("import", "customers", str(path))
    assert result.code == 0, result.err
    assert result.out == ("customers: 2 rows, 2 inserted, 0 updated; "
                          "warnings: 1 invalid email, 1 invalid phone, 2 phones had no country "
                          "code and were read as ZA numbers\n")
    got = customers(db)
    c1, c2 = got["C1"], got["C2"]
    assert (c1["email"], c1["email_valid"]) == ("Thandi@example.com", True)
    assert (c1["phone"], c1["phone_valid"]) == ("+27821234567", True)
    assert (c1["birth_date"], c1["birth_mmdd"], c1["registered_at"]) == (
        date(1990, 2, 28), 228, date(2020, 5, 1))
    assert (c1["email_opt_out"], c1["marketing_consent"]) == (False, True)
    assert c1["attributes"] == {"employer": "Acme", "salary": 15000}
    assert (c2["email"], c2["email_valid"], c2["phone"], c2["phone_valid"]) == (
        "not-an-email", False, "12345", False)
    assert (c2["birth_mmdd"], c2["email_opt_out"], c2["marketing_consent"]) == (229, True, False)
    assert c2["last_name"] is None and c2["registered_at"] is None
    assert c2["attributes"] == {"salary": "007"}


def test_reimport_updates_without_duplicates(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nf("import", "customers", str(write(tmp_path, "a.csv", HEADER
       + "C1,Thandi,Nkosi,t@example.com,,1990-01-01,,,,Acme,1\n")))
    result = nf("import", "customers", str(write(tmp_path, "b.csv",
                "external_id,first_name,branch\nC1,Thandiwe,Durban\nC3,Sipho,\n")))
    assert result.out == "customers: 2 rows, 1 inserted, 1 updated\n"
    got = customers(db)
    assert sorted(got) == ["C1", "C3"]
    # Columns the second file did not carry are kept; attributes are merged.
    assert (got["C1"]["first_name"], got["C1"]["branch"], got["C1"]["email"]) == (
        "Thandiwe", "Durban", "t@example.com")
    assert got["C1"]["attributes"] == {"employer": "Acme", "salary": 1}


def test_one_bad_row_changes_nothing_and_every_error_is_listed(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nf("import", "customers", str(write(tmp_path, "a.csv", "external_id,first_name\nC1,Old\n")))
    path = write(tmp_path, "bad.csv", "external_id,first_name,birth_date,sms_opt_out\n"
                 "C1,New,1990-01-01,no\n"
                 ",Nobody,,\n"
                 "C2,Bad date,1990-13-01,\n"
                 "C3,Bad flag,,maybe\n"
                 "C1,Twice,,\n")
    result = nf("import", "customers", str(path))
    assert result.code == 2
    assert result.out == ""
    assert result.err.splitlines() == [
        f"error: {path}: 4 row error(s)",
        f"{path}:3: external_id: required",
        f"{path}:4: birth_date: expected an ISO date (YYYY-MM-DD), got '1990-13-01'",
        f"{path}:5: sms_opt_out: expected yes/no/true/false/1/0, got 'maybe'",
        f"{path}:6: external_id: 'C1' already appears on line 2",
    ]
    got = customers(db)
    assert sorted(got) == ["C1"] and got["C1"]["first_name"] == "Old"


def test_invoices_need_existing_customers(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nf("import", "customers", str(write(tmp_path, "c.csv", "external_id\nC1\n")))
    path = write(tmp_path, "i.csv", "external_id,customer_external_id,amount,currency,due_date,paid_at\n"
                 "I1,C1,100.50,zar,2026-01-31,\n"
                 "I2,C9,10,ZAR,2026-01-31,\n"
                 "I3,C1,ten,ZAR,2026-01-31,\n")
    result = nf("import", "invoices", str(path))
    assert result.code == 2
    assert f"{path}:3: customer_external_id: no customer 'C9'" in result.err
    assert f"{path}:4: amount: expected a number, got 'ten'" in result.err
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Invoice)).scalar_one() == 0
    good = write(tmp_path, "i2.csv", "external_id,customer_external_id,amount,currency,due_date,paid_at\n"
                 "I1,C1,100.50,zar,2026-01-31,\nI2,C1,20,ZAR,2026-02-28,2026-02-20\n")
    assert nf("import", "invoices", str(good)).out == "invoices: 2 rows, 2 inserted, 0 updated\n"
    with db.engine.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(select(Invoice.__table__))}
    assert (rows["I1"].amount, rows["I1"].currency, rows["I1"].paid_at) == (
        Decimal("100.50"), "ZAR", None)
    assert rows["I2"].paid_at == date(2026, 2, 20)


def test_json_lines(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = [{"external_id": "J1", "first_name": "Ana", "sms_opt_out": True, "tier": "gold",
              "score": 7.5}, {"external_id": "J2", "birth_date": "1985-07-04"}]
    path = write(tmp_path, "c.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    assert nf("import", "customers", str(path), "--json").code == 0
    got = customers(db)
    assert got["J1"]["sms_opt_out"] is True
    assert got["J1"]["attributes"] == {"tier": "gold", "score": 7.5}
    assert got["J2"]["birth_date"] == date(1985, 7, 4)


def test_missing_file_and_uninitialised_database(nf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = nf("import", "customers", str(tmp_path / "nope.csv"))
    assert result.code == 2 and "does not exist" in result.err


def test_phones_without_a_country_code_are_read_with_the_default_region_and_counted(
        nf, db: Db, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "c.csv", "external_id,phone\nLT1,868688960\nZA1,082 123 4567\n"
                                    "INT,+37068688960\n")
    result = nf("import", "customers", str(path), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["warnings"] == {
        "invalid phone": 1, "phones had no country code and were read as ZA numbers": 2}
    got = customers(db)
    # Read as ZA, the Lithuanian mobile would be a premium-rate +27 number: not marked valid.
    assert (got["LT1"]["phone"], got["LT1"]["phone_valid"]) == ("868688960", False)
    assert (got["ZA1"]["phone"], got["ZA1"]["phone_valid"]) == ("+27821234567", True)
    assert (got["INT"]["phone"], got["INT"]["phone_valid"]) == ("+37068688960", True)
    monkeypatch.setenv("NUDGEFLOW_DEFAULT_REGION", "LT")
    again = nf("import", "customers", str(write(tmp_path, "lt.csv", "external_id,phone\n"
                                                "LT1,868688960\n")))
    assert again.code == 0, again.err
    assert again.out == ("customers: 1 rows, 0 inserted, 1 updated; warnings: 1 phones had no "
                         "country code and were read as LT numbers\n")
    assert (customers(db)["LT1"]["phone"], customers(db)["LT1"]["phone_valid"]) == (
        "+37068688960", True)
