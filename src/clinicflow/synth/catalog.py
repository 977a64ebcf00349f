"""Which resources go into which NDJSON file, in which order, made lazily from the plan."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from clinicflow.synth import patient_resources as pr
from clinicflow.synth import practice_resources as cr
from clinicflow.synth import visit_resources as vr
from clinicflow.synth.elements import Resource
from clinicflow.synth.plan import PracticePlan
from clinicflow.synth.timeline import DAY_S

# How long before "now" the practice's directory and its schedules were last edited.
DIRECTORY_AGE_S = 90 * DAY_S
SCHEDULE_AGE_S = 60 * DAY_S


@dataclass(frozen=True, slots=True)
class ResourceFile:
    """One output file: its resource type, how many lines it will have, and the resources."""

    resource_type: str
    count: int
    resources: Iterable[Resource]


def _slots(plan: PracticePlan) -> Iterator[Resource]:
    held = {v.slot_id: v.created_s for v in plan.visits if v.slot_id is not None}
    published_s = plan.as_of_s - SCHEDULE_AGE_S
    clinicians = plan.practice.clinicians
    for item in plan.slots:
        booked_s = held.get(item.id)
        updated_s = published_s if booked_s is None else max(booked_s, published_s)
        yield cr.slot(item, clinicians[item.clinician], plan.days, booked_s is not None, updated_s)


def _organizations(plan: PracticePlan) -> Iterator[Resource]:
    edited_s = plan.as_of_s - DIRECTORY_AGE_S
    yield cr.organization(plan.practice, edited_s)
    for payer in plan.practice.payers:
        yield cr.payer_organization(payer, edited_s)


def _appointments(plan: PracticePlan) -> Iterator[Resource]:
    practice, patients = plan.practice, plan.patients
    for visit in plan.visits:
        yield vr.appointment(visit, patients, practice, plan.days)
    for entry in plan.waitlist:
        yield vr.waitlist_appointment(entry, patients, practice)


def resource_files(plan: PracticePlan) -> list[ResourceFile]:
    """The files of a practice, each a lazy stream so a large practice is never held as JSON."""
    practice, patients, days = plan.practice, plan.patients, plan.days
    edited_s = plan.as_of_s - DIRECTORY_AGE_S
    published_s = plan.as_of_s - SCHEDULE_AGE_S
    clinicians = practice.clinicians
    return [
        ResourceFile("Organization", 1 + len(practice.payers), _organizations(plan)),
        ResourceFile(
            "Location",
            len(practice.sites),
            (cr.location(s, practice, edited_s) for s in practice.sites),
        ),
        ResourceFile(
            "Practitioner", len(clinicians), (cr.practitioner(c, edited_s) for c in clinicians)
        ),
        ResourceFile(
            "PractitionerRole",
            len(clinicians),
            (cr.practitioner_role(c, practice, edited_s) for c in clinicians),
        ),
        ResourceFile(
            "Schedule",
            len(clinicians),
            (cr.schedule(c, practice, days, published_s) for c in clinicians),
        ),
        ResourceFile("Slot", len(plan.slots), _slots(plan)),
        ResourceFile(
            "Patient", len(patients), (pr.patient_resource(p, practice) for p in patients)
        ),
        ResourceFile(
            "Coverage",
            len(plan.policies),
            (pr.coverage_resource(c, patients, practice) for c in plan.policies),
        ),
        ResourceFile("Appointment", len(plan.visits) + len(plan.waitlist), _appointments(plan)),
        ResourceFile(
            "Communication",
            len(plan.messages),
            (vr.communication(m, patients, practice) for m in plan.messages),
        ),
    ]
