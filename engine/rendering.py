"""Rendering a claimed batch: each message's context holds only what its templates read, and
a template that reads only `var.attr` values is rendered once per distinct set of those values
in the batch. A message that cannot be rendered carries the reason and fails."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from engine import sms
from engine.channels.base import Outgoing
from engine.config import Settings, secret_key
from engine.message_context import Needs, context, source
from engine.templates import is_html, references, render, render_error
from engine.unsubscribe import make_token


@dataclass
class Prepared:
    row: Any
    outgoing: Outgoing | None = None
    units: int = 1
    encoding: str | None = None
    error: str | None = None
    cancelled: str | None = None  # why it may no longer go out (see suppressed)


NO_TRACKING: frozenset[str] = frozenset()
# Why a message that was queued may no longer go out (`reason` in its activity's details).
SUPPRESSED = {"opted_out": "the customer opted out of {channel} after it was queued",
              "no_marketing_consent": "the customer withdrew marketing consent after it was "
                                      "queued"}


def suppressed(row: Any, consent_required: bool) -> str | None:
    """The customer's choices as they are now, not when the message was queued (it may have
    waited for its send time or for credit): opted out of its channel, or no marketing consent
    for a marketing campaign when the workspace requires consent."""
    if row.c_email_opt_out if row.channel == "email" else row.c_sms_opt_out:
        return "opted_out"
    if consent_required and row.campaign_purpose == "marketing" and not row.c_marketing_consent:
        return "no_marketing_consent"
    return None


def prepare(rows: list[Any], figures: Mapping[int, dict[str, Any]],
            awarded: Mapping[tuple[int, int, str], dict[str, Any]], settings: Settings,
            now: datetime, consent_required: bool = True,
            tracking: Mapping[tuple[int, str], frozenset[str]] | None = None) -> list[Prepared]:
    """Render each message; a message that cannot be rendered fails with the reason, one that
    may no longer go out is cancelled with it.

    Each message's context holds only what its templates read, and a template that reads only
    `var.attr` values is rendered once per distinct set of those values in the batch.
    `tracking` (engine.messaging.tracking) says which emails track opens and clicks."""
    tracking = tracking or {}
    secret = secret_key(settings)
    today = now.date()
    plans: dict[tuple[str | None, str], Needs] = {}
    rendered: dict[tuple[Any, ...], str] = {}
    out = []
    for row in rows:
        if (reason := suppressed(row, consent_required)) is not None:
            out.append(Prepared(row, cancelled=reason))
            continue
        subject_source, body_source = sources = source(row.inline_template, row.t_subject,
                                                        row.t_body)
        needs = plans.get(sources) or plans.setdefault(sources, Needs.of(*sources))
        marketing_email = row.channel == "email" and row.campaign_purpose == "marketing"
        url = ""
        # Signing costs more than rendering: only for links a message can carry.
        if marketing_email or "unsubscribe_url" in needs.variables:
            token = make_token(secret, row.customer_id, row.channel, row.campaign_id)
            url = f"{settings.public_url}/u/{token}"
        item = Prepared(row)
        try:
            ctx = context(row, _columns(row), needs,
                          figures.get(row.customer_id, {}),
                          awarded.get((row.campaign_id, row.customer_id, row.occurrence)),
                          today, url)
            html = row.channel == "email" and is_html(body_source)
            body = _render(body_source, ctx, html, needs, rendered)
            subject = _render(subject_source, ctx, False, needs, rendered) if subject_source \
                else None
            headers: dict[str, str] = {}
            if row.channel == "sms":
                text = sms.prepare(body, bool(row.t_transliterate))
                body, item.units, item.encoding = text.text, text.parts, text.encoding
            elif marketing_email:
                headers = {"List-Unsubscribe": f"<{url}>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
            item.outgoing = Outgoing(row.id, row.channel, row.address, body, subject, html,
                                     row.sender, row.reply_to, headers,
                                     tracking.get((row.campaign_id, row.node_id), NO_TRACKING))
        except Exception as exc:  # whatever one customer's data makes a
            # template raise (100 // 0, None + 1, a bound exceeded) fails that message alone
            item.error = f"cannot render: {render_error(exc)}"
        out.append(item)
    return out


def _columns(row: Any) -> Callable[[str], Any]:
    """Reads a customer column of a batch row (attributes arrive as JSON text)."""
    def read(name: str) -> Any:
        value = getattr(row, f"c_{name}")
        return json.loads(value) if name == "attributes" and value is not None else value

    return read


@lru_cache(maxsize=256)
def _ordered_references(source: str) -> tuple[tuple[str, str | None], ...]:
    return tuple(sorted(references(source), key=str))


def _render(source: str, ctx: dict[str, Any], html: bool, needs: Needs,
            rendered: dict[tuple[Any, ...], str]) -> str:
    if not needs.memo or "{" not in source:
        return render(source, ctx, html=html)
    key: tuple[Any, ...] = (source, html, *(
        (var, attr, ctx[var].get(attr) if isinstance(ctx.get(var), dict) else ctx.get(var))
        for var, attr in _ordered_references(source)))
    try:
        return rendered[key]
    except KeyError:
        result = rendered[key] = render(source, ctx, html=html)
        return result
    except TypeError:  # an unhashable value (an attributes dict): no memo
        return render(source, ctx, html=html)
