"""The waitlist: who is waiting for an opening, and a form to put a patient on it or take them off.

Entries are waitlist Appointments. Where the EHR keeps a waitlist they are synced from it; where
it does not, the front desk keeps them here: an entry made or removed on this page is written to
the replica as a local change (like a write-back with no EHR connected), audited, and seen by
waitlist-backfill at once. The days and times a patient can come and the way they want to hear
of an opening ride on the Appointment as clinicflow extensions (`from_fhir`).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinicflow.automations.waitlist.from_fhir import (
    AVAILABILITY_URL,
    CONTACT_URL,
    availability_text,
    entry_from_appointment,
    parse_availability,
)
from clinicflow.boards.today import patient_names
from clinicflow.ehr.prepare import prepare_resource
from clinicflow.ehr.replica_writer import write_resources
from clinicflow.ehr.writeback import Change, WriteBack, apply_change
from clinicflow.errors import InputError
from clinicflow.security.permissions import Permission
from clinicflow.security.phi import PhiCipher
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import Appointment, FhirResource
from clinicflow.store.schedule_queries import practitioner_names
from clinicflow.store.waitlist import WaitlistOffer
from clinicflow.web.audit_views import audit_view
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, render

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.TODAY_VIEW))]
Editor = Annotated[Staff, Depends(require(Permission.SCHEDULE_DECIDE))]

VISIT_TYPES = ("ROUTINE", "FOLLOWUP", "CHECKUP")
APPOINTMENT_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0276"
MAX_ENTRIES_SHOWN = 500


def waitlist_resource(
    *,
    entry_id: str,
    patient_id: str,
    practitioner_id: str | None,
    service_type: str,
    visit_type: str,
    minutes: int,
    earliest: date,
    latest: date,
    priority: int,
    windows: list[str],
    contact: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A waitlist Appointment as the form describes it (pure; ValueError says what is wrong)."""
    if visit_type not in VISIT_TYPES:
        raise ValueError(f"the visit type must be one of {', '.join(VISIT_TYPES)}")
    if latest < earliest:
        raise ValueError("the last day must be on or after the first day")
    if not 0 <= priority <= 9:
        raise ValueError("the priority must be between 1 (highest) and 9, or 0 for none")
    if contact not in (None, "sms", "email"):
        raise ValueError("the contact must be text (sms) or e-mail")
    extension = [
        {"url": AVAILABILITY_URL, "valueString": availability_text(parse_availability(w))}
        for w in windows
    ]
    if contact:
        extension.append({"url": CONTACT_URL, "valueCode": contact})
    participant: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{patient_id}"}, "status": "needs-action"}
    ]
    if practitioner_id:
        participant.append(
            {"actor": {"reference": f"Practitioner/{practitioner_id}"}, "status": "needs-action"}
        )
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": entry_id,
        "meta": {"lastUpdated": now.isoformat()},
        "status": "waitlist",
        "serviceType": [{"coding": [{"code": service_type}]}],
        "appointmentType": {"coding": [{"system": APPOINTMENT_TYPES, "code": visit_type}]},
        "minutesDuration": minutes,
        "created": now.isoformat(),
        "priority": priority,
        "participant": participant,
        "requestedPeriod": [{"start": earliest.isoformat(), "end": latest.isoformat()}],
    }
    if extension:
        resource["extension"] = extension
    return resource


def _providers(session: Session, cipher: PhiCipher) -> list[tuple[str, str, str]]:
    """(practitioner id, name, service) of everyone with booked visits, by name."""
    rows = session.execute(
        select(Appointment.practitioner_id, Appointment.service_type, func.count())
        .where(Appointment.practitioner_id.is_not(None), Appointment.service_type.is_not(None))
        .group_by(Appointment.practitioner_id, Appointment.service_type)
    )
    service: dict[str, tuple[int, str]] = {}
    for practitioner_id, service_type, n in rows:
        if practitioner_id and service_type and n > service.get(practitioner_id, (0, ""))[0]:
            service[practitioner_id] = (n, service_type)
    names = practitioner_names(session, cipher, service)
    found = [(pid, names.get(pid, pid), service[pid][1]) for pid in service]
    return sorted(found, key=lambda p: p[1])


@router.get("/waitlist", response_class=HTMLResponse)
def waitlist_page(request: Request, state: State, staff: Viewer) -> HTMLResponse:
    """Everyone waiting, most urgent and longest waiting first, with the offers they had."""
    cipher = cipher_of(state)
    zone = ZoneInfo(state.settings.timezone)
    with state.db.transaction() as session:
        rows = session.execute(
            select(FhirResource.fhir_id, FhirResource.body, FhirResource.local_change)
            .join(
                Appointment,
                (Appointment.fhir_id == FhirResource.fhir_id)
                & (FhirResource.resource_type == "Appointment"),
            )
            .where(Appointment.status == "waitlist")
            .limit(MAX_ENTRIES_SHOWN)
        ).all()
        entries = []
        for fhir_id, body, local in rows:
            resource = open_body(cipher, body, "Appointment", fhir_id)
            try:
                entries.append((entry_from_appointment(resource, zone=zone), local))
            except InputError:
                continue  # named on the sync report when it arrived; not offered anything
        offers = dict(
            session.execute(
                select(WaitlistOffer.entry_id, func.count())
                .where(WaitlistOffer.entry_id.in_([e.id for e, _ in entries]))
                .group_by(WaitlistOffer.entry_id)
            ).all()
        )
        patients = patient_names(session, cipher, {e.patient_id for e, _ in entries})
        doctors = practitioner_names(
            session, cipher, {e.practitioner_id for e, _ in entries if e.practitioner_id}
        )
        providers = _providers(session, cipher)
        audit_view(
            session,
            staff,
            view="waitlist",
            resources=[f"Appointment/{e.id}" for e, _ in entries],
            patients=[e.patient_id for e, _ in entries],
            path=request.url.path,
        )
    entries.sort(key=lambda pair: (pair[0].priority or 5, pair[0].listed_at))
    return render(
        request,
        "staff/waitlist.html",
        title="Waitlist",
        staff=staff,
        entries=entries,
        offers=offers,
        patients=patients,
        doctors=doctors,
        providers=providers,
        services=sorted({p[2] for p in providers}),
        visit_types=VISIT_TYPES,
        may_edit=staff.may(Permission.SCHEDULE_DECIDE),
        availability_text=availability_text,
        today=staff.seen_at.astimezone(zone).date(),
    )


@router.post("/waitlist", response_model=None)
def add_to_waitlist(
    state: State,
    staff: Editor,
    patient: Annotated[str, Form(max_length=64)],
    wanted: Annotated[str, Form(max_length=140)],
    visit_type: Annotated[str, Form(max_length=16)],
    earliest: Annotated[date, Form()],
    latest: Annotated[date, Form()],
    priority: Annotated[int, Form(ge=0, le=9)] = 0,
    windows: Annotated[str, Form(max_length=400)] = "",
    contact: Annotated[str, Form(max_length=8)] = "",
    minutes: Annotated[int, Form(ge=5, le=240)] = 20,
) -> Response:
    """Put a patient on the waitlist (`wanted`: "practitioner:ID" or "service:CODE")."""
    cipher = cipher_of(state)
    now = staff.seen_at
    kind, _, wanted_id = wanted.partition(":")
    with state.db.transaction() as session:
        known = session.scalar(
            select(func.count())
            .select_from(FhirResource)
            .where(
                FhirResource.resource_type == "Patient",
                FhirResource.fhir_id == patient,
                FhirResource.removed_at.is_(None),
            )
        )
        if not known:
            raise HTTPException(404, "There is no patient with this id in clinicflow's copy.")
        providers = {p[0]: p[2] for p in _providers(session, cipher)}
        if kind == "practitioner" and wanted_id in providers:
            practitioner_id, service = wanted_id, providers[wanted_id]
        elif kind == "service" and wanted_id in providers.values():
            practitioner_id, service = None, wanted_id
        else:
            raise HTTPException(422, "Choose a provider, or anyone in a service.")
        try:
            resource = waitlist_resource(
                entry_id=f"wl-{secrets.token_hex(8)}",
                patient_id=patient,
                practitioner_id=practitioner_id,
                service_type=service,
                visit_type=visit_type,
                minutes=minutes,
                earliest=earliest,
                latest=latest,
                priority=priority,
                windows=[w for w in windows.replace(";", ",").split(",") if w.strip()],
                contact=contact or None,
                now=now,
            )
        except ValueError as exc:
            raise HTTPException(422, f"The waitlist entry was not saved: {exc}.") from None
        _write(session, cipher, staff, resource)
    return RedirectResponse("/waitlist", status_code=303)


@router.post("/waitlist/{entry_id}/remove", response_model=None)
def remove_from_waitlist(state: State, staff: Editor, entry_id: str) -> Response:
    """Take an entry off the waitlist (it is cancelled, with the patient's request as reason)."""
    cipher = cipher_of(state)
    with state.db.transaction() as session:
        row = session.get(Appointment, entry_id[:64])
        if row is None or row.status != "waitlist":
            raise HTTPException(404, "This entry is not on the waitlist (any more).")
        body = session.scalars(
            select(FhirResource.body).where(
                FhirResource.resource_type == "Appointment", FhirResource.fhir_id == row.fhir_id
            )
        ).one()
        current = open_body(cipher, body, "Appointment", row.fhir_id)
        change = WriteBack(
            Change.SET_STATUS, "Appointment", row.fhir_id, status="cancelled", reason_code="pat"
        )
        _write(session, cipher, staff, apply_change(current, change, staff.seen_at))
    return RedirectResponse("/waitlist", status_code=303)


def _write(session: Session, cipher: PhiCipher, staff: Staff, resource: dict[str, Any]) -> None:
    """Into the replica as a local change by this person (audited by the writer)."""
    write_resources(
        session,
        [prepare_resource(resource, cipher)],
        now=staff.seen_at,
        source="local",
        actor=staff.actor,
        action="write",
    )
