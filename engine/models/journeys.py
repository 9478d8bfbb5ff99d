"""What journeys keep between runs: pairs parked at a wait node, and the events that trigger
event campaigns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, enum_check, utcnow
from engine.models.effects import NODE_ID, OCCURRENCE

WAIT_STATUSES = ("waiting", "released", "exited")


class JourneyWait(Base):
    """A (customer, occurrence) pair parked at a wait node until `release_on`. Keyed like every
    effect, so a re-run parks nothing twice; a release marks the row, so no run releases it
    twice; an exit (the campaign's exit_when matched) ends it with the reason."""

    __tablename__ = "journey_waits"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(NODE_ID)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    occurrence: Mapped[str] = mapped_column(OCCURRENCE)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    parked_on: Mapped[date] = mapped_column(Date)
    release_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    # The run date it was released or exited on (a re-run of that date passes it on again).
    ended_on: Mapped[date | None] = mapped_column(Date)
    parked_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    ended_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("campaign_id", "node_id", "customer_id", "occurrence"),
        CheckConstraint(enum_check("status", WAIT_STATUSES), name="status"),
        # The run's question: which pairs at this node are due by D and still waiting?
        Index("ix_journey_waits_due", "campaign_id", "node_id", "status", "release_on"),
        Index("ix_journey_waits_customer_id", "customer_id"),
    )


class Event(Base):
    """Something a customer did, posted by another system; `external_id` is the sender's
    idempotency key, so the same event posted twice is stored (and fires) once."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_events_name_at", "name", "at"),
        Index("ix_events_customer_id_at", "customer_id", "at"),
    )
