"""The fast path for plainly written phone numbers gives phonenumbers' own answer."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import contacts
from engine.contacts import Contact, normalise_phone
from engine.phones import plain_phone, plan_for

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def by_phonenumbers(raw: str, region: str, monkeypatch: pytest.MonkeyPatch) -> Contact:
    with monkeypatch.context() as m:
        m.setattr(contacts, "plain_phone", lambda _raw, _region: None)
        return normalise_phone(raw, region)


def written(number: phonenumbers.PhoneNumber, rnd: random.Random) -> str:
    text = phonenumbers.format_number(number, rnd.choice([0, 1, 2, 3])).removeprefix("tel:")
    if rnd.random() < 0.3:  # often no longer valid
        text = text[:-1] + str(rnd.randrange(10))
    if rnd.random() < 0.5:  # digits only (or +CC and digits): the one-match shortcuts
        text = text.translate(str.maketrans("", "", " ()-."))
    return text


def test_example_numbers_of_every_region_and_type(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(7)
    fast = 0
    for region in REGIONS:
        for kind in range(11):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for read_as in (region, rnd.choice(REGIONS), "ZA"):
                raw = written(example, rnd)
                fast += plain_phone(raw, read_as) is not None
                assert normalise_phone(raw, read_as) == by_phonenumbers(raw, read_as, monkeypatch), (
                    raw, read_as)
    assert fast > 1000  # the fast path is taken, not just agreed with


@given(st.sampled_from(REGIONS), st.from_regex(r"\+?[0-9]{3,16}", fullmatch=True))
def test_digits_only(region: str, raw: str) -> None:
    """What the one-match shortcuts (engine.phones._shortcuts) decide, phonenumbers decides
    the same way, in every region."""
    with pytest.MonkeyPatch.context() as m:
        assert normalise_phone(raw, region) == by_phonenumbers(raw, region, m)


def test_national_prefix_and_own_code_shortcuts() -> None:
    za = plan_for("ZA")
    assert za is not None and za.international is not None
    assert za.national.fullmatch("0821234567")["n"] == "821234567"  # type: ignore[index]
    assert za.international.fullmatch("+27821234567")["n"] == "821234567"  # type: ignore[index]
    for raw in ("0800123456", "27821234567", "0027821234567", "0000000"):
        assert za.national.fullmatch(raw) is None, raw
    us = plan_for("US")  # +1 is shared: the code's own region is not known from the number
    assert us is not None and us.international is None


@given(st.sampled_from(["ZA", "LT", "GB", "US", "IT", "DE", "AR", "BR", "IN", "FR", "AU"]),
       st.from_regex(r"\+?[0-9 ()-]{3,16}", fullmatch=True))
def test_any_plain_text(region: str, raw: str) -> None:
    raw = raw.strip()
    if raw:
        with pytest.MonkeyPatch.context() as m:
            assert normalise_phone(raw, region) == by_phonenumbers(raw, region, m)


def test_what_it_leaves_to_phonenumbers() -> None:
    assert plain_phone("082 123 4567", "ZA") == ("+27821234567", "ZA")
    assert plain_phone("+370 686 88960", "ZA") == ("+37068688960", None)
    for raw in ("0027821234567", "27821234567", "082 123 4567 ext 5", "+1 212 555 0100",
                "0800 123 456", "868688960"):
        assert plain_phone(raw, "ZA") is None, raw
