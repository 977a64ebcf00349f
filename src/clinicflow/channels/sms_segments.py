"""How many SMS segments a text takes (pure): what a practice pays per reminder, and what a
template preview warns about.

GSM 03.38 7-bit text fits 160 characters in one segment, 153 per segment once split (the rest is
the concatenation header); characters of the extension table (`{ } [ ] ~ \\ | ^ €` and form
feed) take two. Any other character (an emoji, "á", "í", "ó", "ú" in Spanish) sends the whole
text as UCS-2: 70 in one segment, 67 per segment once split, and characters outside the Basic
Multilingual Plane take two code units.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(StrEnum):
    """How the text travels."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """A text's encoding, its length in that encoding's units, and its segments."""

    encoding: Encoding
    units: int
    segments: int
    non_gsm: str = ""  # the characters that forced UCS-2, for the template preview


def count_segments(text: str) -> SegmentCount:
    """The segments `text` takes as one SMS."""
    # By distinct character, not character by character: reminders are rendered by the
    # thousand and a text repeats few characters.
    used = set(text)
    non_gsm = "".join(sorted(c for c in used if c not in GSM_BASIC and c not in GSM_EXTENSION))
    if not non_gsm:
        units = len(text) + sum(text.count(c) for c in used if c in GSM_EXTENSION)
        return SegmentCount(Encoding.GSM7, units, _segments(units, single=160, split=153))
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
    return SegmentCount(Encoding.UCS2, units, _segments(units, single=70, split=67), non_gsm)


def _segments(units: int, *, single: int, split: int) -> int:
    if units <= single:
        return 1 if units else 0
    return -(-units // split)
