"""Contact data as real CRMs hold it: normalised when it parses, flagged when it does not."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from engine.phones import plain_phone, plan_for

# Who an SMS may be from: an E.164 number or an alphanumeric sender id (at least one letter).
SMS_SENDER = re.compile(r"^(?:\+[1-9][0-9]{6,14}|(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,11})\Z")
SMS_SENDER_RULE = "expected an E.164 number (+27821234567) or up to 11 letters and digits"


class Contact(NamedTuple):  # a tuple: an import makes two per row
    value: str | None
    valid: bool
    region: str | None = None  # a phone written without a country code: read as this region's


# What a person's phone can be; a national number read as a premium-rate, toll-free or
# shared-cost one is a number from another country read with the wrong region.
PERSONAL = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                      phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
                      phonenumbers.PhoneNumberType.VOIP,
                      phonenumbers.PhoneNumberType.PERSONAL_NUMBER})


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


# The address nearly every import row holds: a plain local part at a lower-case domain.
PLAIN_EMAIL = re.compile(DOT_ATOM.pattern + r"@(?P<domain>[a-z0-9.-]+)")


def normalise_emails(cells: list[str | None]) -> tuple[list[str | None], list[bool], int]:
    """normalise_email for a column of stripped cells: (values, valid flags, how many are
    invalid). A plain address whose domain is already normal is kept as it is."""
    values: list[str | None] = []
    valids: list[bool] = []
    invalid = 0
    for raw in cells:
        if raw is not None and (found := PLAIN_EMAIL.fullmatch(raw)) is not None \
                and len(raw) <= 254 and found.start("domain") <= 65 \
                and _domain(domain := found["domain"]) == domain:
            values.append(raw)
            valids.append(True)
            continue
        value, valid, _ = normalise_email(raw)
        values.append(value)
        valids.append(valid)
        invalid += value is not None and not valid
    return values, valids, invalid


def normalise_phones(cells: list[str | None], region: str
                     ) -> tuple[list[str | None], list[bool], int, int]:
    """normalise_phone for a column of stripped cells: (values, valid flags, how many are
    invalid, how many had no country code and were read as `region`'s)."""
    values: list[str | None] = []
    valids: list[bool] = []
    invalid = read_as = 0
    plan = plan_for(region)
    national = plan.national.fullmatch if plan is not None else None
    code = f"+{plan.code}" if plan is not None else ""
    for raw in cells:
        if raw is not None and national is not None and (found := national(raw)) is not None:
            values.append(code + found["n"])
            valids.append(True)
            read_as += 1
            continue
        value, valid, assumed = normalise_phone(raw, region)
        values.append(value)
        valids.append(valid)
        invalid += value is not None and not valid
        read_as += assumed is not None
    return values, valids, invalid, read_as


def normalise_phone(raw: str | None, region: str) -> Contact:
    """A valid number becomes E.164 (+27821234567); others are kept as given, flagged invalid.

    A number without a country code is read as `region`'s (and says so in `Contact.region`);
    it is valid only as a number a person can have there (mobile, fixed line, VoIP): a
    Lithuanian 868688960 read as ZA is a premium-rate +27 number, so it stays invalid.

    Numbers written plainly (digits, spaces, dashes, brackets, dots) take a fast path that
    gives phonenumbers' own answer for a valid number at a tenth of the cost (an import of a
    million phones spends seconds, not a minute); anything else is parsed by phonenumbers."""
    if raw is None or not raw.strip():
        return Contact(None, False)
    raw = raw.strip()
    if (fast := plain_phone(raw, region)) is not None:
        return Contact(fast[0], True, fast[1])
    try:
        number = phonenumbers.parse(raw, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return Contact(raw, False)
    national = number.country_code_source == phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
    assumed = region if national else None
    valid = (phonenumbers.is_valid_number_for_region(number, region)
             and phonenumbers.number_type(number) in PERSONAL) if national \
        else phonenumbers.is_valid_number(number)
    if not valid:
        return Contact(raw, False, assumed)
    return Contact(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True,
                   assumed)
