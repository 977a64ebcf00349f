"""Benchmark waitlist-backfill's decisions: rank a freed slot against a 50,000-entry waitlist,
then fill a month of the synthetic practice's cancellations.

No arguments, no database: only the pure rules (`clinicflow.automations.waitlist`) are timed.

1. Ranking. The practice of `clinicflow.synth` for 50,000 patients (34 clinicians in 12
   specialties at 3 sites, New York time) gets a seeded 50,000-entry waitlist: 60% ask for one
   clinician, the rest for anyone in a specialty; visit types in the synthetic practice's mix;
   the specialty's visit length; a preferred site (a quarter will go nowhere else); date windows
   opening in the next 10 days and lasting 1-4 weeks (some open-ended); 55% give 1-4 weekly
   half-day windows; mostly unset priority; listed up to 90 days ago; 8% contacted in the last
   3 days, 2% opted out. `WaitlistIndex` is built once (`index_build_ms`, not in the ranking
   figures); then 1,000 random freed slots of the clinicians' weekly grids in the next 4 weeks are
   each ranked: `index.candidates` + `rank`, timed together (`rank_p50_ms`, `rank_p95_ms`).
   A few slots are also ranked against the whole list without the index (`rank_unindexed_p95_ms`).

2. A month (30 days from Monday 2026-11-23). Every slot of every clinician is booked with the
   synthetic practice's utilization (80%), lead times and cancellation chance (`cancel_probability`
   by lead, as the history generator draws them); a cancelled visit frees its slot at a moment
   drawn as the generator does (20-97% of the way from booking to visit). The waitlist holds the
   synthetic share of patients (3%, 1,500) and gains 50 entries a weekday. Each freed slot is ranked
   and offered in waves (3 every 15 minutes, at most 8 waves, none within 2 hours of the slot,
   sent between 08:00 and 21:00 local; a cancellation at night waits for 08:00). Each offered
   patient says yes with probability BENCH_RESPONSE_P (default 0.25, times BENCH_RESPONSE_DECAY
   per later wave, default 0.9: later waves hold worse fits) after a log-normal delay with median
   BENCH_RESPONSE_MEDIAN_MIN minutes (default 12); the first yes before the cut-off books the slot
   and leaves the list, and waves stop going out. Contacted patients are not offered again for 48
   hours. `fill_rate` is filled / freed slots, `median_fill_min` the median minutes from the
   cancellation to the booking.

Prints progress to stderr and the figures last, as name=value pairs on one line.
Target: rank_p95_ms < 50.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from clinicflow.automations.waitlist import (
    Availability,
    EntryId,
    FreedSlot,
    PatientId,
    RankingPolicy,
    WaitlistEntry,
    WaitlistIndex,
    offer_waves,
    rank,
)
from clinicflow.engine import MessageChannel
from clinicflow.synth.attendance import cancel_probability, lead_days, visit_kind
from clinicflow.synth.practice import Clinician, Practice, build_practice
from clinicflow.synth.schedule import weekly_grid

SEED = 7
PATIENTS = 50_000
ENTRIES = 50_000
SLOTS = 1_000
UNINDEXED_SLOTS = 50
ZONE = ZoneInfo("America/New_York")
ANCHOR = date(2026, 11, 23)  # a Monday; the synthetic practice's "today"
NOW = datetime.combine(ANCHOR, clock_time(7, 0), tzinfo=ZONE).astimezone(UTC)
POLICY = RankingPolicy()
HALF_DAYS = (
    (clock_time(8), clock_time(12)),
    (clock_time(13), clock_time(17)),
    (clock_time(8), clock_time(17)),
)
MONTH_DAYS = 30
UTILIZATION = 0.80
MONTH_WAITLIST = round(PATIENTS * 0.03)
ARRIVALS_PER_WEEKDAY = 50
MAX_WAVES = 8
SEND_FROM, SEND_UNTIL = clock_time(8), clock_time(21)
RESPONSE_P = float(os.environ.get("BENCH_RESPONSE_P", "0.25"))
RESPONSE_DECAY = float(os.environ.get("BENCH_RESPONSE_DECAY", "0.9"))
RESPONSE_MEDIAN_MIN = float(os.environ.get("BENCH_RESPONSE_MEDIAN_MIN", "12"))


def progress(message: str) -> None:
    """One line of progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def _priority(rng: random.Random) -> int:
    pick = rng.random()
    if pick < 0.70:
        return 0
    if pick < 0.80:
        return rng.randint(1, 3)
    if pick < 0.95:
        return rng.randint(4, 6)
    return rng.randint(7, 9)


def _availability(rng: random.Random) -> tuple[Availability, ...]:
    if rng.random() < 0.45:
        return ()
    windows = set()
    for _ in range(rng.randint(1, 4)):
        starts, ends = rng.choice(HALF_DAYS)
        windows.add(Availability(rng.randrange(5), starts, ends))
    return tuple(sorted(windows, key=lambda w: (w.weekday, w.starts_local)))


def make_entry(
    rng: random.Random, number: int, practice: Practice, today: date, now: datetime
) -> WaitlistEntry:
    """One realistic waitlist entry, listed on or before `now`, wanting a visit from `today` on."""
    clinician = rng.choice(practice.clinicians)
    named = rng.random() < 0.6
    site = clinician.site_index if named else rng.randrange(len(practice.sites))
    earliest = today + timedelta(days=rng.randint(0, 10))
    latest = earliest + timedelta(days=rng.randint(7, 28))
    contacted = now - timedelta(hours=rng.uniform(1, 72)) if rng.random() < 0.08 else None
    return WaitlistEntry(
        id=EntryId(f"w{number:06}"),
        patient_id=PatientId(f"p{rng.randrange(PATIENTS):05}"),
        practitioner_id=clinician.id if named else None,
        specialty=clinician.specialty.key,
        visit_type=visit_kind(rng, walk_in_allowed=False),
        minutes=clinician.specialty.slot_minutes,
        location_id=practice.sites[site].id,
        earliest_on=earliest if rng.random() < 0.9 else None,
        latest_on=latest if rng.random() < 0.9 else None,
        listed_at=now - timedelta(hours=rng.uniform(1, 90 * 24)),
        availability=_availability(rng),
        other_locations_ok=rng.random() < 0.75,
        priority=_priority(rng),
        channel=MessageChannel.SMS if rng.random() < 0.8 else MessageChannel.EMAIL,
        last_contacted_at=contacted,
        opted_out=rng.random() < 0.02,
    )


def slot_of(
    practice: Practice, clinician: Clinician, day_on: date, minute: int, visit_type: str
) -> FreedSlot:
    """The freed slot of `clinician` starting `minute` minutes after local midnight of `day_on`."""
    starts = datetime.combine(day_on, clock_time(minute // 60, minute % 60), tzinfo=ZONE)
    return FreedSlot(
        start_at=starts.astimezone(UTC),
        minutes=clinician.specialty.slot_minutes,
        practitioner_id=clinician.id,
        specialty=clinician.specialty.key,
        location_id=practice.sites[clinician.site_index].id,
        visit_type=visit_type,
        zone=ZONE,
    )


def random_slots(rng: random.Random, practice: Practice, count: int) -> list[FreedSlot]:
    """`count` slots from the clinicians' weekly grids in the next four weeks."""
    grids = [weekly_grid(c) for c in practice.clinicians]
    slots: list[FreedSlot] = []
    while len(slots) < count:
        clinician = rng.choice(practice.clinicians)
        day_on = ANCHOR + timedelta(days=rng.randrange(28))
        starts = grids[clinician.index][day_on.weekday()]
        if starts:
            kind = visit_kind(rng, walk_in_allowed=False)
            slots.append(slot_of(practice, clinician, day_on, rng.choice(starts), kind))
    return slots


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def bench_ranking(practice: Practice) -> dict[str, object]:
    """Index build time and ranking latency against the 50,000-entry waitlist."""
    rng = random.Random(SEED)
    entries = [make_entry(rng, n, practice, ANCHOR, NOW) for n in range(ENTRIES)]
    started = time.perf_counter()
    index = WaitlistIndex(entries)
    build_ms = (time.perf_counter() - started) * 1000
    progress(f"index of {index.size} entries built in {build_ms:.0f} ms")
    slots = random_slots(rng, practice, SLOTS)
    timings, candidates, ranked = [], [], []
    for slot in slots:
        started = time.perf_counter()
        found = index.candidates(slot, POLICY)
        order = rank(found, slot, now=NOW, policy=POLICY)
        timings.append((time.perf_counter() - started) * 1000)
        candidates.append(len(found))
        ranked.append(len(order))
    progress(
        f"{SLOTS} slots: candidates median {statistics.median(candidates):.0f} "
        f"max {max(candidates)}, eligible median {statistics.median(ranked):.0f} "
        f"max {max(ranked)}"
    )
    unindexed = []
    for slot in slots[:UNINDEXED_SLOTS]:
        started = time.perf_counter()
        rank(entries, slot, now=NOW, policy=POLICY)
        unindexed.append((time.perf_counter() - started) * 1000)
    return {
        "rank_p50_ms": round(percentile(timings, 0.50), 2),
        "rank_p95_ms": round(percentile(timings, 0.95), 2),
        "rank_max_ms": round(max(timings), 2),
        "rank_unindexed_p95_ms": round(percentile(unindexed, 0.95), 1),
        "entries": ENTRIES,
        "slots": SLOTS,
        "index_build_ms": round(build_ms),
    }


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A booked visit cancelled at `cancelled_at`, freeing `slot`."""

    cancelled_at: datetime
    slot: FreedSlot


def month_cancellations(rng: random.Random, practice: Practice) -> list[Cancellation]:
    """The month's cancellations of booked slots, in the order they happen."""
    found = []
    for clinician in practice.clinicians:
        grid = weekly_grid(clinician)
        for offset in range(MONTH_DAYS):
            day_on = ANCHOR + timedelta(days=offset)
            for minute in grid[day_on.weekday()]:
                if rng.random() >= UTILIZATION:
                    continue
                kind = visit_kind(rng, walk_in_allowed=False)
                lead = lead_days(rng, kind)
                if rng.random() >= cancel_probability(lead):
                    continue
                slot = slot_of(practice, clinician, day_on, minute, kind)
                booked_at = slot.start_at - timedelta(days=lead, hours=rng.uniform(0, 12))
                at = booked_at + (slot.start_at - booked_at) * rng.uniform(0.2, 0.97)
                if at >= NOW:  # cancelled before the month began: no longer "freed" in it
                    found.append(Cancellation(at, slot))
    return sorted(found, key=lambda c: (c.cancelled_at, c.slot.practitioner_id))


def first_send(at: datetime) -> datetime:
    """The first moment at or after `at` when offers may go out (08:00-21:00 local)."""
    local = at.astimezone(ZONE)
    if local.time() < SEND_FROM:
        return datetime.combine(local.date(), SEND_FROM, tzinfo=ZONE).astimezone(UTC)
    if local.time() >= SEND_UNTIL:
        following = local.date() + timedelta(days=1)
        return datetime.combine(following, SEND_FROM, tzinfo=ZONE).astimezone(UTC)
    return at


class MonthWaitlist:
    """The waitlist as the month changes it: arrivals, contacts, bookings."""

    def __init__(self, rng: random.Random, practice: Practice) -> None:
        self.rng, self.practice = rng, practice
        self.entries = {
            e.id: e for e in (make_entry(rng, n, practice, ANCHOR, NOW) for n in range(1_500))
        }
        self.number = len(self.entries)
        self.day_on = ANCHOR
        self.index = WaitlistIndex(self.entries.values())

    def advance_to(self, at: datetime) -> None:
        """Add each new weekday's arrivals up to `at` and rebuild the index once a day."""
        while self.day_on < at.astimezone(ZONE).date():
            self.day_on += timedelta(days=1)
            if self.day_on.weekday() >= 5:
                continue
            morning = datetime.combine(self.day_on, clock_time(9), tzinfo=ZONE).astimezone(UTC)
            for _ in range(ARRIVALS_PER_WEEKDAY):
                entry = make_entry(self.rng, self.number, self.practice, self.day_on, morning)
                entry = replace(entry, listed_at=morning, last_contacted_at=None)
                self.entries[entry.id] = entry
                self.number += 1
            self.index = WaitlistIndex(self.entries.values())

    def current(self, slot: FreedSlot) -> list[WaitlistEntry]:
        """Candidates for `slot` as they are now (the index holds entries as first listed)."""
        found = (self.entries.get(e.id) for e in self.index.candidates(slot, POLICY))
        return [e for e in found if e is not None]


def fill(waitlist: MonthWaitlist, cancellation: Cancellation) -> tuple[timedelta | None, int]:
    """Offer one freed slot in waves; how long it took to fill (None: not filled), offers sent."""
    rng, slot = waitlist.rng, cancellation.slot
    start = first_send(cancellation.cancelled_at)
    stop_before = slot.start_at - POLICY.min_lead
    ranked = rank(waitlist.current(slot), slot, now=start, policy=POLICY)
    waves = offer_waves(ranked, start=start, stop_before=stop_before, max_waves=MAX_WAVES)
    claims: list[tuple[datetime, str]] = []
    sent = 0
    for wave in waves:
        if claims and claims[0][0] <= wave.send_at:
            break  # booked before this wave was due: no more offers
        if wave.send_at.astimezone(ZONE).time() >= SEND_UNTIL:
            break
        says_yes = RESPONSE_P * RESPONSE_DECAY**wave.number
        for offer in wave.offers:
            sent += 1
            entry = offer.entry
            waitlist.entries[entry.id] = replace(entry, last_contacted_at=wave.send_at)
            if rng.random() < says_yes:
                delay = timedelta(minutes=RESPONSE_MEDIAN_MIN * math.exp(rng.gauss(0, 1)))
                if wave.send_at + delay < stop_before:
                    heapq.heappush(claims, (wave.send_at + delay, entry.id))
    if not claims:
        return None, sent
    booked_at, winner = claims[0]
    del waitlist.entries[EntryId(winner)]
    return booked_at - cancellation.cancelled_at, sent


def bench_month(practice: Practice) -> dict[str, object]:
    """Fill rate and time to fill over a month of cancellations."""
    rng = random.Random(SEED + 1)
    cancellations = month_cancellations(rng, practice)
    waitlist = MonthWaitlist(rng, practice)
    filled: list[float] = []
    offers = 0
    for cancellation in cancellations:
        waitlist.advance_to(cancellation.cancelled_at)
        took, sent = fill(waitlist, cancellation)
        offers += sent
        if took is not None:
            filled.append(took.total_seconds() / 60)
    progress(
        f"month: {len(cancellations)} freed slots, {len(filled)} filled, {offers} offers, "
        f"{len(waitlist.entries)} entries left"
    )
    return {
        "freed": len(cancellations),
        "fill_rate": round(len(filled) / len(cancellations), 3),
        "median_fill_min": round(statistics.median(filled)) if filled else None,
        "offers_per_freed": round(offers / len(cancellations), 1),
    }


def main() -> None:
    """Run both parts and print the figures."""
    practice = build_practice(random.Random(SEED), PATIENTS, ZONE.key)
    progress(f"practice: {len(practice.clinicians)} clinicians at {len(practice.sites)} sites")
    ranking = bench_ranking(practice)
    month = bench_month(practice)
    progress(f"response model: p={RESPONSE_P} decay={RESPONSE_DECAY} median={RESPONSE_MEDIAN_MIN}")
    pairs = {**ranking, **month}
    first = ("rank_p50_ms", "rank_p95_ms", "entries", "slots", "index_build_ms")
    ordered = {k: pairs[k] for k in first} | pairs
    print(" ".join(f"{k}={v}" for k, v in ordered.items()))


if __name__ == "__main__":
    main()
