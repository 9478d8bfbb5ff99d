"""Settings from NUDGEFLOW_* environment variables, validated once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from engine.errors import ConfigError

LOG_FORMATS = ("text", "json")
METRICS_TOKEN_MIN_LENGTH = 16
PROVIDERS = {"email": ("file", "console", "sendgrid"), "sms": ("file", "console", "twilio")}


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///nudgeflow.db"
    timezone: str = "UTC"
    run_at: time = time(6, 0)
    catchup_days: int = 7
    default_region: str = "ZA"
    email_provider: str = "file"
    sms_provider: str = "file"
    outbox_dir: Path = Path("./outbox")
    sendgrid_api_key: str | None = None
    sendgrid_host: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_base_url: str | None = None
    # SendGrid's signed Event Webhook verification key (base64 of an ECDSA P-256 public key).
    sendgrid_webhook_key: str | None = None
    max_attempts: int = 5
    dispatch_in_flight: int = 4  # batches with the providers at once (engine.outbox.dispatch)
    dispatch_lease_seconds: int = 300  # a claim's lease, renewed by a heartbeat while worked on
    retry_backoff_seconds: int = 60  # base of the exponential backoff between send attempts
    max_request_mb: int = 16  # larger request bodies get 413 (10,000 bulk records fit)
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:5000"
    instance_dir: Path = Path("./instance")
    # A bearer token for GET /metrics besides an admin's API tokens (for a Prometheus server).
    metrics_token: str | None = None
    log_format: str = "text"  # or "json": one JSON object per line (engine.logs)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def callback_url(self) -> str | None:
        """The public URL providers can call back (delivery receipts), or None while it names
        this machine only (the default): a provider cannot reach a loopback address."""
        host = (urlsplit(self.public_url).hostname or "").lower()
        if host == "localhost" or host.endswith(".localhost") or host == "::1" \
                or host.startswith("127."):
            return None
        return self.public_url


def _int(name: str, raw: str, minimum: int, maximum: int | None = None) -> int:
    if not re.fullmatch(r"[0-9]+", raw.strip()):
        raise ConfigError(f"NUDGEFLOW_{name}: expected a whole number, got {raw!r}")
    value = int(raw)
    if value < minimum:
        raise ConfigError(f"NUDGEFLOW_{name}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"NUDGEFLOW_{name}: must be at most {maximum}, got {value}")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every NUDGEFLOW_* variable; raise ConfigError naming the bad one."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(f"NUDGEFLOW_{name}")
        return value if value not in (None, "") else None

    kwargs: dict[str, object] = {}
    if (url := get("DATABASE_URL")) is not None:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
            raise ConfigError(
                f"NUDGEFLOW_DATABASE_URL: expected a sqlite:/// or postgresql+psycopg:// URL, "
                f"got {url!r}"
            )
        kwargs["database_url"] = url
    if (tz := get("TIMEZONE")) is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"NUDGEFLOW_TIMEZONE: unknown IANA time zone {tz!r} (e.g. Africa/Johannesburg)"
            ) from None
        kwargs["timezone"] = tz
    if (run_at := get("RUN_AT")) is not None:
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", run_at.strip())
        if not m:
            raise ConfigError(f"NUDGEFLOW_RUN_AT: expected HH:MM (24-hour), got {run_at!r}")
        kwargs["run_at"] = time(int(m[1]), int(m[2]))
    if (days := get("CATCHUP_DAYS")) is not None:
        kwargs["catchup_days"] = _int("CATCHUP_DAYS", days, 0)
    if (region := get("DEFAULT_REGION")) is not None:
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"NUDGEFLOW_DEFAULT_REGION: unknown region {region!r} (two letters, e.g. ZA)"
            )
        kwargs["default_region"] = region.upper()
    for channel, choices in PROVIDERS.items():
        if (provider := get(f"{channel.upper()}_PROVIDER")) is not None:
            if provider not in choices:
                raise ConfigError(
                    f"NUDGEFLOW_{channel.upper()}_PROVIDER: expected one of "
                    f"{', '.join(choices)}, got {provider!r}"
                )
            kwargs[f"{channel}_provider"] = provider
    if (outbox := get("OUTBOX_DIR")) is not None:
        kwargs["outbox_dir"] = Path(outbox)
    if (attempts := get("MAX_ATTEMPTS")) is not None:
        kwargs["max_attempts"] = _int("MAX_ATTEMPTS", attempts, 1)
    if (in_flight := get("DISPATCH_IN_FLIGHT")) is not None:
        kwargs["dispatch_in_flight"] = _int("DISPATCH_IN_FLIGHT", in_flight, 1, 32)
    if (lease := get("DISPATCH_LEASE_SECONDS")) is not None:
        kwargs["dispatch_lease_seconds"] = _int("DISPATCH_LEASE_SECONDS", lease, 1, 86_400)
    if (base := get("RETRY_BACKOFF_SECONDS")) is not None:
        kwargs["retry_backoff_seconds"] = _int("RETRY_BACKOFF_SECONDS", base, 0, 86_400)
    if (request_mb := get("MAX_REQUEST_MB")) is not None:
        kwargs["max_request_mb"] = _int("MAX_REQUEST_MB", request_mb, 1, 1024)
    if (public := get("PUBLIC_URL")) is not None:
        kwargs["public_url"] = _public_url(public)
    if (instance := get("INSTANCE_DIR")) is not None:
        kwargs["instance_dir"] = Path(instance)
    if (log_format := get("LOG_FORMAT")) is not None:
        if log_format.strip().lower() not in LOG_FORMATS:
            raise ConfigError(f"NUDGEFLOW_LOG_FORMAT: expected one of {', '.join(LOG_FORMATS)}, "
                              f"got {log_format!r}")
        kwargs["log_format"] = log_format.strip().lower()
    if (metrics := get("METRICS_TOKEN")) is not None:
        kwargs["metrics_token"] = _metrics_token(metrics)
    for name in (
        "SENDGRID_API_KEY", "SENDGRID_HOST", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM", "TWILIO_BASE_URL", "SECRET_KEY", "SENDGRID_WEBHOOK_KEY",
    ):
        if (value := get(name)) is not None:
            kwargs[name.lower()] = value
    if (key := kwargs.get("sendgrid_webhook_key")) is not None:
        kwargs["sendgrid_webhook_key"] = _webhook_key(str(key))
    settings = Settings(**kwargs)  # type: ignore[arg-type]
    if settings.email_provider == "sendgrid" and not settings.sendgrid_api_key:
        raise ConfigError("NUDGEFLOW_SENDGRID_API_KEY: required when NUDGEFLOW_EMAIL_PROVIDER=sendgrid")
    if settings.sms_provider == "twilio" and not (
        settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from
    ):
        raise ConfigError(
            "NUDGEFLOW_TWILIO_ACCOUNT_SID, NUDGEFLOW_TWILIO_AUTH_TOKEN and NUDGEFLOW_TWILIO_FROM: "
            "required when NUDGEFLOW_SMS_PROVIDER=twilio"
        )
    return settings


def _public_url(raw: str) -> str:
    """An http(s) URL with a host and no query or fragment; trailing slashes dropped, so
    `public_url + "/u/..."` never reads `//u/...`."""
    value = raw.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.query or parts.fragment or "?" in value or "#" in value
            or any(ch.isspace() for ch in value)):
        raise ConfigError(f"NUDGEFLOW_PUBLIC_URL: expected http(s)://host[:port][/path], "
                          f"got {raw!r}")
    return value


def _metrics_token(raw: str) -> str:
    """A secret long enough not to be guessed, without whitespace (it travels in a header)."""
    value = raw.strip()
    if len(value) < METRICS_TOKEN_MIN_LENGTH or any(ch.isspace() for ch in value):
        raise ConfigError(f"NUDGEFLOW_METRICS_TOKEN: expected at least "
                          f"{METRICS_TOKEN_MIN_LENGTH} characters without spaces, got "
                          f"{len(value)} characters")
    return value


def _webhook_key(raw: str) -> str:
    """SendGrid's verification key as its settings page shows it: base64 of an EC public key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from sendgrid.helpers.eventwebhook import EventWebhook

    value = "".join(raw.split())
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(value)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("NUDGEFLOW_SENDGRID_WEBHOOK_KEY: expected the base64 ECDSA public key "
                          "SendGrid shows for the signed Event Webhook")
    return value


def secret_key(settings: Settings) -> str:
    """NUDGEFLOW_SECRET_KEY, or a key generated once into the instance folder (mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    import secrets

    path = settings.instance_dir / "secret_key"
    if not path.exists():
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()
