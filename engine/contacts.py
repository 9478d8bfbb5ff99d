"""Contact data as real CRMs hold it: normalised when it parses, flagged when it does not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# Who an SMS may be from: an E.164 number or an alphanumeric sender id (at least one letter).
SMS_SENDER = re.compile(r"^(?:\+[1-9][0-9]{6,14}|(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,11})\Z")
SMS_SENDER_RULE = "expected an E.164 number (+27821234567) or up to 11 letters and digits"


@dataclass(frozen=True)
class Contact:
    value: str | None
    valid: bool


# A plain ASCII dot-atom local part, the shape nearly every real address has.
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The normalised domain, or None if email_validator rejects it (checked once per domain)."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def normalise_email(raw: str | None) -> Contact:
    """A syntactically valid address is normalised (domain lower-cased); others kept as given.

    email_validator decides; addresses with a plain local part take a fast path that validates
    their domain once per domain, since imports see the same few domains again and again."""
    if raw is None or not raw.strip():
        return Contact(None, False)
    raw = raw.strip()
    local, at, domain = raw.rpartition("@")
    if at and len(local) <= 64 and len(raw) <= 254 and DOT_ATOM.fullmatch(local):
        normal = _domain(domain)
        return Contact(f"{local}@{normal}", True) if normal else Contact(raw, False)
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
