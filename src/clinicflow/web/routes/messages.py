"""The Messages page: what patients sent and what went out to them (the sandbox outbox)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from clinicflow.boards.messages import contact_digests, inbound_messages, outbound_messages
from clinicflow.security.permissions import Permission
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import FhirResource
from clinicflow.store.schedule_queries import display_name
from clinicflow.web.audit_views import audit_view
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, render

router = APIRouter()


@router.get("/messages", response_class=HTMLResponse)
def messages_page(
    request: Request,
    state: State,
    staff: Annotated[Staff, Depends(require(Permission.MESSAGES_VIEW))],
    patient: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The newest messages in and out; one patient's with `?patient=ID`."""
    cipher = cipher_of(state)
    name = None
    with state.db.transaction() as session:
        digests = None
        if patient:
            body = session.scalar(
                select(FhirResource.body).where(
                    FhirResource.resource_type == "Patient", FhirResource.fhir_id == patient
                )
            )
            if body is None:
                raise HTTPException(404, "There is no patient with this id.")
            resource = open_body(cipher, body, "Patient", patient)
            name = display_name(resource)
            digests = contact_digests(cipher, resource)
        inbound = inbound_messages(session, cipher, digests=digests)
        outbound = outbound_messages(
            session, cipher, for_ref=f"Patient/{patient}" if patient else None
        )
        audit_view(
            session,
            staff,
            view="messages",
            resources=[
                *(f"InboundMessage/{m.id}" for m in inbound),
                *(f"SandboxMessage/{m.id}" for m in outbound),
            ],
            patients=[patient, *(m.for_ref for m in outbound)],
            path=request.url.path,
        )
    return render(
        request,
        "staff/messages.html",
        title="Messages",
        staff=staff,
        inbound=inbound,
        outbound=outbound,
        patient=patient,
        name=name,
    )
