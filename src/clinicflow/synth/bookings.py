"""Booked visits in the coming five weeks, filling slots most densely today and tomorrow (pure).

Besides the random fill, today and tomorrow get two things the demo needs: families booked
back to back (several reminders to one phone) and patients with two visits on the same day.
Empty sessions get no bookings at all, and overbooked ones are filled first, then squeezed into.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from clinicflow.synth.anomalies import (
    SQUEEZE_IN_KINDS,
    Anomalies,
    session_minutes,
    squeeze_in_starts,
)
from clinicflow.synth.attendance import future_utilization, lead_days, visit_kind
from clinicflow.synth.history import cancel_reason
from clinicflow.synth.identifiers import new_id
from clinicflow.synth.people import Patient
from clinicflow.synth.practice import Clinician
from clinicflow.synth.schedule import LAST_SLOT_DAY, SlotKey
from clinicflow.synth.timeline import AS_OF_MINUTE, LocalDay, is_clinic_day
from clinicflow.synth.visits import PatientPicker, Visit

FUTURE_CANCELLED_SHARE = 0.03
# Rounds of patient draws for a place in an overbooked session before giving up on it; small
# panels run out of patients who are free that day, and the session must be full to overbook.
OVERBOOK_PICK_ROUNDS = 8
# Gap between a patient's two visits on one day, so they can walk from one clinic to the other.
SAME_DAY_GAP_MINUTES = 15


def _lead_at_least(rng: random.Random, kind: str, day: int) -> int:
    """A lead time drawn as for any booking of `kind`, but reaching back to before "now"."""
    for _ in range(12):
        lead = lead_days(rng, kind)
        if lead >= day:
            return lead
    return day + rng.randrange(10)


@dataclass
class _Book:
    """The state of one booking pass: what is generated against, and what is taken so far."""

    rng: random.Random
    clinicians: Sequence[Clinician]
    grids: Sequence[tuple[tuple[int, ...], ...]]
    days: Mapping[int, LocalDay]
    slot_ids: Mapping[SlotKey, str]
    picker: PatientPicker
    anomalies: Anomalies
    taken: set[SlotKey] = field(default_factory=set)
    visits: list[Visit] = field(default_factory=list)

    def bookable_minutes(self, clinician: int, day: int) -> list[int]:
        """Start minutes of the clinician's slots on `day`, leaving out sessions that stay empty."""
        grid = self.grids[clinician][self.days[day].on.weekday()]
        return [m for m in grid if not self.anomalies.is_empty(clinician, day, m)]

    def free_minutes(self, clinician: int, day: int) -> list[int]:
        """Start minutes of the clinician's bookable slots on `day` that nobody holds yet."""
        bookable = self.bookable_minutes(clinician, day)
        return [m for m in bookable if (clinician, day, m) not in self.taken]

    def booked_at_s(self, day: int, lead: int) -> int:
        """When a visit `day` days ahead was booked, `lead` days before it (never after "now")."""
        extra = lead - day
        if extra == 0:  # booked online overnight, before "now"
            return self.days[0].instant_s(self.rng.randrange(0, AS_OF_MINUTE))
        return self.days[-extra].instant_s(self.rng.randrange(7 * 60, 21 * 60))

    def book(self, clinician: int, patient: int, day: int, minute: int) -> None:
        """Book the patient into the slot, with a kind and a booking time that fit the day."""
        rng = self.rng
        kind = visit_kind(rng, walk_in_allowed=False)
        created_s = self.booked_at_s(day, _lead_at_least(rng, kind, day))
        key = (clinician, day, minute)
        minutes = self.clinicians[clinician].specialty.slot_minutes
        self.taken.add(key)
        self.picker.mark(patient, day)
        self.visits.append(
            Visit(
                new_id(rng), patient, clinician, day, minute, minutes, kind, "booked",
                created_s, created_s, None, self.slot_ids[key],
            )
        )  # fmt: skip

    def squeeze_in(self, clinician: int, patient: int, day: int, minute: int) -> None:
        """Book the patient beside the visit at `minute`, without a slot of their own."""
        rng = self.rng
        # The front desk books these by phone in office hours, a day or a few before "now".
        created_s = self.booked_at_s(day, day + 1 + rng.randrange(3))
        self.picker.mark(patient, day)
        self.visits.append(
            Visit(
                new_id(rng), patient, clinician, day, minute,
                self.clinicians[clinician].specialty.slot_minutes, rng.choice(SQUEEZE_IN_KINDS),
                "booked", created_s, created_s, squeezed_in=True,
            )
        )  # fmt: skip


def _pick_persistently(book: _Book, clinician: int, day: int) -> int | None:
    """A patient for a place that has to be taken: the picker's usual draws, tried a few times."""
    for _ in range(OVERBOOK_PICK_ROUNDS):
        patient = book.picker.pick(book.rng, clinician, day)
        if patient is not None:
            return patient
    return None


def _overbook(book: _Book) -> None:
    """Fill each overbooked session, then squeeze one or two more patients in beside booked ones.

    This runs before the random fill, while the day still has patients free to squeeze in.
    """
    for clinician, day, half in sorted(book.anomalies.overbooked):
        if day < 0:
            continue
        for minute in session_minutes(book.free_minutes(clinician, day), half):
            patient = _pick_persistently(book, clinician, day)
            if patient is not None:
                book.book(clinician, patient, day, minute)
        offered = session_minutes(book.grids[clinician][book.days[day].on.weekday()], half)
        held = [m for m in offered if (clinician, day, m) in book.taken]
        for minute in squeeze_in_starts(book.rng, held, offered):
            patient = _pick_persistently(book, clinician, day)
            if patient is not None:
                book.squeeze_in(clinician, patient, day, minute)


def _book_family(book: _Book, members: list[Patient], day: int) -> bool:
    """Book a household back to back with one family clinician; False when no run of slots fits."""
    rng = book.rng
    if not all(book.picker.is_free(m.index, day) for m in members):
        return False
    family_doctors = [c for c in book.clinicians if c.specialty.key in ("family", "np")]
    clinician = rng.choice(family_doctors)
    length = clinician.specialty.slot_minutes
    free = set(book.free_minutes(clinician.index, day))
    starts = [m for m in sorted(free) if all(m + i * length in free for i in range(len(members)))]
    if not starts:
        return False
    first = rng.choice(starts)
    for number, member in enumerate(members):
        book.book(clinician.index, member.index, day, first + number * length)
    return True


def _book_two_visits(book: _Book, patient: Patient, day: int) -> bool:
    """Book a patient with their own clinician and a specialist on one day, without overlap."""
    rng = book.rng
    own = book.clinicians[patient.gp_index]
    specialists = [
        c
        for c in book.clinicians
        if not c.specialty.primary_care and book.picker.accepts(c.specialty.audience, patient)
    ]
    if not specialists or not book.picker.is_free(patient.index, day):
        return False
    other = rng.choice(specialists)
    own_free = book.free_minutes(own.index, day)
    if not own_free:
        return False
    first = rng.choice(own_free)
    first_end = first + own.specialty.slot_minutes + SAME_DAY_GAP_MINUTES
    length = other.specialty.slot_minutes
    fits = [
        m
        for m in book.free_minutes(other.index, day)
        if m >= first_end or m + length + SAME_DAY_GAP_MINUTES <= first
    ]
    if not fits:
        return False
    book.book(own.index, patient.index, day, first)
    book.book(other.index, patient.index, day, rng.choice(fits))
    return True


def _book_showcases(book: _Book, patients: Sequence[Patient], day: int) -> None:
    """Families and same-day double visits on one of the next two days."""
    rng = book.rng
    households = [
        members
        for members in (list(g) for _, g in groupby(patients, key=lambda p: p.household))
        if len(members) > 1
    ]
    wanted = max(2, len(patients) // 4000)
    for members in rng.sample(households, min(len(households), wanted * 3)):
        if wanted and _book_family(book, members, day):
            wanted -= 1
    adults = [p for p in patients if book.picker.ages[p.index] >= 18]
    wanted = max(2, len(patients) // 2500)
    for patient in rng.sample(adults, min(len(adults), wanted * 3)):
        if wanted and _book_two_visits(book, patient, day):
            wanted -= 1


def _cancel_some(book: _Book, as_of_s: int) -> None:
    """Visits already cancelled in the coming weeks; their slots are free again."""
    rng = book.rng
    for clinician in book.clinicians:
        for day in range(0, LAST_SLOT_DAY + 1):
            for minute in book.free_minutes(clinician.index, day):
                if rng.random() >= FUTURE_CANCELLED_SHARE:
                    continue
                patient = book.picker.pick(rng, clinician.index, day)
                if patient is None:
                    continue
                kind = visit_kind(rng, walk_in_allowed=False)
                created_s = book.booked_at_s(day, day + rng.randrange(1, 30))
                cancelled_s = created_s + int((as_of_s - created_s) * rng.uniform(0.3, 0.99))
                book.visits.append(
                    Visit(
                        new_id(rng), patient, clinician.index, day, minute,
                        clinician.specialty.slot_minutes, kind, "cancelled", created_s,
                        cancelled_s, cancel_reason(rng),
                    )
                )  # fmt: skip


def plan_future(
    rng: random.Random,
    clinicians: Sequence[Clinician],
    grids: Sequence[tuple[tuple[int, ...], ...]],
    days: Mapping[int, LocalDay],
    slot_ids: Mapping[SlotKey, str],
    picker: PatientPicker,
    patients: Sequence[Patient],
    as_of_s: int,
    anomalies: Anomalies,
) -> list[Visit]:
    """Booked visits from the anchor day to the end of the slot window, plus a few cancelled."""
    book = _Book(rng, clinicians, grids, days, slot_ids, picker, anomalies)
    for day in (0, 1):
        if is_clinic_day(days[day].on):
            _book_showcases(book, patients, day)
    _overbook(book)
    for clinician in clinicians:
        for day in range(0, LAST_SLOT_DAY + 1):
            free = book.free_minutes(clinician.index, day)
            held = len(book.bookable_minutes(clinician.index, day)) - len(free)
            # Showcase and overbooked sessions count towards the day's utilization, so fill
            # only the rest.
            share = (future_utilization(day) * (held + len(free)) - held) / max(1, len(free))
            for minute in free:
                if rng.random() < share:
                    patient = picker.pick(rng, clinician.index, day)
                    if patient is not None:
                        book.book(clinician.index, patient, day, minute)
    _cancel_some(book, as_of_s)
    return book.visits
