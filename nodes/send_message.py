"""`send-message`: enqueues one message per pair (rendering and sending are the outbox's job),
or records it as skipped with the reason: opted out, no marketing consent, no valid address."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import (
    DateTime,
    FromClause,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    null,
    select,
)

from engine.contacts import SMS_SENDER, SMS_SENDER_RULE, normalise_email
from engine.errors import Problem
from engine.limits import fits
from engine.messaging.quiet_hours import QuietHoursSchema, quiet_until, window_for
from engine.models import Activity, Customer, Message
from engine.models.base import JSONType
from engine.sql import AnySelect, added_since, insert_new, json_object, last_id
from nodes.base import Node, References, RunContext

MAX_AHEAD = timedelta(days=14)
# Template variables a campaign has only when its graph provides them (see Node.provides).
GRAPH_VARIABLES = frozenset({"invoice"})
SKIP_SUMMARIES = {
    "opted_out": "opted out of this channel",
    "no_marketing_consent": "no marketing consent",
    "no_address": "no address on file",
    "invalid_address": "address is not valid",
    "frequency_cap": "frequency cap reached",
}


class SendAtSchema(Schema):
    mode = fields.String(required=True,
                         validate=validate.OneOf(("now", "delay", "at", "datetime")))
    hours = fields.Integer(strict=True, validate=validate.Range(1, 14 * 24))
    time = fields.String(validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$",
                                                  error="expected HH:MM (24-hour)"))
    value = fields.AwareDateTime(default_timezone=UTC)

    @validates_schema
    def _per_mode(self, data: dict[str, Any], **_kw: Any) -> None:
        need = {"delay": "hours", "at": "time", "datetime": "value"}.get(data["mode"])
        if need and need not in data:
            raise ValidationError(f"required when mode is {data['mode']}", need)
        if data["mode"] == "datetime":
            ahead = data["value"] - datetime.now(UTC)
            if ahead > MAX_AHEAD:
                raise ValidationError("at most 14 days ahead", "value")


class TrackingSchema(Schema):
    """What the email provider tracks for the node's emails (SendGrid's open and click
    tracking); nothing unless asked."""

    opens = fields.Boolean(load_default=False)
    clicks = fields.Boolean(load_default=False)


class SendMessageSchema(Schema):
    template = fields.String(validate=validate.Length(min=1, error="required: choose a template"))
    channel = fields.String(validate=validate.OneOf(("email", "sms")))
    subject = fields.String()
    body = fields.String(validate=validate.Length(min=1, error="must not be empty"))
    reply_to = fields.Email(load_default=None, validate=fits(Message.reply_to))
    transliterate = fields.Boolean()  # inline SMS: to plain Latin letters first
    sender = fields.String(load_default=None, validate=fits(Message.sender))
    send_at = fields.Nested(SendAtSchema, load_default=lambda: {"mode": "now"})
    tracking = fields.Nested(TrackingSchema)
    # Absent: the workspace's default for the channel; null: none for this node.
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    ignore_caps = fields.Boolean()  # service messages: not held back by frequency caps

    @validates_schema
    def _template_or_inline(self, data: dict[str, Any], **_kw: Any) -> None:
        if "template" in data:
            if {"channel", "subject", "body", "transliterate"} & set(data):
                raise ValidationError("give a template key or inline channel/subject/body/"
                                      "transliterate, not both", "template")
        else:
            for name in ("channel", "body"):
                if name not in data:
                    raise ValidationError("required for a message written here (or give a "
                                          "template key)", name)
            if data.get("transliterate") and data["channel"] != "sms":
                raise ValidationError("only an SMS can be transliterated", "transliterate")
        # Inline text is checked as a saved template is (syntax, variables, sandbox).
        from engine.templates import problems  # here: engine.templates imports the registry

        errors = {name: found for name in ("subject", "body")
                  if data.get(name) and (found := problems(data[name]))}
        if errors:
            raise ValidationError(errors)


def send_after(send_at: dict[str, Any], run_date: date, tz: str, now: datetime) -> datetime:
    """When a message may go out, as naive UTC; a moment already past means now."""
    mode = send_at["mode"]
    if mode == "delay":
        when = now + timedelta(hours=send_at["hours"])
    elif mode == "at":
        hh, mm = (int(p) for p in send_at["time"].split(":"))
        local = datetime(run_date.year, run_date.month, run_date.day, hh, mm, tzinfo=ZoneInfo(tz))
        when = local.astimezone(UTC).replace(tzinfo=None)
    elif mode == "datetime":
        value = send_at["value"]
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(tz))
        when = value.astimezone(UTC).replace(tzinfo=None)
    else:
        when = now
    return max(when, now)


def reads(*sources: str | None) -> frozenset[str]:
    """The variables templates read (`invoice`, `customer`, ...)."""
    from engine.templates import references  # here: engine.templates imports the registry

    return frozenset(var for source in sources if source for var, _ in references(source))


def sender(node_sender: str | None, channel: str, settings: Mapping[str, Any]) -> str | None:
    """Who a message is from: the node's sender, else the workspace's default for the channel
    (`sender`, an email address, for email; `sms_sender` for SMS), else None: the provider's
    own (NUDGEFLOW_TWILIO_FROM for SMS)."""
    return node_sender or settings.get("sender" if channel == "email" else "sms_sender")


def _local(when: datetime, zone: str) -> str:
    """A naive UTC moment as the customer's wall clock: "2025-06-03 08:00 Europe/Vilnius"."""
    return f"{when.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


class SendMessage(Node):
    type_name = "send-message"
    schema = SendMessageSchema

    def check_references(self, refs: References) -> list[Problem]:
        key = self.config.get("template")
        if key is not None and key not in refs.templates:
            return [Problem("template", f"unknown template {key!r}")]
        channel = refs.templates[key] if key is not None else self.config["channel"]
        tracking = self.config.get("tracking") or {}
        if channel == "sms" and any(tracking.values()):
            return [Problem("tracking", "only an email can track opens and clicks")]
        given = self.config.get("sender")
        if given is not None and channel == "sms" and not SMS_SENDER.match(given):
            return [Problem("sender", f"{SMS_SENDER_RULE} for an SMS, got {given!r}")]
        if given is not None and channel == "email" and not normalise_email(given).valid:
            return [Problem("sender", f"expected an email address for an email, got {given!r}")]
        return []

    def check_variables(self, provided: frozenset[str], refs: References) -> list[Problem]:
        key = self.config.get("template")
        if key is not None:
            sources = {"template": refs.template_reads.get(key, frozenset())}
            what = f"{key!r} reads"
        else:
            sources = {part: reads(self.config.get(part)) for part in ("body", "subject")}
            what = "reads"
        missing = GRAPH_VARIABLES - provided
        return [Problem(where, f"{what} {name}, which only a campaign triggered by "
                               "invoice_due has")
                for where, used in sources.items() for name in sorted(missing & used)]

    def uses(self) -> set[tuple[str, str]]:
        return {("template", self.config["template"])} if "template" in self.config else set()

    def channel(self, ctx: RunContext) -> str:
        if "template" in self.config:
            return str(ctx.templates[self.config["template"]]["channel"])
        return str(self.config["channel"])

    def address(self, ctx: RunContext) -> tuple[Any, Any]:
        """The customer's address for this node's channel, and why it is not sent (NULL when
        it is): opted out, no marketing consent, no address, an invalid one."""
        if self.channel(ctx) == "email":
            address, valid, opted_out = Customer.email, Customer.email_valid, Customer.email_opt_out
        else:
            address, valid, opted_out = Customer.phone, Customer.phone_valid, Customer.sms_opt_out
        needs_consent = (ctx.campaign.purpose == "marketing"
                         and ctx.settings.get("consent_mode", "require") != "ignore")
        reason = case(
            (opted_out, "opted_out"),
            (and_(literal(needs_consent), not_(Customer.marketing_consent)),
             "no_marketing_consent"),
            (address.is_(None), "no_address"),
            (not_(valid), "invalid_address"),
            else_=None,
        )
        return address, reason

    def execute(self, ctx: RunContext, pairs: FromClause | None) -> AnySelect:
        assert pairs is not None
        channel = self.channel(ctx)
        address, skip_reason = self.address(ctx)
        reason = skip_reason.label("skip_reason")
        zone = func.coalesce(Customer.timezone, literal(ctx.campaign.timezone, String))
        candidates = (select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id,
                             address.label("address"), reason, zone.label("zone"))
                      .join(Customer, Customer.id == pairs.c.customer_id).subquery())
        passed = select(pairs.c.customer_id, pairs.c.occurrence, pairs.c.invoice_id)
        if ctx.dry_run:
            self._tally(ctx, candidates.c.skip_reason)
            return passed
        before = last_id(ctx.conn, Message.__table__)
        created = self._enqueue(ctx, channel, candidates, before)
        given = ctx.conn.execute(select(func.count()).select_from(pairs)).scalar_one()
        if created == given:  # every pair got its message now: count what was written
            self._tally(ctx, Message.skip_reason, added_since(Message.__table__, before,
                                                              ctx.run_id))
        else:  # a re-run: what each pair would get, written now or before
            self._tally(ctx, candidates.c.skip_reason)
        return passed

    def _tally(self, ctx: RunContext, reason: Any, *where: Any) -> None:
        """Count the pairs queued and skipped (by reason)."""
        tally = ctx.conn.execute(select(reason, func.count()).where(*where)
                                 .group_by(reason)).all()
        ctx.count(self.id, "queued", sum(n for r, n in tally if r is None))
        ctx.count(self.id, "skipped", {r: n for r, n in tally if r is not None})

    def _quiet(self, ctx: RunContext, channel: str, candidates: Any,
               due: datetime) -> dict[str, datetime]:
        """Per time zone of the candidates, when a message due at `due` may go out if that is
        inside the quiet hours there (zones where it is not are left out)."""
        window = window_for(self.config, channel, ctx.settings)
        if not window:
            return {}
        zones = ctx.conn.execute(select(candidates.c.zone).distinct()).scalars()
        return {z: t for z in zones if z and (t := quiet_until(due, z, window)) is not None}

    def _enqueue(self, ctx: RunContext, channel: str, candidates: Any, before: int) -> int:
        """Insert the messages and their activities; returns how many messages were added."""
        cfg, campaign = self.config, ctx.campaign
        template = ctx.templates.get(cfg.get("template", ""))
        due = send_after(cfg["send_at"], ctx.run_date, campaign.timezone, ctx.now)
        c = candidates.c
        moved = self._quiet(ctx, channel, candidates, due)
        when = case(*((c.zone == z, literal(t, DateTime)) for z, t in moved.items()),
                      else_=literal(due, DateTime)) if moved else literal(due, DateTime)
        reply_to = cfg["reply_to"] or ctx.settings.get("reply_to")
        inline = null() if template else literal(
            {"subject": cfg.get("subject"), "body": cfg["body"],
             "transliterate": bool(cfg.get("transliterate"))}, JSONType)
        created = insert_new(ctx.conn, Message.__table__, select(  # type: ignore[arg-type]
            literal(campaign.id, Integer).label("campaign_id"),
            literal(self.id, String).label("node_id"),
            c.customer_id, c.occurrence,
            literal(ctx.run_id, Integer).label("run_id"),
            c.invoice_id,
            literal(template["id"] if template else None, Integer).label("template_id"),
            literal(channel, String).label("channel"),
            c.address,
            literal(reply_to if channel == "email" else None, String).label("reply_to"),
            literal(sender(cfg["sender"], channel, ctx.settings), String).label("sender"),
            inline.label("inline_template"),
            case((c.skip_reason.is_(None), "queued"), else_="skipped").label("status"),
            c.skip_reason,
            when.label("send_after"),
            literal(ctx.now, DateTime).label("created_at"),
        ))
        ctx.count(self.id, "created", created)
        what = f"{'Email' if channel == 'email' else 'SMS'}"
        label = cfg.get("template") or "inline message"
        # The activities of the messages just added, read back by id (engine.sql.added_since).
        added = select(Message).where(added_since(Message.__table__, before, ctx.run_id))
        if moved:  # the quiet hours' summaries name the customer's zone
            zone = func.coalesce(Customer.timezone, literal(campaign.timezone, String))
            added = added.add_columns(zone.label("zone")).join(
                Customer, Customer.id == Message.customer_id)
        m = added.subquery("added")
        summary = case(
            *((m.c.skip_reason == r, f"{what} not sent ({label}): {text}")
              for r, text in SKIP_SUMMARIES.items()),
            *((m.c.zone == z, f"{what} queued ({label}) for {_local(t, z)} (quiet hours)")
              for z, t in moved.items()),
            else_=f"{what} queued ({label}) for {due:%Y-%m-%d %H:%M} UTC",
        )
        insert_new(ctx.conn, Activity.__table__, select(  # type: ignore[arg-type]
            m.c.customer_id,
            literal(ctx.now, DateTime).label("at"),
            case((m.c.status == "skipped", "message_skipped"),
                 else_="message_queued").label("kind"),
            m.c.campaign_id, m.c.node_id, m.c.occurrence, m.c.run_id,
            m.c.id.label("message_id"),
            summary.label("summary"),
            json_object(ctx.conn, channel=m.c.channel, address=m.c.address,
                        reason=m.c.skip_reason,
                        send_after=cast(m.c.send_after, String)).label("details"),
        ))
        return created
