"""Plainly written phone numbers, validated at a tenth of phonenumbers.parse's cost.

An import of a million customers spent most of its time in phonenumbers.parse (~40 µs a
number). Most numbers in a customer file are written plainly: digits with spaces, dashes,
brackets or dots, a national prefix or a leading +. For those, this module repeats what
phonenumbers does, from phonenumbers' own metadata (the same patterns, lengths and type
order), and gives its answer for a valid number; anything else (extensions, letters, an
international dialling prefix, a country code without +, a region whose national prefix is
rewritten, an invalid number) returns None and phonenumbers decides. tests/test_phones.py
checks the two agree on hundreds of thousands of numbers from every region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType as T
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

PLAIN = re.compile(r"\+?[0-9 ().-]{4,40}")
SEPARATORS = str.maketrans("", "", "+ ().-")
# What a person's phone can be (engine.contacts.PERSONAL).
PERSONAL = frozenset({T.MOBILE, T.FIXED_LINE, T.FIXED_LINE_OR_MOBILE, T.VOIP, T.PERSONAL_NUMBER})
# phonenumbers' _number_type_helper order: the first description that matches names the type.
ORDER = (("premium_rate", T.PREMIUM_RATE), ("toll_free", T.TOLL_FREE),
         ("shared_cost", T.SHARED_COST), ("voip", T.VOIP),
         ("personal_number", T.PERSONAL_NUMBER), ("pager", T.PAGER), ("uan", T.UAN),
         ("voicemail", T.VOICEMAIL))

Desc = tuple[frozenset[int], re.Pattern[str]] | None


def _desc(desc: Any) -> Desc:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _matches(desc: Desc, number: str) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    return (not lengths or len(number) in lengths) and pattern.fullmatch(number) is not None


@dataclass(frozen=True)
class Plan:
    """One region's numbering plan, compiled: what its national prefix and international
    dialling prefix look like and each number type's description."""

    code: str
    prefix: re.Pattern[str] | None
    idd: re.Pattern[str] | None
    general: Desc
    types: tuple[tuple[Desc, int], ...]
    fixed: Desc
    mobile: Desc
    same_fixed_and_mobile: bool

    def kind(self, national: str) -> int:
        """The number's type, as phonenumbers' number_type gives it for this region."""
        if not _matches(self.general, national):
            return T.UNKNOWN
        for desc, kind in self.types:
            if _matches(desc, national):
                return kind
        if _matches(self.fixed, national):
            if self.same_fixed_and_mobile or _matches(self.mobile, national):
                return T.FIXED_LINE_OR_MOBILE
            return T.FIXED_LINE
        if not self.same_fixed_and_mobile and _matches(self.mobile, national):
            return T.MOBILE
        return T.UNKNOWN


@lru_cache(maxsize=512)
def plan_for(region: str) -> Plan | None:
    """The region's plan, or None where phonenumbers rewrites the national prefix."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None or metadata.national_prefix_transform_rule:
        return None
    prefix, idd = metadata.national_prefix_for_parsing, metadata.international_prefix
    return Plan(str(metadata.country_code), re.compile(prefix) if prefix else None,
                re.compile(idd) if idd else None, _desc(metadata.general_desc),
                tuple((_desc(getattr(metadata, name)), kind) for name, kind in ORDER),
                _desc(metadata.fixed_line), _desc(metadata.mobile),
                bool(metadata.same_mobile_and_fixed_line_pattern))


@lru_cache(maxsize=512)
def _plan_for_code(code: int) -> Plan | None:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    # A code several regions share (+1, +44, +7) leaves the region to phonenumbers.
    if len(regions) != 1 or len(regions[0]) != 2 or not regions[0].isalpha():
        return None
    return plan_for(regions[0])


def plain_phone(raw: str, region: str) -> tuple[str, str | None] | None:
    """(E.164, the region it was read as when it had no country code) for a valid, plainly
    written number, or None: ask phonenumbers."""
    if not PLAIN.fullmatch(raw) or "+" in raw[1:]:
        return None
    digits = raw.translate(SEPARATORS)
    if raw[0] == "+":
        if digits[:1] in ("", "0"):
            return None
        for size in (1, 2, 3):
            if int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE:
                break
        else:
            return None
        plan = _plan_for_code(int(digits[:size]))
        national = digits[size:]
        if (plan is None or national[:1] in ("", "0")
                or (plan.prefix is not None and plan.prefix.match(national))
                or plan.kind(national) == T.UNKNOWN):
            return None
        return f"+{plan.code}{national}", None
    plan = plan_for(region)
    if plan is None or digits.startswith(plan.code) or (plan.idd and plan.idd.match(digits)):
        return None
    national = digits
    if plan.prefix is not None and (found := plan.prefix.match(digits)):
        national = digits[found.end():]
    if national[:1] in ("", "0") or plan.kind(national) not in PERSONAL:
        return None
    return f"+{plan.code}{national}", region
