"""A patient's page: who they are, how to reach them, their visits (the minimum the desk needs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from clinicflow.boards.today import CONFIRMATION_LABELS
from clinicflow.security.permissions import Permission
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import Appointment, FhirResource
from clinicflow.store.schedule_queries import display_name, practitioner_names
from clinicflow.web.audit_views import audit_view
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, render

router = APIRouter()

VISITS_BACK = timedelta(days=90)


def contact_points(patient: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(system, use, value) of the patient's phones and e-mails, preferred (rank 1) first."""
    points = [
        t
        for t in patient.get("telecom") or []
        if isinstance(t, dict) and t.get("value") and t.get("system") in ("phone", "sms", "email")
    ]
    points.sort(key=lambda t: int(t.get("rank") or 99))
    return [(str(t["system"]), str(t.get("use") or ""), str(t["value"])) for t in points]


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request,
    state: State,
    staff: Annotated[Staff, Depends(require(Permission.PATIENTS_VIEW))],
    patient_id: str,
) -> HTMLResponse:
    """Name, birth date, contact points, language and visits from 90 days back."""
    cipher = cipher_of(state)
    with state.db.transaction() as session:
        body = session.scalar(
            select(FhirResource.body).where(
                FhirResource.resource_type == "Patient",
                FhirResource.fhir_id == patient_id[:64],
                FhirResource.removed_at.is_(None),
            )
        )
        if body is None:
            raise HTTPException(
                404, "There is no patient with this id in clinicflow's copy of the EHR."
            )
        patient = open_body(cipher, body, "Patient", patient_id)
        visits = list(
            session.scalars(
                select(Appointment)
                .where(
                    Appointment.patient_id == patient_id,
                    Appointment.start_at >= staff.seen_at - VISITS_BACK,
                )
                .order_by(Appointment.start_at)
            )
        )
        providers = practitioner_names(
            session, cipher, {v.practitioner_id for v in visits if v.practitioner_id}
        )
        audit_view(
            session,
            staff,
            view="patient",
            resources=[f"Patient/{patient_id}", *(f"Appointment/{v.fhir_id}" for v in visits)],
            patients=[patient_id],
            path=request.url.path,
        )
    languages = [
        c.get("language", {}).get("coding", [{}])[0].get("code")
        for c in patient.get("communication") or []
        if isinstance(c, dict)
    ]
    return render(
        request,
        "staff/patient.html",
        title="Patient",
        staff=staff,
        name=display_name(patient) or "(no name)",
        patient_id=patient_id,
        birth_date=patient.get("birthDate"),
        gender=patient.get("gender"),
        contacts=contact_points(patient),
        languages=[x for x in languages if x],
        visits=visits,
        providers=providers,
        labels=CONFIRMATION_LABELS,
        now=staff.seen_at,
        can_message=staff.may(Permission.MESSAGES_VIEW),
    )
