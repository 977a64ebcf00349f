"""Which provider sessions tomorrow need a scheduler's eye: overbooked or empty (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

# A session is a half day: a visit starting before 12:30 local belongs to the morning.
AFTERNOON_STARTS = time(12, 30)


class Half(StrEnum):
    """Morning or afternoon session."""

    MORNING = "morning"
    AFTERNOON = "afternoon"


class Problem(StrEnum):
    """Why a session is flagged."""

    OVERBOOKED = "overbooked"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class SlotTime:
    """An offered slot on a provider's calendar."""

    practitioner_id: str
    start_at: datetime


@dataclass(frozen=True, slots=True)
class Visit:
    """A booked visit with a provider."""

    practitioner_id: str
    start_at: datetime


@dataclass(frozen=True, slots=True)
class SessionLoad:
    """How full one provider's half day is."""

    practitioner_id: str
    day_on: date
    half: Half
    slots: int
    booked: int

    @property
    def problem(self) -> Problem | None:
        """Overbooked (more visits than slots), empty (slots offered, none booked), or fine.

        A session with no slots at all has no calendar to judge it by (a provider whose schedule
        is kept elsewhere): it is never flagged, or it would be flagged every day.
        """
        if self.slots == 0:
            return None
        if self.booked > self.slots:
            return Problem.OVERBOOKED
        if self.slots > 0 and self.booked == 0:
            return Problem.EMPTY
        return None


def _session_of(start_at: datetime, zone: ZoneInfo) -> tuple[date, Half]:
    local = start_at.astimezone(zone)
    half = Half.MORNING if local.time() < AFTERNOON_STARTS else Half.AFTERNOON
    return local.date(), half


def session_loads(
    slots: Iterable[SlotTime], visits: Iterable[Visit], day_on: date, zone: ZoneInfo
) -> list[SessionLoad]:
    """Slots and booked visits per provider and half day on `day_on`, by provider, then half."""
    counts: dict[tuple[str, Half], list[int]] = defaultdict(lambda: [0, 0])
    for slot in slots:
        slot_day, half = _session_of(slot.start_at, zone)
        if slot_day == day_on:
            counts[(slot.practitioner_id, half)][0] += 1
    for visit in visits:
        visit_day, half = _session_of(visit.start_at, zone)
        if visit_day == day_on:
            counts[(visit.practitioner_id, half)][1] += 1
    return [
        SessionLoad(pid, day_on, half, slot_count, booked)
        for (pid, half), (slot_count, booked) in sorted(counts.items())
    ]


def flagged_sessions(loads: Iterable[SessionLoad]) -> dict[str, list[SessionLoad]]:
    """The sessions with a problem, grouped by provider (one work item per provider)."""
    flagged: dict[str, list[SessionLoad]] = defaultdict(list)
    for load in loads:
        if load.problem is not None:
            flagged[load.practitioner_id].append(load)
    return dict(flagged)


def describe(provider_name: str, sessions: list[SessionLoad]) -> str:
    """The work item's text: which sessions, what is wrong, in a scheduler's words."""
    parts = []
    for load in sessions:
        if load.problem is Problem.OVERBOOKED:
            parts.append(f"{load.half} overbooked ({load.booked} visits for {load.slots} slots)")
        else:
            parts.append(f"{load.half} empty ({load.slots} open slots, no visits)")
    day = sessions[0].day_on.strftime("%a %d %b")
    return f"{provider_name}, {day}: " + "; ".join(parts) + ". Please review the schedule."
