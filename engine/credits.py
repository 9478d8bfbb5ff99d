"""Prepaid credits per channel: one unit per email and per SMS part, taken at dispatch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select, update

from engine.errors import Problem, ValidationError
from engine.limits import INT32_MAX
from engine.models import ChannelCredit, Message

MAX_BALANCE = INT32_MAX  # the balance column is a 32-bit integer on PostgreSQL


def balances(conn: Connection) -> dict[str, int | None]:
    """Balance per channel; None means the channel is not metered."""
    stored = dict(conn.execute(select(ChannelCredit.channel, ChannelCredit.balance)).all())
    return {ch: stored.get(ch) for ch in ("email", "sms")}


def add(conn: Connection, channel: str, units: int) -> int:
    """Add credit (creating the meter), release held messages of the channel; new balance."""
    current = balances(conn).get(channel) or 0
    if not 1 <= units <= MAX_BALANCE - current:
        raise ValidationError([Problem("units", f"expected 1 to {MAX_BALANCE - current}: the "
                                       f"{channel} balance is {current} and holds at most "
                                       f"{MAX_BALANCE}; got {units}")],
                              title="cannot add credits")
    if conn.execute(select(ChannelCredit.channel).where(ChannelCredit.channel == channel)).first():
        conn.execute(update(ChannelCredit).where(ChannelCredit.channel == channel)
                     .values(balance=ChannelCredit.balance + units))
    else:
        conn.execute(insert(ChannelCredit).values(channel=channel, balance=units))
    conn.execute(update(Message).where(Message.status == "held", Message.channel == channel)
                 .values(status="queued"))
    return int(conn.execute(select(ChannelCredit.balance)
                            .where(ChannelCredit.channel == channel)).scalar_one())


def take(conn: Connection, channel: str, wanted: Sequence[int]) -> list[bool]:
    """Take credit for a batch's messages of one channel, in order: each one whose units the
    balance still covers gets them (a long SMS may wait while a shorter one after it goes).
    One read of the locked balance and one write, whatever the batch's size. Every message gets
    credit on a channel without a meter."""
    balance = conn.execute(select(ChannelCredit.balance).where(ChannelCredit.channel == channel)
                           .with_for_update()).scalar()
    if balance is None:
        return [True] * len(wanted)
    taken, granted = 0, []
    for units in wanted:
        granted.append(taken + units <= balance)
        taken += units if granted[-1] else 0
    if taken:
        conn.execute(update(ChannelCredit).where(ChannelCredit.channel == channel)
                     .values(balance=ChannelCredit.balance - taken))
    return granted


def give_back(conn: Connection, channel: str, units: int) -> None:
    conn.execute(update(ChannelCredit).where(ChannelCredit.channel == channel)
                 .values(balance=ChannelCredit.balance + units))
