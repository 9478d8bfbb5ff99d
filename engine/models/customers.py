from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, validates

from engine.models.base import Base, Timestamps

MONEY = Numeric(14, 2)


def birth_mmdd(d: date | None) -> int | None:
    """Month and day as one integer (0229 -> 229): the key of the birthday index."""
    return None if d is None else d.month * 100 + d.day


class Customer(Timestamps, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    email_valid: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_valid: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    gender: Mapped[str | None] = mapped_column(String(20))
    birth_date: Mapped[date | None] = mapped_column(Date)
    # Derived from birth_date on every write; the birthday trigger looks it up by index.
    birth_mmdd: Mapped[int | None] = mapped_column(SmallInteger)
    registered_at: Mapped[date | None] = mapped_column(Date)
    branch: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(50))
    email_opt_out: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    sms_opt_out: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    marketing_consent: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # IANA zone the customer lives in (quiet hours are read in it); NULL: the campaign's.
    timezone: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")

    __table_args__ = (
        Index("ix_customers_birth_mmdd", "birth_mmdd"),
        Index("ix_customers_registered_at", "registered_at"),
        CheckConstraint("birth_mmdd BETWEEN 101 AND 1231", name="birth_mmdd_range"),
    )

    @validates("birth_date")
    def _keep_mmdd(self, _key: str, value: date | None) -> date | None:
        self.birth_mmdd = birth_mmdd(value)
        return value


class Invoice(Timestamps, Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    paid_at: Mapped[date | None] = mapped_column(Date)
    # Any other imported column: policy number, plate, car model, insurer.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")

    __table_args__ = (
        Index("ix_invoices_customer_id_due_date", "customer_id", "due_date"),
        Index("ix_invoices_due_date", "due_date"),
        # "Unpaid as of D" as two index ranges (engine/segments/fields.py overdue_customers):
        # the invoices never paid, and those paid after D (none when D is on or after every
        # recorded payment). Partial, so neither holds the other's rows (migration 0013).
        Index("ix_invoices_unpaid", "due_date", "customer_id",
              postgresql_where=text("paid_at IS NULL"), sqlite_where=text("paid_at IS NULL")),
        Index("ix_invoices_paid_at", "paid_at", postgresql_where=text("paid_at IS NOT NULL"),
              sqlite_where=text("paid_at IS NOT NULL")),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )
