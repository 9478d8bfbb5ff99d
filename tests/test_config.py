from __future__ import annotations

from datetime import time

import pytest

from engine.config import load_settings
from engine.errors import ConfigError


def test_defaults() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///nudgeflow.db"
    assert (s.timezone, s.run_at, s.catchup_days, s.default_region) == ("UTC", time(6), 7, "ZA")
    assert (s.email_provider, s.sms_provider, s.max_attempts) == ("file", "file", 5)
    assert s.dispatch_in_flight == 4
    assert load_settings({"NUDGEFLOW_DISPATCH_IN_FLIGHT": "8"}).dispatch_in_flight == 8
    assert (s.dispatch_lease_seconds, s.retry_backoff_seconds) == (300, 60)
    tuned = load_settings({"NUDGEFLOW_DISPATCH_LEASE_SECONDS": "30",
                           "NUDGEFLOW_RETRY_BACKOFF_SECONDS": "5"})
    assert (tuned.dispatch_lease_seconds, tuned.retry_backoff_seconds) == (30, 5)


def test_values_are_read() -> None:
    s = load_settings({"NUDGEFLOW_TIMEZONE": "Africa/Johannesburg", "NUDGEFLOW_RUN_AT": "7:45",
                       "NUDGEFLOW_CATCHUP_DAYS": "3", "NUDGEFLOW_DEFAULT_REGION": "gb"})
    assert (s.timezone, s.run_at, s.catchup_days, s.default_region) == (
        "Africa/Johannesburg", time(7, 45), 3, "GB")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("TIMEZONE", "Mars/Olympus", "NUDGEFLOW_TIMEZONE: unknown IANA time zone 'Mars/Olympus'"),
    ("RUN_AT", "25:00", "NUDGEFLOW_RUN_AT: expected HH:MM (24-hour), got '25:00'"),
    ("CATCHUP_DAYS", "-1", "NUDGEFLOW_CATCHUP_DAYS: expected a whole number, got '-1'"),
    ("MAX_ATTEMPTS", "0", "NUDGEFLOW_MAX_ATTEMPTS: must be at least 1, got 0"),
    ("DISPATCH_IN_FLIGHT", "33", "NUDGEFLOW_DISPATCH_IN_FLIGHT: must be at most 32, got 33"),
    ("DISPATCH_LEASE_SECONDS", "0", "NUDGEFLOW_DISPATCH_LEASE_SECONDS: must be at least 1, got 0"),
    ("DISPATCH_LEASE_SECONDS", "5m", "NUDGEFLOW_DISPATCH_LEASE_SECONDS: expected a whole number"),
    ("RETRY_BACKOFF_SECONDS", "-5", "NUDGEFLOW_RETRY_BACKOFF_SECONDS: expected a whole number"),
    ("RETRY_BACKOFF_SECONDS", "86401",
     "NUDGEFLOW_RETRY_BACKOFF_SECONDS: must be at most 86400, got 86401"),
    ("DEFAULT_REGION", "XX", "NUDGEFLOW_DEFAULT_REGION: unknown region 'XX'"),
    ("EMAIL_PROVIDER", "smtp", "NUDGEFLOW_EMAIL_PROVIDER: expected one of file, console, sendgrid"),
    ("DATABASE_URL", "mysql://x", "NUDGEFLOW_DATABASE_URL: expected a sqlite:/// or"),
    ("EMAIL_PROVIDER", "sendgrid", "NUDGEFLOW_SENDGRID_API_KEY: required"),
])
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({f"NUDGEFLOW_{name}": value})
    assert str(exc.value).startswith(message)


def test_cli_reports_bad_setting_without_traceback(nf, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NUDGEFLOW_RUN_AT", "noon")
    result = nf("init")
    assert result.code == 2
    assert result.err == "error: NUDGEFLOW_RUN_AT: expected HH:MM (24-hour), got 'noon'\n"
    assert "Traceback" not in result.err


def test_public_url_and_webhook_key() -> None:
    from tests.feedback_helpers import SendGridSigner

    s = load_settings({})
    assert (s.public_url, s.callback_url, s.sendgrid_webhook_key) == (
        "http://127.0.0.1:5000", None, None)
    key = SendGridSigner().public
    s = load_settings({"NUDGEFLOW_PUBLIC_URL": "https://nf.example/app//",
                       "NUDGEFLOW_SENDGRID_WEBHOOK_KEY": f" {key[:20]}\n{key[20:]} "})
    assert (s.public_url, s.callback_url) == ("https://nf.example/app", "https://nf.example/app")
    assert s.sendgrid_webhook_key == key  # as pasted from SendGrid, line breaks and all
    assert load_settings({"NUDGEFLOW_PUBLIC_URL": "http://localhost:8000"}).callback_url is None


@pytest.mark.parametrize(("name", "value", "message"), [
    ("PUBLIC_URL", "nf.example", "NUDGEFLOW_PUBLIC_URL: expected http(s)://host[:port][/path], "
                                 "got 'nf.example'"),
    ("PUBLIC_URL", "ftp://nf.example", "NUDGEFLOW_PUBLIC_URL: expected http(s)://"),
    ("PUBLIC_URL", "https://", "NUDGEFLOW_PUBLIC_URL: expected http(s)://"),
    ("PUBLIC_URL", "https://nf.example?x=1", "NUDGEFLOW_PUBLIC_URL: expected http(s)://"),
    ("PUBLIC_URL", "https://nf.example:port", "NUDGEFLOW_PUBLIC_URL: expected http(s)://"),
    ("PUBLIC_URL", "https://nf example", "NUDGEFLOW_PUBLIC_URL: expected http(s)://"),
    ("SENDGRID_WEBHOOK_KEY", "not a key", "NUDGEFLOW_SENDGRID_WEBHOOK_KEY: expected the base64 "
                                          "ECDSA public key SendGrid shows"),
    ("SENDGRID_WEBHOOK_KEY", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
     "NUDGEFLOW_SENDGRID_WEBHOOK_KEY: expected"),
])
def test_bad_webhook_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({f"NUDGEFLOW_{name}": value})
    assert str(exc.value).startswith(message)


def test_log_format_and_metrics_token() -> None:
    s = load_settings({})
    assert (s.log_format, s.metrics_token) == ("text", None)
    s = load_settings({"NUDGEFLOW_LOG_FORMAT": "JSON",
                       "NUDGEFLOW_METRICS_TOKEN": " scrape-me-0123456789 "})
    assert (s.log_format, s.metrics_token) == ("json", "scrape-me-0123456789")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LOG_FORMAT", "logfmt", "NUDGEFLOW_LOG_FORMAT: expected one of text, json, got 'logfmt'"),
    # The token itself is a secret: the message gives its length only.
    ("METRICS_TOKEN", "short", "NUDGEFLOW_METRICS_TOKEN: expected at least 16 characters "
                               "without spaces, got 5 characters"),
    ("METRICS_TOKEN", "long enough but spaced", "NUDGEFLOW_METRICS_TOKEN: expected at least 16 "
                                                "characters without spaces, got 22 characters"),
])
def test_bad_ops_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({f"NUDGEFLOW_{name}": value})
    assert str(exc.value) == message
