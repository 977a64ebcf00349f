"""Appointments as light rows, and who may be booked into a clinician's slot."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from clinicflow.synth.people import Patient, age_on
from clinicflow.synth.practice import Practice
from clinicflow.synth.specialties import Audience, accepts

# Patient keys in the "booked that day" set: patient * _DAY_SPAN + day offset + _DAY_SHIFT.
_DAY_SPAN = 4096
_DAY_SHIFT = 2048


@dataclass(frozen=True, slots=True)
class Visit:
    """One Appointment: day is the offset from the anchor, minute the local start."""

    id: str
    patient: int
    clinician: int
    day: int
    minute: int
    minutes: int
    kind: str
    status: str
    created_s: int
    updated_s: int
    cancel_reason: str | None = None
    slot_id: str | None = None
    # Booked on top of a full session without a slot of its own (see anomalies.py).
    squeezed_in: bool = False


def visit_weight(age: int) -> int:
    """How many times more often a patient of `age` visits than a healthy young adult."""
    return 2 if age < 3 or age >= 65 else 1


class PatientPicker:
    """Draws a patient for a clinician's slot, never one already booked that day.

    Primary-care clinicians see their own panel (patients who name them as general practitioner),
    specialists anyone their audience accepts; draws are weighted by how often people visit.
    """

    def __init__(self, patients: Sequence[Patient], practice: Practice, anchor_on: date) -> None:
        ages = [age_on(p.birth_on, anchor_on) for p in patients]
        by_audience: dict[Audience, list[int]] = {}
        for audience in Audience:
            by_audience[audience] = [
                p.index
                for p, age in zip(patients, ages, strict=True)
                if accepts(audience, age, p.gender)
                for _ in range(visit_weight(age))
            ]
        panels: dict[int, list[int]] = {c.index: [] for c in practice.clinicians}
        for p, age in zip(patients, ages, strict=True):
            panels[p.gp_index].extend([p.index] * visit_weight(age))
        self.ages = ages
        self._fallback = [by_audience[c.specialty.audience] for c in practice.clinicians]
        self._first = [
            panels[c.index] if c.specialty.primary_care and panels[c.index] else self._fallback[i]
            for i, c in enumerate(practice.clinicians)
        ]
        self._booked: set[int] = set()

    def is_free(self, patient: int, day: int) -> bool:
        """True when the patient has no visit yet on `day`."""
        return patient * _DAY_SPAN + day + _DAY_SHIFT not in self._booked

    def mark(self, patient: int, day: int) -> None:
        """Record that the patient has a visit on `day`."""
        self._booked.add(patient * _DAY_SPAN + day + _DAY_SHIFT)

    def pick(self, rng: random.Random, clinician: int, day: int) -> int | None:
        """A patient for `clinician` on `day`, or None when the draws keep hitting booked ones."""
        for pool in (self._first[clinician], self._fallback[clinician]):
            if not pool:
                continue
            for _ in range(4):
                patient = pool[rng.randrange(len(pool))]
                if self.is_free(patient, day):
                    self.mark(patient, day)
                    return patient
        return None

    def accepts(self, clinician_audience: Audience, patient: Patient) -> bool:
        """True when a clinician with this audience may see the patient."""
        return accepts(clinician_audience, self.ages[patient.index], patient.gender)
