"""Who on the waitlist may be offered a freed slot, and in what order (pure).

`eligible` answers "why can this patient not be offered this slot?" (no answer: they can).
`rank` orders the eligible entries by a weighted score (`RankingPolicy`), best first, ties broken
by who was listed first and then by entry id, so the same waitlist always gives the same order.
Every score part is between 0 and 1; the weights say how much each counts:

- priority: the entry's FHIR priority, 1 (highest) scores 1, 9 scores 0, "not set" counts as 5;
- waiting: time on the list, full marks from `wait_horizon` on (fairness to those waiting longest);
- visit_type: the same type as the freed visit, or a slot of no particular type, scores 1; an
  interchangeable type (`RankingPolicy.holds`) `related_type_fit`;
- location: their preferred site or no preference 1, another site they accept 0;
- availability: 1 when the slot falls in days and times they told us, 0.5 when they told us none
  (any time may still not suit them, so they are less likely to take it);
- window_closing: an entry whose date window ends soon scores up to 1: passed over now, it may
  have no other chance; an open-ended one scores 0;
- duration: how much of the slot the visit uses (a 15-minute need in a 30-minute slot is 0.5).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from clinicflow.automations.waitlist.entries import (
    HIGHEST_PRIORITY,
    LOWEST_PRIORITY,
    FreedSlot,
    WaitlistEntry,
)

# v2-0276 types a freed slot of each type can hold besides its own. A check-up (preventive visit)
# keeps its own slots: practices book them with prep and preventive billing, not as sick visits.
DEFAULT_HOLDS: Mapping[str, frozenset[str]] = {
    "ROUTINE": frozenset({"FOLLOWUP"}),
    "FOLLOWUP": frozenset({"ROUTINE"}),
}
_MIDDLE_PRIORITY = 5


class Ineligible(StrEnum):
    """Why an entry may not be offered a slot, in the order they are checked."""

    OPTED_OUT = "opted-out"
    RECENTLY_CONTACTED = "recently-contacted"
    TOO_CLOSE = "slot-too-close"  # starts within the minimum lead time
    WRONG_PRACTITIONER = "wrong-practitioner"
    WRONG_SPECIALTY = "wrong-specialty"
    VISIT_TYPE_MISMATCH = "visit-type-mismatch"
    SLOT_TOO_SHORT = "slot-too-short"
    WRONG_LOCATION = "wrong-location"
    OUTSIDE_DATES = "outside-dates"
    OUTSIDE_TIMES = "outside-times"


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each score part counts (see the module docstring for the parts)."""

    priority: float = 4.0  # a priority-1 entry listed today beats an unset one listed 2 months ago
    waiting: float = 2.0
    visit_type: float = 1.5
    location: float = 1.5
    availability: float = 1.0
    window_closing: float = 1.0
    duration: float = 1.0


@dataclass(frozen=True, slots=True)
class RankingPolicy:
    """Who may be offered a slot, and how the eligible are scored."""

    # Nobody gets another waitlist offer this soon after the last one.
    recontact_after: timedelta = timedelta(hours=48)
    # No offers for a slot starting sooner than this: the patient could not get there.
    min_lead: timedelta = timedelta(hours=2)
    weights: Weights = field(default_factory=Weights)
    holds: Mapping[str, frozenset[str]] = field(default_factory=lambda: DEFAULT_HOLDS)
    related_type_fit: float = 0.5
    wait_horizon: timedelta = timedelta(days=60)
    window_horizon: timedelta = timedelta(days=28)


@dataclass(frozen=True, slots=True)
class Fit:
    """The score parts of one entry for one slot, each between 0 and 1."""

    priority: float
    waiting: float
    visit_type: float
    location: float
    availability: float
    window_closing: float
    duration: float

    def score(self, weights: Weights) -> float:
        """The weighted sum of the parts."""
        return (
            weights.priority * self.priority
            + weights.waiting * self.waiting
            + weights.visit_type * self.visit_type
            + weights.location * self.location
            + weights.availability * self.availability
            + weights.window_closing * self.window_closing
            + weights.duration * self.duration
        )


@dataclass(frozen=True, slots=True)
class RankedEntry:
    """An eligible entry with its score for the slot and the parts behind it."""

    entry: WaitlistEntry
    score: float
    fit: Fit


@dataclass(frozen=True, slots=True)
class _LocalSlot:
    """The slot as the patient's windows see it: practice-local day and wall-clock times."""

    slot: FreedSlot
    day_on: date
    weekday: int
    starts_local: time
    ends_local: time
    ends_same_day: bool


def _local(slot: FreedSlot) -> _LocalSlot:
    # Wall-clock times come from converting each instant: a fixed offset would be an hour off
    # for every slot on the other side of a DST change from the one it was computed for.
    start = slot.start_at.astimezone(slot.zone)
    end = slot.end_at.astimezone(slot.zone)
    return _LocalSlot(
        slot, start.date(), start.weekday(), start.time(), end.time(), end.date() == start.date()
    )


def _holds(slot_type: str | None, entry_type: str, policy: RankingPolicy) -> bool:
    if slot_type is None or slot_type == entry_type:
        return True
    return entry_type in policy.holds.get(slot_type, frozenset())


def _in_stated_times(entry: WaitlistEntry, local: _LocalSlot) -> bool:
    if not local.ends_same_day:
        return False
    return any(
        window.weekday == local.weekday
        and window.starts_local <= local.starts_local
        and local.ends_local <= window.ends_local
        for window in entry.availability
    )


def _reasons(
    entry: WaitlistEntry, local: _LocalSlot, now: datetime, policy: RankingPolicy
) -> Iterator[Ineligible]:
    slot = local.slot
    if entry.opted_out:
        yield Ineligible.OPTED_OUT
    contacted = entry.last_contacted_at
    if contacted is not None and now - contacted < policy.recontact_after:
        yield Ineligible.RECENTLY_CONTACTED
    if slot.start_at - now < policy.min_lead:
        yield Ineligible.TOO_CLOSE
    if entry.practitioner_id is not None:
        if entry.practitioner_id != slot.practitioner_id:
            yield Ineligible.WRONG_PRACTITIONER
    elif entry.specialty != slot.specialty:
        yield Ineligible.WRONG_SPECIALTY
    if not _holds(slot.visit_type, entry.visit_type, policy):
        yield Ineligible.VISIT_TYPE_MISMATCH
    if entry.minutes > slot.minutes:
        yield Ineligible.SLOT_TOO_SHORT
    if (
        not entry.other_locations_ok
        and entry.location_id is not None
        and entry.location_id != slot.location_id
    ):
        yield Ineligible.WRONG_LOCATION
    if (entry.earliest_on is not None and local.day_on < entry.earliest_on) or (
        entry.latest_on is not None and local.day_on > entry.latest_on
    ):
        yield Ineligible.OUTSIDE_DATES
    if entry.availability and not _in_stated_times(entry, local):
        yield Ineligible.OUTSIDE_TIMES


def eligible(
    entry: WaitlistEntry, slot: FreedSlot, *, now: datetime, policy: RankingPolicy
) -> tuple[Ineligible, ...]:
    """Every reason `entry` may not be offered `slot` at `now`; empty when it may."""
    return tuple(_reasons(entry, _local(slot), now, policy))


def _urgency(priority: int) -> float:
    if not HIGHEST_PRIORITY <= priority <= LOWEST_PRIORITY:
        priority = _MIDDLE_PRIORITY  # 0 is "not set"; anything else is out of the iCal range
    return (LOWEST_PRIORITY - priority) / (LOWEST_PRIORITY - HIGHEST_PRIORITY)


def _fit(entry: WaitlistEntry, local: _LocalSlot, now: datetime, policy: RankingPolicy) -> Fit:
    slot = local.slot
    waited = (now - entry.listed_at) / policy.wait_horizon
    if slot.visit_type is None or slot.visit_type == entry.visit_type:
        type_fit = 1.0
    else:
        type_fit = policy.related_type_fit
    same_site = entry.location_id is None or entry.location_id == slot.location_id
    closing = 0.0
    if entry.latest_on is not None:
        left = timedelta(days=(entry.latest_on - local.day_on).days) / policy.window_horizon
        closing = max(0.0, 1.0 - left)
    return Fit(
        priority=_urgency(entry.priority),
        waiting=min(1.0, max(0.0, waited)),
        visit_type=type_fit,
        location=1.0 if same_site else 0.0,
        availability=1.0 if entry.availability else 0.5,
        window_closing=closing,
        duration=min(1.0, entry.minutes / slot.minutes),
    )


def rank(
    entries: Iterable[WaitlistEntry], slot: FreedSlot, *, now: datetime, policy: RankingPolicy
) -> list[RankedEntry]:
    """The entries that may be offered `slot` at `now`, best first, in a reproducible order."""
    local = _local(slot)
    ranked = []
    for entry in entries:
        if next(_reasons(entry, local, now, policy), None) is not None:
            continue
        fit = _fit(entry, local, now, policy)
        ranked.append(RankedEntry(entry, fit.score(policy.weights), fit))
    ranked.sort(key=lambda r: (-r.score, r.entry.listed_at, r.entry.id))
    return ranked
