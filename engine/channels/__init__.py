"""Message providers, chosen by NUDGEFLOW_EMAIL_PROVIDER and NUDGEFLOW_SMS_PROVIDER."""

from __future__ import annotations

from engine.channels.base import Channel, Outcome, Outgoing
from engine.config import Settings


def channels_for(settings: Settings) -> dict[str, Channel]:
    """The configured provider of each channel."""
    from engine.channels.console import ConsoleChannel
    from engine.channels.file import FileChannel

    out: dict[str, Channel] = {}
    for channel, provider in (("email", settings.email_provider),
                              ("sms", settings.sms_provider)):
        if provider == "file":
            out[channel] = FileChannel(settings.outbox_dir)
        elif provider == "console":
            out[channel] = ConsoleChannel()
        elif provider == "sendgrid":
            from engine.channels.sendgrid import SendGridChannel

            assert settings.sendgrid_api_key
            out[channel] = SendGridChannel(settings.sendgrid_api_key, settings.sendgrid_host)
        else:
            from engine.channels.twilio import TwilioChannel

            assert settings.twilio_account_sid and settings.twilio_auth_token
            callback = settings.callback_url
            out[channel] = TwilioChannel(
                settings.twilio_account_sid, settings.twilio_auth_token,
                settings.twilio_from or "", settings.twilio_base_url,
                status_callback=f"{callback}/webhooks/twilio/status" if callback else None)
    return out


__all__ = ["Channel", "Outcome", "Outgoing", "channels_for"]
