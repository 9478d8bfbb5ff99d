from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, JSONType, Timestamps, enum_check, utcnow

CHANNELS = ("email", "sms")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "archived")
PURPOSES = ("marketing", "service")
RUN_STATUSES = ("running", "completed", "failed", "skipped")
# A blast is a campaign of its own kind: run once for its date, never by the scheduler, kept
# out of the campaign lists (engine/blasts).
CAMPAIGN_KINDS = ("campaign", "blast")


class Segment(Timestamps, Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    rules: Mapped[dict[str, Any]]


class ColumnSet(Timestamps, Base):
    """A saved choice of data set columns, shared by every user, by name."""

    __tablename__ = "column_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    columns: Mapped[list[str]] = mapped_column(JSONType)
    saved_by: Mapped[str | None] = mapped_column(String(100))


class Template(Timestamps, Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    transliterate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (CheckConstraint(enum_check("channel", CHANNELS), name="channel"),)


class Campaign(Timestamps, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="draft", server_default="draft")
    purpose: Mapped[str] = mapped_column(String(10), default="service", server_default="service")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    graph: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The first day the campaign may run: catch-up never reaches back before activation.
    active_since: Mapped[date | None] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(10), default="campaign", server_default="campaign")

    __table_args__ = (
        CheckConstraint(enum_check("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(enum_check("purpose", PURPOSES), name="purpose"),
        CheckConstraint(enum_check("kind", CAMPAIGN_KINDS), name="kind"),
    )


class CampaignVersion(Base):
    __tablename__ = "campaign_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    version: Mapped[int]
    graph: Mapped[dict[str, Any]]
    saved_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    saved_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("campaign_id", "version"),)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    run_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(10), default="running")
    # Per node: the new effects of every attempt added up, the other figures of the latest.
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Every attempt at this (campaign, date), oldest first: engine.runlog.Attempt as JSON.
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Seconds each node took, by node id.
    timings: Mapped[dict[str, Any] | None]
    # Why the latest attempt failed, or why the date was skipped.
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "run_date"),
        CheckConstraint(enum_check("status", RUN_STATUSES), name="status"),
        Index("ix_runs_run_date", "run_date"),
    )


class Blast(Base):
    """What only a blast has, beside its campaign row (kind 'blast', key `blast-<id>`, a graph
    trigger -> [recipients] -> segment-select -> send-message run once for `as_of`)."""

    __tablename__ = "blasts"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    # The sender's idempotency key (Idempotency-Key header, client_token): one blast per key.
    client_token: Mapped[str | None] = mapped_column(String(100), unique=True)
    # SHA-256 of the request, so a key reused for another request is refused, not obeyed.
    request_hash: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date] = mapped_column(Date)
    # {"segment": key} or inline rules: the data set the rows come from.
    source: Mapped[dict[str, Any]]
    selection: Mapped[str] = mapped_column(String(10))  # all | list
    requested: Mapped[int]  # customers asked for (all: the data set's rows)
    # Listed customers that were not in the data set as of the date: reported, not sent.
    not_members: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(enum_check("selection", ("all", "list")), name="selection"),
    )


class BlastRecipient(Base):
    """A customer chosen for a blast (selection `list`); the `recipients` node keeps them."""

    __tablename__ = "blast_recipients"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
