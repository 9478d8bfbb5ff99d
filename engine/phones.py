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
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

PLAIN = re.compile(r"\+?[0-9 ().-]{4,40}")
SEPARATORS = str.maketrans("", "", "+ ().-")



def _alternative(name: str | None, desc: Any) -> str | None:
    """An alternative matching what phonenumbers' _is_number_matching_desc matches: the
    pattern, at one of the description's possible lengths (any, if it lists none); a named
    group when `name` is given."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = [n for n in desc.possible_length if n > 0]
    if desc.possible_length and not lengths:  # [-1]: no number is of this type
        return None
    ahead = f"(?=(?:{'|'.join(f'[0-9]{{{n}}}' for n in lengths)})\\Z)" if lengths else ""
    return f"(?{f'P<{name}>' if name else ':'}{ahead}(?:{desc.national_number_pattern}))"


def _any(alternatives: list[str | None]) -> str:
    """Matches the whole rest of the text as one of the alternatives; never, if none."""
    kept = [f"{a}\\Z" for a in alternatives if a is not None]
    return f"(?:{'|'.join(kept)})" if kept else "(?!)"


def _shortcuts(metadata: Any) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    """Two expressions that each decide a number of digits in one match, with the same answer
    as the steps of plain_phone: written nationally (digits only), the national number in
    group `n` when it is a personal number of the region; written +CC (the region's own
    code, no separators), when it is a number of any type. Atomic groups keep the national
    prefix's first match, as re.match would."""
    alts = {name: _alternative(None, getattr(metadata, name)) for name in KINDS}
    general = _alternative(None, metadata.general_desc)
    if general is None:
        return re.compile("(?!)"), None
    code = str(metadata.country_code)
    prefix = metadata.national_prefix_for_parsing
    idd = metadata.international_prefix
    # The first type that matches names the number: a personal one unless a non-personal
    # type comes before it (premium rate, toll free and shared cost before VoIP and personal
    # numbers; pager, UAN and voicemail before fixed line and mobile).
    personal = (f"(?!{_any([alts['premium_rate'], alts['toll_free'], alts['shared_cost']])})"
                f"(?:{_any([alts['voip'], alts['personal_number']])}"
                f"|(?!{_any([alts['pager'], alts['uan'], alts['voicemail']])})"
                f"{_any([alts['fixed_line'], alts['mobile']])})")
    number = f"(?=[1-9])(?={general}\\Z)"
    national = re.compile(
        f"(?=[0-9]{{4,40}}\\Z)(?!{code})" + (f"(?!(?:{idd}))" if idd else "")
        + (f"(?>(?:{prefix})|)" if prefix else "") + f"(?P<n>{number}{personal})")
    international = None
    if COUNTRY_CODE_TO_REGION_CODE.get(int(code), ()) == (metadata.id,):
        international = re.compile(
            f"(?=.{{4,40}}\\Z)\\+{code}(?P<n>" + (f"(?!(?:{prefix}))" if prefix else "")
            + f"{number}{_any(list(alts.values()))})")
    return national, international


@dataclass(frozen=True)
class Plan:
    """One region's numbering plan, compiled: its national prefix, its international dialling
    prefix, its general description and one expression whose first fully matching alternative
    names the number's type (the order of phonenumbers' _number_type_helper)."""

    code: str
    prefix: re.Pattern[str] | None
    idd: re.Pattern[str] | None
    general: re.Pattern[str] | None
    types: re.Pattern[str] | None
    national: re.Pattern[str]  # _shortcuts: the common cases in one match
    international: re.Pattern[str] | None

    def kind(self, national: str) -> str | None:
        """The name of the number's type (a key of KINDS), or None when it has none."""
        if self.general is None or self.types is None or not self.general.fullmatch(national):
            return None
        found = self.types.fullmatch(national)
        return None if found is None else found.lastgroup


# The descriptions in phonenumbers' order; fixed_line before mobile (either is personal).
KINDS = {"premium_rate": False, "toll_free": False, "shared_cost": False, "voip": True,
         "personal_number": True, "pager": False, "uan": False, "voicemail": False,
         "fixed_line": True, "mobile": True}


def _compile(parts: list[str | None]) -> re.Pattern[str] | None:
    kept = [p for p in parts if p is not None]
    return re.compile("|".join(kept)) if kept else None


@lru_cache(maxsize=512)
def plan_for(region: str) -> Plan | None:
    """The region's plan, or None where phonenumbers rewrites the national prefix."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None or metadata.national_prefix_transform_rule:
        return None
    prefix, idd = metadata.national_prefix_for_parsing, metadata.international_prefix
    return Plan(str(metadata.country_code), re.compile(prefix) if prefix else None,
                re.compile(idd) if idd else None,
                _compile([_alternative("general", metadata.general_desc)]),
                _compile([_alternative(name, getattr(metadata, name)) for name in KINDS]),
                *_shortcuts(metadata))


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
    if (plan := plan_for(region)) is not None:  # digits only, or +CC and digits: one match
        if (found := plan.national.fullmatch(raw)) is not None:
            return f"+{plan.code}{found['n']}", region
        if plan.international is not None and (found := plan.international.fullmatch(raw)):
            return f"+{plan.code}{found['n']}", None
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
                or plan.kind(national) is None):
            return None
        return f"+{plan.code}{national}", None
    plan = plan_for(region)
    if plan is None or digits.startswith(plan.code) or (plan.idd and plan.idd.match(digits)):
        return None
    national = digits
    if plan.prefix is not None and (found := plan.prefix.match(digits)):
        national = digits[found.end():]
    if national[:1] in ("", "0") or not KINDS.get(plan.kind(national) or "", False):
        return None
    return f"+{plan.code}{national}", region
