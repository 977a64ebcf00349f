"""The review queue: work items by pool, urgent first; claim, note, resolve, hand to a pool."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from clinicflow.automations.triage.corrections import message_of_work_item, record_move
from clinicflow.automations.triage.pools import POOLS as MESSAGE_POOLS
from clinicflow.engine import (
    WorkItemId,
    add_note,
    claim_work_item,
    get_work_item,
    hand_to_pool,
    list_open,
    resolve_work_item,
)
from clinicflow.errors import EngineError
from clinicflow.security.permissions import Permission, Role
from clinicflow.store.engine import WorkItem
from clinicflow.web.audit_views import view_detail
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.params import RowId
from clinicflow.web.staff_ui import URGENT_PRIORITIES, cipher_of, render

router = APIRouter()

# The pools work is handed between; a role starts on its own pool's queue. The message pools
# are where message-triage puts patients' messages; moving one between them is a correction
# triage learns from.
STAFF_POOLS = ("front-desk", "scheduling", "nurses", "physicians", "billing", "automation-team")
POOLS = (*STAFF_POOLS, *(p for p in MESSAGE_POOLS if p not in STAFF_POOLS))
# Nurses and physicians start on every pool: patients' messages land in the message pools
# (urgent, clinical-question, medication, results), and urgent items sort to the top.
ROLE_POOL = {
    Role.FRONT_DESK: "front-desk",
    Role.SCHEDULER: "scheduling",
    Role.BILLING: "billing",
}
Viewer = Annotated[Staff, Depends(require(Permission.WORK_VIEW))]
Actor = Annotated[Staff, Depends(require(Permission.WORK_ACT))]


@router.get("/review", response_class=HTMLResponse)
def review_queue(
    request: Request,
    state: State,
    staff: Viewer,
    pool: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """Open work items of one pool (or all), most pressing first."""
    chosen = pool if pool in (*POOLS, "all") else ROLE_POOL.get(staff.user.role, "all")
    with state.db.transaction() as session:
        items = list_open(
            session,
            cipher_of(state),
            reader=staff.user.username,
            now=staff.seen_at,
            pool=None if chosen == "all" else chosen,
            detail=view_detail(staff, "review-queue", request.url.path),
        )
    urgent = [i for i in items if i.priority.value in URGENT_PRIORITIES]
    routine = [i for i in items if i.priority.value not in URGENT_PRIORITIES]
    return render(
        request,
        "staff/review.html",
        title="Review queue",
        staff=staff,
        urgent=urgent,
        routine=routine,
        pool=chosen,
        pools=POOLS,
        can_act=staff.may(Permission.WORK_ACT),
    )


@router.get("/review/{item_id}", response_class=HTMLResponse)
def work_item_page(
    request: Request, state: State, staff: Viewer, item_id: RowId, error: str | None = None
) -> HTMLResponse:
    """One work item with its notes and what can be done with it."""
    try:
        with state.db.transaction() as session:
            item = get_work_item(
                session,
                cipher_of(state),
                WorkItemId(item_id),
                reader=staff.user.username,
                now=staff.seen_at,
                detail=view_detail(staff, "work-item", request.url.path),
            )
    except EngineError as exc:
        return render(
            request,
            "staff/problem.html",
            title="Work item",
            staff=staff,
            status_code=404,
            heading="Work item not found",
            message=exc.message,
        )
    return render(
        request,
        "staff/work_item.html",
        title=f"Work item {item_id}",
        staff=staff,
        item=item,
        pools=POOLS,
        can_act=staff.may(Permission.WORK_ACT),
        error=error,
    )


def _act(
    request: Request,
    state: State,
    staff: Staff,
    item_id: RowId,
    action: str,
    text: str = "",
    pool: str = "",
) -> Response:
    user, now = staff.user.username, staff.seen_at
    try:
        with state.db.transaction() as session:
            wid = WorkItemId(item_id)
            if action == "claim":
                claim_work_item(session, wid, user=user, now=now)
            elif action == "note":
                if not text.strip():
                    raise EngineError("Write the note first.", code="work_item.empty_note")
                add_note(session, cipher_of(state), wid, author=user, text=text.strip(), now=now)
            elif action == "resolve":
                if text.strip():
                    add_note(
                        session, cipher_of(state), wid, author=user, text=text.strip(), now=now
                    )
                resolve_work_item(session, wid, user=user, now=now)
            elif action == "hand-over":
                if pool not in POOLS:
                    raise EngineError("Choose the pool to hand this to.", code="work_item.pool")
                hand_to_pool(session, wid, pool=pool, actor=user, now=now)
                _keep_correction(session, wid, pool, user=user, now=now)
    except EngineError as exc:
        return work_item_page(request, state, staff, item_id, error=exc.message)
    target = "/review" if action in ("resolve", "hand-over") else f"/review/{item_id}"
    return RedirectResponse(target, status_code=303)


def _keep_correction(
    session: Session, wid: WorkItemId, pool: str, *, user: str, now: datetime
) -> None:
    """A patient's message moved to another message pool: triage keeps the correction."""
    item = session.get(WorkItem, wid)
    message = message_of_work_item(session, item.key) if item is not None else None
    if message is not None and pool in MESSAGE_POOLS:
        record_move(session, message, to_pool=pool, by=user, now=now)


@router.post("/review/{item_id}/claim", response_model=None)
def claim(request: Request, state: State, staff: Actor, item_id: RowId) -> Response:
    """Take the item: it is yours until you resolve it or hand it on."""
    return _act(request, state, staff, item_id, "claim")


@router.post("/review/{item_id}/note", response_model=None)
def note(
    request: Request,
    state: State,
    staff: Actor,
    item_id: RowId,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Add a note (it may hold PHI: it is encrypted and its writing audited)."""
    return _act(request, state, staff, item_id, "note", text=text)


@router.post("/review/{item_id}/resolve", response_model=None)
def resolve(
    request: Request,
    state: State,
    staff: Actor,
    item_id: RowId,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Close the item as done, with an optional closing note."""
    return _act(request, state, staff, item_id, "resolve", text=text)


@router.post("/review/{item_id}/hand-over", response_model=None)
def hand_over(
    request: Request,
    state: State,
    staff: Actor,
    item_id: RowId,
    pool: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Give the item to another pool."""
    return _act(request, state, staff, item_id, "hand-over", pool=pool)
