"""Contact data as real CRMs hold it: normalised when it parses, flagged when it does not."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email


@dataclass(frozen=True)
class Contact:
    value: str | None
    valid: bool


def normalise_email(raw: str | None) -> Contact:
    """A syntactically valid address is normalised (domain lower-cased); others kept as given."""
    if raw is None or not raw.strip():
        return Contact(None, False)
    raw = raw.strip()
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        return Contact(raw, False)
    return Contact(info.normalized, True)


def normalise_phone(raw: str | None, region: str) -> Contact:
    """A valid number becomes E.164 (+27821234567); others are kept as given, flagged invalid."""
    if raw is None or not raw.strip():
        return Contact(None, False)
    raw = raw.strip()
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return Contact(raw, False)
    if not phonenumbers.is_valid_number(number):
        return Contact(raw, False)
    return Contact(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True)
