"""Prepaid credits per channel: one unit per email and per SMS part, taken at dispatch."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from engine.models import ChannelCredit, Message


def balances(conn: Connection) -> dict[str, int | None]:
    """Balance per channel; None means the channel is not metered."""
    stored = dict(conn.execute(select(ChannelCredit.channel, ChannelCredit.balance)).all())
    return {ch: stored.get(ch) for ch in ("email", "sms")}


def add(conn: Connection, channel: str, units: int) -> int:
    """Add credit (creating the meter), release held messages of the channel; new balance."""
    if conn.execute(select(ChannelCredit.channel).where(ChannelCredit.channel == channel)).first():
        conn.execute(update(ChannelCredit).where(ChannelCredit.channel == channel)
                     .values(balance=ChannelCredit.balance + units))
    else:
        conn.execute(insert(ChannelCredit).values(channel=channel, balance=units))
    conn.execute(update(Message).where(Message.status == "held", Message.channel == channel)
                 .values(status="queued"))
    return int(conn.execute(select(ChannelCredit.balance)
                            .where(ChannelCredit.channel == channel)).scalar_one())


def take(conn: Connection, channel: str, units: int) -> bool:
    """Take units if the balance allows (always, for a channel without a meter)."""
    metered = conn.execute(select(ChannelCredit.balance)
                           .where(ChannelCredit.channel == channel)).first()
    if metered is None:
        return True
    done = conn.execute(update(ChannelCredit)
                        .where(ChannelCredit.channel == channel, ChannelCredit.balance >= units)
                        .values(balance=ChannelCredit.balance - units)
                        .execution_options(preserve_rowcount=True))
    return bool(done.rowcount)


def give_back(conn: Connection, channel: str, units: int) -> None:
    conn.execute(update(ChannelCredit).where(ChannelCredit.channel == channel)
                 .values(balance=ChannelCredit.balance + units))
