"""The past year of visits: fulfilled, cancelled and no-shows, with booking lead times (pure)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from clinicflow.synth.anomalies import (
    SQUEEZE_IN_KINDS,
    Anomalies,
    SessionKey,
    half_of,
    session_minutes,
    squeeze_in_starts,
)
from clinicflow.synth.attendance import (
    HISTORY_UTILIZATION,
    cancel_probability,
    lead_days,
    noshow_probability,
    visit_kind,
)
from clinicflow.synth.codes import CANCEL_REASONS
from clinicflow.synth.identifiers import new_id
from clinicflow.synth.practice import Clinician
from clinicflow.synth.schedule import SlotKey
from clinicflow.synth.timeline import LocalDay
from clinicflow.synth.visits import PatientPicker, Visit

HISTORY_DAYS = 365
# Longest lead time any visit kind has (attendance.LEAD_MIXTURES): how far back bookings reach.
LONGEST_LEAD_DAYS = 180
_CANCEL_REASON_WEIGHTS = (30, 20, 18, 12, 6, 8, 6)


def booked_at_s(
    rng: random.Random, days: Mapping[int, LocalDay], day: int, minute: int, lead: int
) -> int:
    """When a visit on `day` at `minute` was booked, `lead` days ahead (same day: hours before)."""
    if lead == 0:
        return days[day].instant_s(minute) - rng.randrange(15 * 60, 3 * 3600)
    return days[day - lead].instant_s(rng.randrange(7 * 60, 21 * 60))


def cancel_reason(rng: random.Random) -> str:
    """A cancellation reason code, patients' own reasons most often."""
    return rng.choices(tuple(CANCEL_REASONS), weights=_CANCEL_REASON_WEIGHTS)[0]


def past_visit(
    rng: random.Random,
    days: Mapping[int, LocalDay],
    clinician: Clinician,
    patient: int,
    age: int,
    day: int,
    minute: int,
    slot_id: str | None,
) -> Visit:
    """A visit that has already happened, been missed, or been cancelled."""
    kind = visit_kind(rng)
    lead = lead_days(rng, kind)
    minutes = clinician.specialty.slot_minutes
    start_s = days[day].instant_s(minute)
    created_s = booked_at_s(rng, days, day, minute, lead)
    common = (new_id(rng), patient, clinician.index, day, minute, minutes, kind)
    if kind != "WALKIN" and rng.random() < cancel_probability(lead):
        cancelled_s = created_s + int((start_s - created_s) * rng.uniform(0.2, 0.97))
        return Visit(*common, "cancelled", created_s, cancelled_s, cancel_reason(rng))
    # A walk-in is in the building when it is booked, so it cannot be a no-show.
    missed = kind != "WALKIN" and rng.random() < noshow_probability(lead, age)
    updated_s = start_s + minutes * 60 + rng.randrange(10 * 60, 2 * 3600)
    status = "noshow" if missed else "fulfilled"
    return Visit(*common, status, created_s, updated_s, None, slot_id)


def squeezed_in_visit(
    rng: random.Random,
    days: Mapping[int, LocalDay],
    clinician: Clinician,
    patient: int,
    age: int,
    day: int,
    minute: int,
) -> Visit:
    """A patient squeezed into a full past session: booked that day or the day before."""
    lead = rng.randrange(2)
    minutes = clinician.specialty.slot_minutes
    created_s = booked_at_s(rng, days, day, minute, lead)
    missed = rng.random() < noshow_probability(lead, age)
    updated_s = days[day].instant_s(minute + minutes) + rng.randrange(10 * 60, 2 * 3600)
    return Visit(
        new_id(rng), patient, clinician.index, day, minute, minutes, rng.choice(SQUEEZE_IN_KINDS),
        "noshow" if missed else "fulfilled", created_s, updated_s, squeezed_in=True,
    )  # fmt: skip


def _squeeze_in(
    rng: random.Random,
    clinicians: Sequence[Clinician],
    grids: Sequence[tuple[tuple[int, ...], ...]],
    days: Mapping[int, LocalDay],
    picker: PatientPicker,
    held: Mapping[SessionKey, list[int]],
) -> list[Visit]:
    """Squeezed-in visits in the past overbooked sessions that every slot was booked in."""
    visits = []
    for (index, day, half), minutes in sorted(held.items()):
        offered = session_minutes(grids[index][days[day].on.weekday()], half)
        for minute in squeeze_in_starts(rng, minutes, offered):
            patient = picker.pick(rng, index, day)
            if patient is not None:
                age = picker.ages[patient]
                visits.append(
                    squeezed_in_visit(rng, days, clinicians[index], patient, age, day, minute)
                )
    return visits


def plan_history(
    rng: random.Random,
    clinicians: Sequence[Clinician],
    grids: Sequence[tuple[tuple[int, ...], ...]],
    days: Mapping[int, LocalDay],
    slot_ids: Mapping[SlotKey, str],
    picker: PatientPicker,
    anomalies: Anomalies,
    history_days: int = HISTORY_DAYS,
) -> list[Visit]:
    """Visits in the `history_days` before the anchor; those in the slot window hold their slot.

    Sessions of the slot window that stay empty get no visits; overbooked ones get every slot
    booked, then one or two patients squeezed in.
    """
    visits = []
    held: dict[SessionKey, list[int]] = defaultdict(list)
    for clinician in clinicians:
        grid = grids[clinician.index]
        for day in range(-history_days, 0):
            for minute in grid[days[day].on.weekday()]:
                draw = rng.random()
                if anomalies.is_empty(clinician.index, day, minute):
                    continue
                overbooked = anomalies.is_overbooked(clinician.index, day, minute)
                if draw >= HISTORY_UTILIZATION and not overbooked:
                    continue
                patient = picker.pick(rng, clinician.index, day)
                if patient is None:
                    continue
                slot_id = slot_ids.get((clinician.index, day, minute))
                visits.append(
                    past_visit(
                        rng, days, clinician, patient, picker.ages[patient], day, minute, slot_id
                    )
                )
                if overbooked:
                    held[(clinician.index, day, half_of(minute))].append(minute)
    return visits + _squeeze_in(rng, clinicians, grids, days, picker, held)
