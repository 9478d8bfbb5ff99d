"""The README's run command: `nudgeflow demo` builds a ready workspace; seed-demo data is
realistic (leap-day birthdays, bad contacts, opt-outs, paid, overdue and upcoming invoices)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from engine.models import Base, Campaign, Customer, Invoice, Run
from engine.seed import seed_demo
from tests.conftest import Db


def test_seed_demo_is_realistic(db: Db) -> None:
    today = date(2026, 3, 1)
    made = seed_demo(db.engine, 600, "ZA", seed=7, today=today)
    assert made["customers"] == 600
    with db.engine.connect() as conn:
        def count(*where: object) -> int:
            return int(conn.execute(select(func.count()).select_from(Customer)
                                    .where(*where)).scalar_one())

        assert count() == 600
        assert count(Customer.birth_mmdd == 229) >= 5
        assert count(Customer.birth_mmdd == 301) >= 10  # a few birthdays "today"
        assert 5 <= count(Customer.email_valid.is_(False)) <= 60
        assert 5 <= count(Customer.phone_valid.is_(False)) <= 60
        assert 20 <= count(Customer.email_opt_out) <= 90
        assert 300 <= count(Customer.marketing_consent) <= 520
        invoices = conn.execute(select(Invoice.due_date, Invoice.paid_at)).all()
    assert len(invoices) == made["invoices"] > 500
    assert any(i.paid_at is not None for i in invoices)
    assert any(i.paid_at is None and (today - i.due_date).days >= 30 for i in invoices)
    assert any(i.paid_at is None and i.due_date > today for i in invoices)
    # The same seed gives the same data; a second seeding updates rather than duplicates.
    seed_demo(db.engine, 600, "ZA", seed=7, today=today)
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Customer)).scalar_one() == 600


def test_demo_sets_up_runs_and_writes_messages(nf, db: Db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    Base.metadata.drop_all(db.engine)  # a fresh machine: the demo builds the schema itself
    result = nf("demo", "--customers", "400", "--no-wait")
    assert result.code == 0, result.err
    assert "demo data: 400 customers" in result.out
    assert "example campaigns: 4 campaigns, 4 segments, 4 templates" in result.out
    with db.engine.connect() as conn:
        keys = set(conn.execute(select(Campaign.key)).scalars())
        runs = conn.execute(select(Run.status)).scalars().all()
    assert keys == {"birthday-bonus", "past-due-blast", "installment-reminder", "spring-offer"}
    assert runs and set(runs) == {"completed"}
    outbox = tmp_path / "outbox"
    written = list(outbox.rglob("*.txt")) + list(outbox.rglob("*.eml"))
    assert written, "the file provider wrote no message"
    # Running it again keeps the data and adds no duplicate runs.
    again = nf("demo", "--no-wait")
    assert again.code == 0 and "demo data" not in again.out
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Run)).scalar_one() == len(runs)
