"""Read-only queries over the replica's scheduling tables, for automations and pages."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.security.phi import PhiCipher
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import Appointment, FhirResource, Schedule, Slot

# Statuses that hold a place on a provider's calendar (FHIR R4 AppointmentStatus).
ACTIVE_VISIT_STATUSES = ("proposed", "pending", "booked", "arrived", "fulfilled", "checked-in")


def slot_starts_between(
    session: Session, start_at: datetime, end_at: datetime
) -> list[tuple[str, datetime]]:
    """(practitioner id, start) of every offered slot (free or busy) in [start_at, end_at)."""
    query = (
        select(Schedule.practitioner_id, Slot.start_at)
        .join(Schedule, Schedule.fhir_id == Slot.schedule_id)
        .where(
            Slot.start_at >= start_at,
            Slot.start_at < end_at,
            Slot.status.in_(("free", "busy", "busy-tentative")),
            Schedule.active.is_(True),
            Schedule.practitioner_id.is_not(None),
        )
    )
    return [(str(pid), start) for pid, start in session.execute(query)]


def visit_starts_between(
    session: Session,
    start_at: datetime,
    end_at: datetime,
    statuses: Collection[str] = ACTIVE_VISIT_STATUSES,
) -> list[tuple[str, datetime]]:
    """(practitioner id, start) of visits in [start_at, end_at) with one of `statuses`."""
    query = select(Appointment.practitioner_id, Appointment.start_at).where(
        Appointment.start_at >= start_at,
        Appointment.start_at < end_at,
        Appointment.status.in_(tuple(statuses)),
        Appointment.practitioner_id.is_not(None),
    )
    return [(str(pid), start) for pid, start in session.execute(query) if start is not None]


def practitioner_names(session: Session, cipher: PhiCipher, ids: Iterable[str]) -> dict[str, str]:
    """Display names ("Dr. Ana Ortiz") of practitioners, from their stored resources."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(FhirResource.fhir_id, FhirResource.body).where(
            FhirResource.resource_type == "Practitioner", FhirResource.fhir_id.in_(wanted)
        )
    )
    names: dict[str, str] = {}
    for fhir_id, body in rows:
        resource = open_body(cipher, body, "Practitioner", fhir_id)
        names[fhir_id] = display_name(resource) or f"Practitioner/{fhir_id}"
    return names


def display_name(resource: dict[str, object]) -> str | None:
    """A person's name as it is usually written: prefix, given names, family name."""
    names = resource.get("name")
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return None
    name = names[0]
    if isinstance(name.get("text"), str):
        return str(name["text"])
    parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
    text = " ".join(str(p) for p in parts if p)
    return text or None
