"""The Today board: the day's visits by provider and time, with confirmation and reminders."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from clinicflow.boards import CONFIRMATION_LABELS, TodayFilters, by_provider, today_board
from clinicflow.security.permissions import Permission
from clinicflow.web.audit_views import audit_view
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, render

router = APIRouter()


def parse_day(text: str | None, today: date) -> date:
    """The board's day from `?day=YYYY-MM-DD`; today when absent or not a date."""
    try:
        return date.fromisoformat(text) if text else today
    except ValueError:
        return today


@router.get("/today", response_class=HTMLResponse)
def today_page(
    request: Request,
    state: State,
    staff: Annotated[Staff, Depends(require(Permission.TODAY_VIEW))],
    day: Annotated[str | None, Query(max_length=10)] = None,
    provider: Annotated[str | None, Query(max_length=64)] = None,
    confirmation: Annotated[str | None, Query(max_length=16)] = None,
    cancelled: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """Appointments of the day grouped by provider; filters narrow them."""
    zone = ZoneInfo(state.settings.timezone)
    shown_day = parse_day(day, staff.seen_at.astimezone(zone).date())
    known = set(CONFIRMATION_LABELS.values())
    filters = TodayFilters(
        practitioner_id=provider or None,
        confirmation=confirmation if confirmation in known else None,
        include_cancelled=cancelled,
    )
    with state.db.transaction() as session:
        rows = today_board(session, cipher_of(state), day=shown_day, zone=zone, filters=filters)
        everyone = (
            today_board(session, cipher_of(state), day=shown_day, zone=zone, filters=TodayFilters())
            if filters.practitioner_id
            else rows
        )
        audit_view(
            session,
            staff,
            view="today",
            resources=[f"Appointment/{r.appointment_id}" for r in rows],
            patients=[r.patient_id for r in rows],
            path=request.url.path,
        )
    providers = sorted(
        {(r.practitioner_id, r.practitioner) for r in everyone if r.practitioner_id},
        key=lambda p: p[1],
    )
    counts = {label: sum(1 for r in rows if r.confirmation == label) for label in sorted(known)}
    return render(
        request,
        "staff/today.html",
        title="Today",
        staff=staff,
        groups=by_provider(rows),
        rows=rows,
        day=shown_day,
        providers=providers,
        filters=filters,
        confirmations=sorted(known),
        counts=counts,
    )
