"""Urgent messages on clinicians' screens, and acknowledging them.

`/alarms` is what every signed-in clinician's page asks every few seconds (staff.js): the
urgent messages nobody has acknowledged, and their work items. It holds no PHI (no names, no
words) and never keeps a session alive, so an unattended screen still signs out. Messages are
posted for triage through the REST API (`POST /api/v1/messages`, in `routes/api.py`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from clinicflow.automations.triage.corrections import acknowledge
from clinicflow.errors import InputError
from clinicflow.security.permissions import Permission
from clinicflow.store.engine import WorkItem
from clinicflow.store.triage import TriageMessage
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.params import RowId

router = APIRouter()
Poller = Annotated[Staff, Depends(require(Permission.WORK_VIEW, keeps_alive=False))]
Actor = Annotated[Staff, Depends(require(Permission.WORK_ACT))]


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
