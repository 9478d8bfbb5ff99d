"""The embedded default: each message becomes a file under the outbox directory
(`email/<id>.eml`, `sms/<id>.txt`), so a demo shows exactly what would have gone out."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from email.message import EmailMessage
from pathlib import Path

from engine.channels.base import Channel, Outcome, Outgoing

DEFAULT_SENDER = "nudgeflow@localhost"


def as_email(m: Outgoing) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = m.sender or DEFAULT_SENDER
    msg["To"] = m.to
    msg["Subject"] = m.subject or ""
    if m.reply_to:
        msg["Reply-To"] = m.reply_to
    msg["X-Nudgeflow-Message-Id"] = str(m.message_id)
    for name, value in m.headers.items():
        msg[name] = value
    msg.set_content(m.body, subtype="html" if m.html else "plain")
    return msg


def as_text(m: Outgoing) -> str:
    if m.channel == "email":
        return as_email(m).as_string()
    return f"To: {m.to}\nFrom: {m.sender or ''}\nMessage-Id: {m.message_id}\n\n{m.body}\n"


class FileChannel(Channel):
    max_batch = 500

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, batch: Sequence[Outgoing]) -> Generator[list[Outcome], None, None]:
        # Writing a message's file again writes the same file: one "request" per call.
        out = []
        for m in batch:
            folder = self.directory / m.channel
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{m.message_id}.{'eml' if m.channel == 'email' else 'txt'}"
            path.write_text(as_text(m), encoding="utf-8")
            out.append(Outcome(m.message_id, "sent", provider_id=f"file:{path.name}"))
        yield out
