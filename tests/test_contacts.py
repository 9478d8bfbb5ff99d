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


@pytest.mark.parametrize(("raw", "region", "value", "valid"), [
    ("082 123 4567", "ZA", "+27821234567", True),
    ("+44 20 7946 0958", "ZA", "+442079460958", True),
    ("12345", "ZA", "12345", False),
    ("call me", "ZA", "call me", False),
    ("", "ZA", None, False),
])
def test_phone(raw: str, region: str, value: str | None, valid: bool) -> None:
    got = normalise_phone(raw, region)
    assert (got.value, got.valid) == (value, valid)
