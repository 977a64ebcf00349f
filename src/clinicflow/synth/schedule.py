"""Clinic sessions and the slots they hold, in the practice's local time (pure)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clinicflow.synth.identifiers import new_id
from clinicflow.synth.practice import Clinician
from clinicflow.synth.timeline import LocalDay

# Local minutes after midnight: mornings 08:00-12:00, afternoons 13:00-17:00, lunch between.
MORNING = (8 * 60, 12 * 60)
AFTERNOON = (13 * 60, 17 * 60)
# Slot resources cover a week back (so the recent past has busy slots) and five weeks ahead.
FIRST_SLOT_DAY = -7
LAST_SLOT_DAY = 35

Session = tuple[int, int]
SlotKey = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable time: clinician index, day offset from the anchor, local start minute."""

    id: str
    clinician: int
    day: int
    minute: int
    minutes: int

    @property
    def key(self) -> SlotKey:
        """(clinician, day, minute): the slot's place in the grid."""
        return (self.clinician, self.day, self.minute)


def sessions_on(weekday: int, day_off: tuple[int, int]) -> tuple[Session, ...]:
    """The sessions a clinician works on `weekday` (0 is Monday), without their half-day off."""
    if weekday >= 5:
        return ()
    return tuple(
        session
        for number, session in enumerate((MORNING, AFTERNOON))
        if (weekday, number) != day_off
    )


def slot_starts(sessions: Sequence[Session], minutes: int) -> list[int]:
    """Start minutes of back-to-back slots of `minutes` that fit inside each session."""
    starts: list[int] = []
    for begin, end in sessions:
        starts.extend(range(begin, end - minutes + 1, minutes))
    return starts


def weekly_grid(clinician: Clinician) -> tuple[tuple[int, ...], ...]:
    """Slot start minutes for each weekday (index 0 is Monday) of one clinician."""
    minutes = clinician.specialty.slot_minutes
    return tuple(
        tuple(slot_starts(sessions_on(weekday, clinician.day_off), minutes)) for weekday in range(7)
    )


def build_slots(
    rng: random.Random,
    clinicians: Sequence[Clinician],
    grids: Sequence[tuple[tuple[int, ...], ...]],
    days: Mapping[int, LocalDay],
) -> list[Slot]:
    """Every slot of every clinician over the slot window, clinician by clinician, in time order."""
    slots = []
    for clinician in clinicians:
        minutes = clinician.specialty.slot_minutes
        grid = grids[clinician.index]
        for offset in range(FIRST_SLOT_DAY, LAST_SLOT_DAY + 1):
            for minute in grid[days[offset].on.weekday()]:
                slots.append(Slot(new_id(rng), clinician.index, offset, minute, minutes))
    return slots
