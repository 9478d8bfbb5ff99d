"""The effects of a run. Each carries the exactly-once key (campaign, node, customer, occurrence)
under a unique constraint, so re-running a date can never create an effect twice."""

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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, enum_check, utcnow
from engine.models.campaigns import CHANNELS

MESSAGE_STATUSES = ("queued", "sending", "sent", "failed", "held", "cancelled", "skipped")
LEDGER_KINDS = ("accrual", "expiry", "redemption", "adjustment")
ACTIVITY_KINDS = (
    "message_queued", "message_skipped", "message_sent", "message_failed", "message_cancelled",
    "bonus_awarded", "bonus_expired", "unsubscribed", "event_received", "journey_exited",
    "message_delivered", "message_bounced", "message_opened", "message_clicked",
    "message_complained", "message_undelivered", "opted_out", "opted_in", "profile_changed",
    "bonus_adjusted", "bonus_redeemed",
)
# Movements that add points (credits): they may be pending, expire, and be redeemed from.
CREDIT_KINDS = ("accrual", "adjustment")
OCCURRENCE = String(64)
NODE_ID = String(64)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The log tables (messages, activities) hold references without foreign keys: a daily
    # run writes hundreds of thousands of rows, and each key checked its parent on every
    # insert (10 of 31 s of a 1M-customer run on PostgreSQL, migration 0018). Their parents
    # are never deleted under them: customers, campaigns and runs are not deleted, a template
    # is deleted only with no message waiting (engine.campaigns.delete_by_key clears the
    # reference), and prune removes a message's activities with it.
    campaign_id: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(NODE_ID)
    customer_id: Mapped[int] = mapped_column(Integer)
    occurrence: Mapped[str] = mapped_column(OCCURRENCE)
    run_id: Mapped[int | None] = mapped_column(Integer)
    invoice_id: Mapped[int | None] = mapped_column(Integer)
    template_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    sender: Mapped[str | None] = mapped_column(String(320))
    # The source of an inline (template-less) message: {"subject": ..., "body": ...}.
    inline_template: Mapped[dict[str, Any] | None]
    # What was sent, rendered, kept for the audit trail.
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    send_after: Mapped[datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Names the claim that leased the message (status `sending`): an outcome is written only
    # under the claim that sent it, so a dispatcher whose lease was taken over writes nothing.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    sms_encoding: Mapped[str | None] = mapped_column(String(5))
    sms_parts: Mapped[int | None]
    # What the provider reported after accepting it (webhooks): delivered, bounced, dropped,
    # deferred, undelivered, failed; opens and clicks are kept as times.
    delivery_status: Mapped[str | None] = mapped_column(String(20))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("campaign_id", "node_id", "customer_id", "occurrence"),
        CheckConstraint(enum_check("status", MESSAGE_STATUSES), name="status"),
        CheckConstraint(enum_check("channel", CHANNELS), name="channel"),
        CheckConstraint("sms_encoding IS NULL OR sms_encoding IN ('gsm7', 'ucs2')", name="encoding"),
        # Partial on PostgreSQL: sent and skipped rows, nearly all of them, are never claimed
        # (migration 0005).
        Index("ix_messages_status_send_after_id", "status", "send_after", "id",
              postgresql_where=text(
                  "status IN ('queued', 'sending', 'held', 'failed', 'cancelled')")),
        Index("ix_messages_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_messages_run_id", "run_id"),
    )


class BonusLedger(Base):
    """Signed point movements. Credits (accrual, adjustment) are positive; a redemption is
    negative and records what it took from which credits in bonus_allocations; an expiry is
    negative and takes what remains of one credit on its expiry date."""

    __tablename__ = "bonus_ledger"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int]
    # The business date the movement counts from (the run date for campaign awards).
    booked_on: Mapped[date] = mapped_column(Date)
    # A credit is pending until this date (null: available from booked_on).
    activates_on: Mapped[date | None] = mapped_column(Date)
    expires_at: Mapped[date | None] = mapped_column(Date)
    legal_entity: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(200))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    node_id: Mapped[str | None] = mapped_column(NODE_ID)
    occurrence: Mapped[str | None] = mapped_column(OCCURRENCE)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # An expiry row points at the credit it expires; one expiry per credit.
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("bonus_ledger.id", ondelete="CASCADE"), unique=True
    )
    # A manual movement's idempotency key (the API's Idempotency-Key or `reference`), once
    # per customer, and who booked it.
    reference: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("campaign_id", "node_id", "customer_id", "occurrence", "kind"),
        CheckConstraint(enum_check("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint("kind != 'accrual' OR amount > 0", name="accrual_positive"),
        CheckConstraint("kind != 'expiry' OR amount < 0", name="expiry_negative"),
        CheckConstraint("kind != 'adjustment' OR amount > 0", name="adjustment_positive"),
        CheckConstraint("kind != 'redemption' OR amount < 0", name="redemption_negative"),
        Index("ix_bonus_ledger_customer_id_booked_on", "customer_id", "booked_on"),
        Index("ix_bonus_ledger_expires_at", "expires_at"),
        # An index, not a constraint: SQLite creates it without rebuilding the table.
        Index("uq_bonus_ledger_customer_id_reference", "customer_id", "reference", unique=True),
    )


class BonusAllocation(Base):
    """What one redemption took from one credit: the redemption's points, spread over the
    customer's credits that expire first. A credit's remainder is its amount less these."""

    __tablename__ = "bonus_allocations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    redemption_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("bonus_ledger.id", ondelete="CASCADE"))
    credit_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("bonus_ledger.id", ondelete="CASCADE"))
    amount: Mapped[int]

    __table_args__ = (
        UniqueConstraint("redemption_id", "credit_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_bonus_allocations_credit_id", "credit_id"),
        Index("ix_bonus_allocations_customer_id", "customer_id"),
    )


class Activity(Base):
    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # References without foreign keys, as on messages (see there).
    customer_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    node_id: Mapped[str | None] = mapped_column(NODE_ID)
    occurrence: Mapped[str | None] = mapped_column(OCCURRENCE)
    run_id: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    ledger_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_activities_customer_id_at", "customer_id", "at"),
        Index("ix_activities_message_id", "message_id"),
        Index("ix_activities_ledger_id", "ledger_id",
              postgresql_where=text("ledger_id IS NOT NULL"),
              sqlite_where=text("ledger_id IS NOT NULL")),
        # One activity of a kind per effect: the activity insert is as idempotent as the effect.
        UniqueConstraint("campaign_id", "node_id", "customer_id", "occurrence", "kind"),
    )


class MessageEvent(Base):
    """One event a provider reported about a sent message (SendGrid's event webhook, Twilio's
    status callbacks), stored once by the provider's own event id."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    # sg_event_id for SendGrid; MessageSid + ":" + MessageStatus for Twilio.
    event_id: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(DateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        Index("ix_message_events_message_id", "message_id"),
    )


class TestSend(Base):
    """A template sent to an address a user gave, rendered for a chosen customer: a test, in
    no campaign and no customer's timeline."""

    __tablename__ = "test_sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str | None] = mapped_column(String(100))
    template_key: Mapped[str | None] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # sent | failed
    provider_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
