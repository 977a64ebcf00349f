"""The practice's own visit history from the replica's typed tables, as no-show records."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.automations.noshow.records import Outcome, Sex, Visit
from clinicflow.store.engine import Effect, Event
from clinicflow.store.messaging import ReminderClaim
from clinicflow.store.replica import Appointment, Patient

# FHIR R4 Appointment.status to what became of the visit. "entered-in-error" and the waitlist
# are not visits at all; "booked"/"arrived"/"checked-in" are not over yet.
_OUTCOMES = {
    "fulfilled": Outcome.ATTENDED,
    "noshow": Outcome.NOSHOW,
    "cancelled": Outcome.CANCELLED,
}
_NOT_VISITS = ("entered-in-error", "waitlist", "proposed")
_SEXES = {s.value: s for s in Sex}


def _reminders(session: Session) -> dict[str, list[datetime]]:
    """When each visit's reminders went out (the effect finished)."""
    rows = session.execute(
        select(ReminderClaim.appointment_id, Effect.finished_at)
        .join(Effect, Effect.key == ReminderClaim.effect_key)
        .where(Effect.state == "done", Effect.finished_at.is_not(None))
    )
    sent: dict[str, list[datetime]] = defaultdict(list)
    for appointment_id, finished_at in rows:
        if finished_at is not None:  # excluded by the query; narrows the type
            sent[appointment_id].append(finished_at)
    return sent


def _confirmations(session: Session) -> dict[str, datetime]:
    """When each visit was first confirmed, from the outbox's appointment.confirmed events.

    The typed table holds only the current participant status; using it for past visits would
    let a confirmation given after the prediction moment (or at check-in) leak into training.
    """
    rows = session.execute(
        select(Event.resource_id, Event.occurred_at).where(Event.type == "appointment.confirmed")
    )
    first: dict[str, datetime] = {}
    for appointment_id, occurred_at in rows:
        if appointment_id not in first or occurred_at < first[appointment_id]:
            first[appointment_id] = occurred_at
    return first


def practice_visits(session: Session) -> list[Visit]:
    """Every appointment with a start and a patient, with its patient's sex and age."""
    patients = {p.fhir_id: (p.gender, p.birth_year) for p in session.scalars(select(Patient))}
    sent = _reminders(session)
    confirmed = _confirmations(session)
    query = select(Appointment).where(
        Appointment.start_at.is_not(None),
        Appointment.patient_id.is_not(None),
        Appointment.status.not_in(_NOT_VISITS),
    )
    visits: list[Visit] = []
    for a in session.scalars(query):
        if a.start_at is None or a.patient_id is None:  # excluded by the query; narrows types
            continue
        gender, birth_year = patients.get(a.patient_id, (None, None))
        confirmed_at = confirmed.get(a.fhir_id)
        visits.append(
            Visit(
                visit_id=a.fhir_id,
                patient_id=a.patient_id,
                start_at=a.start_at,
                booked_at=a.booked_at,
                outcome=_OUTCOMES.get(a.status, Outcome.PENDING),
                visit_type=a.appointment_type or a.service_type,
                provider_id=a.practitioner_id,
                location_id=a.location_id,
                age_years=a.start_at.year - birth_year if birth_year else None,
                sex=_SEXES.get(gender or "", Sex.UNKNOWN),
                confirmation="accepted" if confirmed_at is not None else None,
                confirmed_at=confirmed_at,
                reminders_sent_at=tuple(sorted(sent.get(a.fhir_id, ()))),
            )
        )
    return visits
