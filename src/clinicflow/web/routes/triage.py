"""Urgent messages on staff screens, acknowledging them, and messages posted for triage.

`/alarms` is what every signed-in page asks every few seconds (staff.js): how many urgent
messages nobody has acknowledged, and their work items. It holds no PHI (no names, no words)
and never keeps a session alive, so an unattended screen still signs out. `POST
/api/v1/messages` stores a patient's message and its `message.received` before it answers; the
triage decision follows within seconds on the worker.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from clinicflow.automations.triage.corrections import acknowledge
from clinicflow.automations.triage.intake import post_message
from clinicflow.errors import InputError
from clinicflow.security.permissions import Permission
from clinicflow.store.engine import WorkItem
from clinicflow.store.triage import TriageMessage
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.params import RowId
from clinicflow.web.staff_ui import cipher_of

router = APIRouter()
Poller = Annotated[Staff, Depends(require(Permission.WORK_VIEW, keeps_alive=False))]
Actor = Annotated[Staff, Depends(require(Permission.WORK_ACT))]
Poster = Annotated[Staff, Depends(require(Permission.MESSAGES_POST))]


class UrgentWaiting(BaseModel):
    id: int
    work_item: int | None
    waiting_minutes: int
    alerted: int  # steps of the on-call ladder texted so far


class Alarms(BaseModel):
    urgent: list[UrgentWaiting]


@router.get("/alarms", response_model=Alarms)
def alarms(state: State, staff: Poller) -> Alarms:
    """Urgent messages nobody has acknowledged yet, oldest first (no PHI)."""
    with state.db.read() as session:
        rows = session.execute(
            select(TriageMessage, WorkItem.id)
            .outerjoin(WorkItem, WorkItem.key == TriageMessage.work_item_key)
            .where(TriageMessage.urgent.is_(True), TriageMessage.acknowledged_at.is_(None))
            .order_by(TriageMessage.received_at)
            .limit(50)
        ).all()
    now = staff.seen_at
    return Alarms(
        urgent=[
            UrgentWaiting(
                id=m.id,
                work_item=item_id,
                waiting_minutes=max(0, int((now - m.received_at).total_seconds() // 60)),
                alerted=m.escalation_level,
            )
            for m, item_id in rows
        ]
    )


@router.post("/triage/{message_id}/acknowledge", response_model=None)
def acknowledge_urgent(state: State, staff: Actor, message_id: RowId) -> Response:
    """I have seen it: the on-call ladder stops (the work item is still to be done)."""
    try:
        with state.db.transaction() as session:
            acknowledge(session, message_id, by=staff.user.username, now=staff.seen_at)
            item = session.scalar(
                select(WorkItem.id)
                .join(TriageMessage, TriageMessage.work_item_key == WorkItem.key)
                .where(TriageMessage.id == message_id)
            )
    except InputError as exc:
        raise HTTPException(404, exc.message) from None
    return RedirectResponse(f"/review/{item}" if item else "/review?pool=urgent", 303)


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    patient_id: str | None = Field(None, max_length=64)
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    in_response_to: str | None = Field(None, max_length=160)


class MessageAccepted(BaseModel):
    id: int
    status: str = "stored"


@router.post("/api/v1/messages", response_model=MessageAccepted, status_code=202)
def post_patient_message(state: State, staff: Poster, body: MessageIn) -> MessageAccepted:
    """Store a patient's message for triage; 202 once it is stored (the decision follows)."""
    try:
        with state.db.transaction() as session:
            message_id = post_message(
                session,
                cipher_of(state),
                text=body.text,
                patient_id=body.patient_id,
                language=body.language,
                thread_ref=body.in_response_to,
                by=staff.actor,
                now=staff.seen_at,
            )
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    return MessageAccepted(id=message_id)
