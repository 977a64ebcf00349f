"""Patients waiting for an earlier or any opening, as waitlist Appointments (pure)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from clinicflow.synth.attendance import visit_kind
from clinicflow.synth.identifiers import new_id
from clinicflow.synth.people import Patient
from clinicflow.synth.practice import Clinician
from clinicflow.synth.specialties import Specialty
from clinicflow.synth.timeline import DAY_S
from clinicflow.synth.visits import PatientPicker

WAITLIST_SHARE = 0.03
# Share of entries that ask for one clinician rather than anyone in the specialty.
NAMED_CLINICIAN_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class WaitlistEntry:
    """A request for a visit some time between `wanted_from` and `wanted_until`."""

    id: str
    patient: int
    clinician: int | None
    specialty: Specialty
    kind: str
    wanted_from: date
    wanted_until: date
    created_s: int


def plan_waitlist(
    rng: random.Random,
    patients: Sequence[Patient],
    clinicians: Sequence[Clinician],
    picker: PatientPicker,
    anchor_on: date,
    as_of_s: int,
) -> list[WaitlistEntry]:
    """A few percent of patients, each waiting for a clinician or specialty in the coming weeks."""
    wanted = max(3, round(len(patients) * WAITLIST_SHARE))
    chosen = rng.sample(range(len(patients)), min(wanted, len(patients)))
    entries = []
    for index in sorted(chosen):
        patient = patients[index]
        suitable = [c for c in clinicians if picker.accepts(c.specialty.audience, patient)]
        clinician = rng.choice(suitable)
        wanted_from = anchor_on + timedelta(days=rng.randint(1, 10))
        entries.append(
            WaitlistEntry(
                id=new_id(rng),
                patient=patient.index,
                clinician=clinician.index if rng.random() < NAMED_CLINICIAN_SHARE else None,
                specialty=clinician.specialty,
                kind=visit_kind(rng, walk_in_allowed=False),
                wanted_from=wanted_from,
                wanted_until=wanted_from + timedelta(days=rng.randint(7, 28)),
                created_s=as_of_s - rng.randrange(3600, 30 * DAY_S),
            )
        )
    return entries
