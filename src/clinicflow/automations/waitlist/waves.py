"""When to offer a freed slot to whom: ranked patients in waves, a few at a time (pure).

Offering to everyone at once would tell most of them "this slot was just taken"; offering to one
at a time would leave the slot empty while each thinks it over. Waves are the middle: the best
`wave_size` patients at `start`, the next ones `wave_gap` later, and so on, until the ranking runs
out or the next wave would go out at or after `stop_before` (the slot's start less the minimum
lead time: a patient offered later could not get there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from clinicflow.automations.waitlist.entries import PatientId
from clinicflow.automations.waitlist.rules import RankedEntry

DEFAULT_WAVE_SIZE = 3
DEFAULT_WAVE_GAP = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Wave:
    """One round of offers: its number (from 0), when it goes out, and to whom, best first."""

    number: int
    send_at: datetime
    offers: tuple[RankedEntry, ...]


def offer_waves(
    ranked: Sequence[RankedEntry],
    *,
    start: datetime,
    stop_before: datetime,
    wave_size: int = DEFAULT_WAVE_SIZE,
    wave_gap: timedelta = DEFAULT_WAVE_GAP,
    max_waves: int | None = None,
) -> list[Wave]:
    """Waves of offers in ranking order, one offer per patient, all sent before `stop_before`."""
    if wave_size < 1 or wave_gap <= timedelta(0):
        raise ValueError("waves need at least one patient each and a positive gap between them")
    seen: set[PatientId] = set()
    # A patient waiting for two things (say, two specialties) gets one offer for this slot.
    offers = []
    for candidate in ranked:
        if candidate.entry.patient_id not in seen:
            seen.add(candidate.entry.patient_id)
            offers.append(candidate)
    waves: list[Wave] = []
    for number, first in enumerate(range(0, len(offers), wave_size)):
        send_at = start + number * wave_gap
        if send_at >= stop_before or (max_waves is not None and number >= max_waves):
            break
        waves.append(Wave(number, send_at, tuple(offers[first : first + wave_size])))
    return waves
