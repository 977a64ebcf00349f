"""Half-days that break the usual pattern, the way a scheduler meets them (pure).

Two kinds, both rare. An empty session is a provider's first half-day back from leave: its slots
were opened too late for anyone to book them. An overbooked session is a full half-day the front
desk squeezed one or two more patients into, double-booking the provider. The first clinic day
after the anchor always has one of each, so the daily digest has something to show on the day a
demo loads the data.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clinicflow.synth.practice import Clinician
from clinicflow.synth.schedule import AFTERNOON, FIRST_SLOT_DAY, LAST_SLOT_DAY
from clinicflow.synth.timeline import LocalDay, is_clinic_day

# Shares of worked half-days: about five of each over the slot window of a twelve-provider practice.
EMPTY_SHARE = 0.008
OVERBOOKED_SHARE = 0.008
# How many patients the front desk squeezes into one full session (one, sometimes two).
SQUEEZE_IN_COUNTS = (1, 1, 2)
# v2-0276 types of a squeezed-in visit: mostly someone sick who cannot wait, some follow-ups.
SQUEEZE_IN_KINDS = ("ROUTINE", "ROUTINE", "FOLLOWUP")
# Appointment.comment of a squeezed-in visit, as a front desk would write it.
SQUEEZE_IN_NOTE = "Squeezed in by the front desk; the schedule was full."

# (clinician index, day offset from the anchor, half: 0 morning, 1 afternoon)
SessionKey = tuple[int, int, int]


def half_of(minute: int) -> int:
    """0 for a slot starting in the morning, 1 for one in the afternoon (lunch divides them)."""
    return 0 if minute < AFTERNOON[0] else 1


def session_minutes(day_grid: Sequence[int], half: int) -> list[int]:
    """Start minutes of a clinician's slots in one half of a day."""
    return [minute for minute in day_grid if half_of(minute) == half]


@dataclass(frozen=True, slots=True)
class Anomalies:
    """The sessions nobody may book, and the ones that get filled and then squeezed into."""

    empty: frozenset[SessionKey]
    overbooked: frozenset[SessionKey]

    def is_empty(self, clinician: int, day: int, minute: int) -> bool:
        """True when the slot lies in a session that stays empty."""
        return (clinician, day, half_of(minute)) in self.empty

    def is_overbooked(self, clinician: int, day: int, minute: int) -> bool:
        """True when the slot lies in a session the front desk overbooks."""
        return (clinician, day, half_of(minute)) in self.overbooked


def showcase_day(days: Mapping[int, LocalDay]) -> int | None:
    """Offset of the first clinic day after the anchor: tomorrow, or Monday after a weekend."""
    return next(
        (offset for offset in range(1, LAST_SLOT_DAY + 1) if is_clinic_day(days[offset].on)), None
    )


def _worked_sessions(
    clinicians: Sequence[Clinician],
    grids: Sequence[tuple[tuple[int, ...], ...]],
    days: Mapping[int, LocalDay],
) -> list[SessionKey]:
    """Every half-day with slots in the slot window, by clinician, day and half."""
    return [
        (clinician.index, day, half)
        for clinician in clinicians
        for day in range(FIRST_SLOT_DAY, LAST_SLOT_DAY + 1)
        for half in sorted({half_of(m) for m in grids[clinician.index][days[day].on.weekday()]})
    ]


def plan_anomalies(
    rng: random.Random,
    clinicians: Sequence[Clinician],
    grids: Sequence[tuple[tuple[int, ...], ...]],
    days: Mapping[int, LocalDay],
) -> Anomalies:
    """One empty and one overbooked session on the showcase day, and a few more at random."""
    sessions = _worked_sessions(clinicians, grids, days)
    empty: set[SessionKey] = set()
    overbooked: set[SessionKey] = set()
    showcase = showcase_day(days)
    on_showcase = [key for key in sessions if key[1] == showcase]
    if on_showcase:
        empty.add(rng.choice(on_showcase))
        # Squeeze-ins are mostly sick visits, which go to primary care; never the same provider.
        taken = next(iter(empty))[0]
        squeezable = [
            key
            for key in on_showcase
            if key[0] != taken and clinicians[key[0]].specialty.primary_care
        ]
        if squeezable:
            overbooked.add(rng.choice(squeezable))
    # The showcase day keeps exactly one of each, so the digest's first run reads simply.
    for key in sessions:
        draw = rng.random()
        if key[1] == showcase:
            continue
        if draw < EMPTY_SHARE:
            empty.add(key)
        elif draw < EMPTY_SHARE + OVERBOOKED_SHARE:
            overbooked.add(key)
    return Anomalies(frozenset(empty), frozenset(overbooked))


def squeeze_in_starts(rng: random.Random, held: Sequence[int], offered: Sequence[int]) -> list[int]:
    """Starts of one or two squeezed-in visits, each beside a booked one; none if a slot is free."""
    if not offered or sorted(held) != sorted(offered):
        return []
    count = min(len(held), rng.choice(SQUEEZE_IN_COUNTS))
    return sorted(rng.sample(sorted(held), count))
