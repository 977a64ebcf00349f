"""The On-call page: the rota of who answers urgent patient messages, editable by clinicians."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from clinicflow.errors import InputError
from clinicflow.oncall import add_shift, on_call_at, remove_shift, shifts_between
from clinicflow.security.accounts import set_alert_phone
from clinicflow.security.permissions import CLINICAL_ROLES, ROLE_PERMISSIONS, Permission
from clinicflow.store.staff import StaffUser
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.params import RowId
from clinicflow.web.staff_ui import render

router = APIRouter()
SHOWN_DAYS = 14
Viewer = Annotated[Staff, Depends(require(Permission.ONCALL_VIEW))]
Editor = Annotated[Staff, Depends(require(Permission.ONCALL_EDIT))]
# Who may be on call for urgent messages: people who may answer clinical questions.


def _page(
    request: Request,
    state: State,
    staff: Staff,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    now = staff.seen_at
    with state.db.transaction() as session:
        shifts = shifts_between(session, now, now + timedelta(days=SHOWN_DAYS))
        current = on_call_at(session, now)
        people = list(
            session.execute(
                select(StaffUser.username, StaffUser.display_name)
                .where(StaffUser.role.in_(CLINICAL_ROLES), StaffUser.disabled_at.is_(None))
                .order_by(StaffUser.display_name)
            )
        )
        phones = {
            row.username: row.notify_phone
            for row in session.execute(
                select(StaffUser.username, StaffUser.notify_phone).where(
                    StaffUser.username.in_({s.username for s in shifts})
                )
            )
        }
    return render(
        request,
        "staff/oncall.html",
        title="On-call",
        staff=staff,
        shifts=shifts,
        current=current,
        people=people,
        # Where each person's urgent-message texts go, the number masked to its last digits.
        alert_to={name: f"\u2026{phone[-4:]}" if phone else None for name, phone in phones.items()},
        error=error,
        status_code=status_code,
        can_edit=Permission.ONCALL_EDIT in ROLE_PERMISSIONS[staff.user.role],
    )


@router.get("/on-call", response_class=HTMLResponse)
def oncall_page(request: Request, state: State, staff: Viewer) -> HTMLResponse:
    """Who is on call now, and the next two weeks' shifts."""
    return _page(request, state, staff)


def _local(text: str, zone: ZoneInfo, field: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=zone)
    except ValueError:
        raise InputError(
            "Give a date and time, e.g. 2026-12-02T18:00.", where=field, code="oncall.when"
        ) from None


@router.post("/on-call", response_model=None)
def add(
    request: Request,
    state: State,
    staff: Editor,
    person: Annotated[str, Form(max_length=64)],
    starts: Annotated[str, Form(max_length=32)],
    ends: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Add a shift (times in the practice's zone)."""
    zone = ZoneInfo(state.settings.timezone)
    try:
        with state.db.transaction() as session:
            add_shift(
                session,
                username=person,
                starts_at=_local(starts, zone, "starts"),
                ends_at=_local(ends, zone, "ends"),
                note=note,
                by=staff.user.username,
                now=staff.seen_at,
            )
    except InputError as exc:
        return _page(request, state, staff, error=exc.message, status_code=422)
    return RedirectResponse("/on-call", status_code=303)


@router.post("/on-call/alert-phone", response_model=None)
def alert_phone(
    request: Request,
    state: State,
    staff: Editor,
    person: Annotated[str, Form(max_length=64)],
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Where a clinician's urgent-message texts go (blank: none, the on-screen alarm only)."""
    try:
        with state.db.transaction() as session:
            set_alert_phone(
                session,
                username=person,
                phone=phone.strip() or None,
                by=staff.user.username,
                now=staff.seen_at,
            )
    except InputError as exc:
        return _page(request, state, staff, error=exc.message, status_code=422)
    return RedirectResponse("/on-call", status_code=303)


@router.post("/on-call/{shift_id}/remove", response_model=None)
def remove(state: State, staff: Editor, shift_id: RowId) -> Response:
    """Take a shift off the rota."""
    with state.db.transaction() as session:
        remove_shift(session, shift_id, by=staff.user.username, now=staff.seen_at)
    return RedirectResponse("/on-call", status_code=303)
