"""The Today board: the day's visits by provider and time, with confirmation and reminders."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from clinicflow.boards import (
    CONFIRMATION_LABELS,
    TodayFilters,
    by_provider,
    expected_noshows,
    today_board,
)
from clinicflow.boards.overbooking import decide, decisions_on, suggestions
from clinicflow.security.audit import record_access
from clinicflow.security.permissions import Permission
from clinicflow.store.generations import generation_of
from clinicflow.web.audit_views import audit_view
from clinicflow.web.auth import Staff, require
from clinicflow.web.board_cache import BOARD_TYPES, CachedBoard
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, render, templates
from clinicflow.web.state import AppState

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
    with state.db.read() as session:  # a snapshot: only the audit row below writes
        generation = generation_of(session, BOARD_TYPES)
        key = (shown_day, filters, state.settings.timezone, generation)
        board = state.board_cache.get(key)
        if board is None:
            board = _build_board(state, session, shown_day, zone, filters)
            state.board_cache.put(key, board)
    with state.db.transaction() as session:
        offered = suggestions(board.rows, decisions_on(session, shown_day))
        audit_view(
            session,
            staff,
            view="today",
            resources=[f"Appointment/{r.appointment_id}" for r in board.rows],
            patients=[r.patient_id for r in board.rows],
            path=request.url.path,
        )
    return render(
        request,
        "staff/today.html",
        title="Today",
        staff=staff,
        board_html=board.html,
        suggestions=offered,
        day=shown_day,
        may_decide=staff.may(Permission.SCHEDULE_DECIDE),
    )


@router.post("/today/overbooking", response_model=None)
def decide_overbooking(
    state: State,
    staff: Annotated[Staff, Depends(require(Permission.SCHEDULE_DECIDE))],
    practitioner: Annotated[str, Form(max_length=64)],
    day: Annotated[str, Form(max_length=10)],
    decision: Annotated[str, Form(pattern="^(accepted|dismissed)$")],
) -> Response:
    """Accept or dismiss a provider's overbooking suggestion for a day (kept and audited)."""
    zone = ZoneInfo(state.settings.timezone)
    shown_day = parse_day(day, staff.seen_at.astimezone(zone).date())
    cipher = cipher_of(state)
    with state.db.transaction() as session:
        rows = today_board(
            session,
            cipher,
            day=shown_day,
            zone=zone,
            filters=TodayFilters(practitioner_id=practitioner),
        )
        found = [s for s in suggestions(rows, {}) if s.practitioner_id == practitioner]
        if not found:
            raise HTTPException(
                409, "There is no overbooking suggestion for this provider on this day any more."
            )
        decide(
            session,
            suggestion=found[0],
            day=shown_day,
            decision=decision,
            by=staff.user.username,
            at=staff.seen_at,
        )
        record_access(
            session,
            staff.actor,
            "write",
            [f"Practitioner/{practitioner}"],
            at=staff.seen_at,
            detail={"overbooking": decision, "day": shown_day.isoformat(), "room": found[0].room},
        )
    return RedirectResponse(f"/today?day={shown_day.isoformat()}", status_code=303)


def _build_board(
    state: AppState, session: Session, day: date, zone: ZoneInfo, filters: TodayFilters
) -> CachedBoard:
    """Query, decrypt and render one board (the part the cache spares)."""
    cipher = cipher_of(state)
    rows = today_board(session, cipher, day=day, zone=zone, filters=filters)
    everyone = (
        today_board(session, cipher, day=day, zone=zone, filters=TodayFilters())
        if filters.practitioner_id
        else rows
    )
    providers = sorted(
        {(r.practitioner_id, r.practitioner) for r in everyone if r.practitioner_id},
        key=lambda p: p[1],
    )
    known = sorted(set(CONFIRMATION_LABELS.values()))
    counts = {label: sum(1 for r in rows if r.confirmation == label) for label in known}
    html = templates.get_template("staff/today_board.html").render(
        groups=by_provider(rows),
        rows=rows,
        day=day,
        providers=providers,
        filters=filters,
        confirmations=known,
        counts=counts,
        has_risk=any(r.noshow_risk is not None for r in rows),
        expected_noshows=expected_noshows,
        zone=state.settings.timezone,
    )
    return CachedBoard(tuple(rows), html)
