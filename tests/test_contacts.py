"""Contact normalisation: the email fast path agrees with email_validator; phones become E.164."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from engine.contacts import normalise_email, normalise_phone

CASES = ["Thandi@Example.COM", "a..b@x.com", "a@b", "x@foo.test", "user+tag@sub.domain.co.za",
         "ünï@example.com", '"q"@x.com', "a@-x.com", "a@x..com", ".a@x.com", "a.@x.com",
         "a@localhost", "a@123.com", "a@x_y.com", "a@b@c.com", "@x.com", "a@", "a b@x.com"]


def reference(raw: str) -> tuple[str, bool]:
    try:
        return validate_email(raw, check_deliverability=False).normalized, True
    except EmailNotValidError:
        return raw, False


@pytest.mark.parametrize("raw", CASES)
def test_email_matches_email_validator(raw: str) -> None:
    got = normalise_email(raw)
    assert (got.value, got.valid) == reference(raw)


@given(st.from_regex(r"[A-Za-z0-9.+_-]{0,8}@[A-Za-z0-9.-]{0,12}", fullmatch=True))
def test_email_fast_path_agrees(raw: str) -> None:
    got = normalise_email(raw)
    assert (got.value, got.valid) == reference(raw)


@pytest.mark.parametrize(("raw", "region", "value", "valid", "read_as"), [
    ("082 123 4567", "ZA", "+27821234567", True, "ZA"),
    ("+44 20 7946 0958", "ZA", "+442079460958", True, None),
    ("12345", "ZA", "12345", False, "ZA"),
    ("call me", "ZA", "call me", False, None),
    ("", "ZA", None, False, None),
    # A Lithuanian mobile written nationally: with LT it is +370...; read as ZA it would be a
    # premium-rate +27 number, which is no one's phone: kept as given, invalid.
    ("868688960", "LT", "+37068688960", True, "LT"),
    ("868688960", "ZA", "868688960", False, "ZA"),
    ("0800 123 456", "ZA", "0800 123 456", False, "ZA"),  # toll-free
    ("+37068688960", "ZA", "+37068688960", True, None),
])
def test_phone(raw: str, region: str, value: str | None, valid: bool, read_as: str | None) -> None:
    got = normalise_phone(raw, region)
    # Whether the default region was assumed is recorded (the import warns about it).
    assert (got.value, got.valid, got.region) == (value, valid, read_as)
