"""SMS text rules: GSM-7 or UCS-2, parts of 160/153 or 70/67, at most 480 characters, and
optional transliteration to plain Latin letters."""

from __future__ import annotations

import math
from dataclasses import dataclass

from unidecode import unidecode

from engine.errors import NudgeflowError

MAX_CHARS = 480
# GSM 03.38 default alphabet, and the extension table whose characters take two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


class SmsTooLong(NudgeflowError):
    pass


@dataclass(frozen=True)
class SmsText:
    text: str
    encoding: str  # gsm7 | ucs2
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int


def measure(text: str) -> SmsText:
    """Encoding and the number of parts a network charges for `text`."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "ucs2"
    parts = 1 if units <= single else math.ceil(units / multi)
    return SmsText(text, encoding, units, parts)


def prepare(text: str, transliterate: bool) -> SmsText:
    """The text as it will be sent; raises SmsTooLong past 480 characters."""
    if transliterate:
        text = unidecode(text)
    if len(text) > MAX_CHARS:
        raise SmsTooLong(f"SMS is {len(text)} characters; at most {MAX_CHARS} are sent")
    return measure(text)
