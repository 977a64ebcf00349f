"""The Automations page: each automation, its switches, its recent runs (no PHI, only counts).

The automation team turns automations on and off, between live and dry run, and runs one now (the
run is queued for the workers, as `clinicflow run NAME --queue` does).
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from clinicflow.automations.reminders.stats import ConfirmationRates, confirmation_rates
from clinicflow.automations.waitlist.stats import backfill_stats
from clinicflow.channels.pause import messages_pause
from clinicflow.ehr.writeback import count_local_changes
from clinicflow.engine import (
    EngineRuntime,
    all_switches,
    automation_statuses,
    list_runs,
    request_run,
    set_switch,
    switch_for,
)
from clinicflow.errors import ClinicflowError, EngineError, SecurityError
from clinicflow.security.permissions import Permission
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, render
from clinicflow.web.state import AppState

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.AUTOMATIONS_VIEW))]
Manager = Annotated[Staff, Depends(require(Permission.AUTOMATIONS_MANAGE))]


def _rates(state: AppState, session: Session) -> ConfirmationRates:
    """Reminder confirmation rates; none before the practice has its PHI key (nothing sent)."""
    try:
        cipher = cipher_of(state)
    except SecurityError:
        return ConfirmationRates([], [])
    zone = ZoneInfo(state.settings.timezone)
    return confirmation_rates(session, cipher, zone=zone, now=state.clock.now())


def engine_runtime(state: AppState) -> EngineRuntime:
    """The engine over the app's database, clock and registry (to queue runs people ask for)."""
    return EngineRuntime.build(
        db=state.db,
        settings=state.settings,
        clock=state.clock,
        cipher=cipher_of(state),
        registry=state.registry,
    )


@router.get("/automations", response_class=HTMLResponse)
def automations_page(
    request: Request, state: State, staff: Viewer, notice: str | None = None
) -> HTMLResponse:
    """Every automation with its trigger, owner and mode, and the latest runs."""
    with state.db.transaction() as session:
        automations = automation_statuses(state.registry.listing(), all_switches(session))
        runs = list_runs(session, limit=50)
        local_changes = count_local_changes(session)
        rates = _rates(state, session)
        backfill = backfill_stats(session, now=state.clock.now())
        pause = messages_pause(session)
    return render(
        request,
        "automations.html",
        title="Automations",
        staff=staff,
        automations=automations,
        runs=runs,
        settings=state.settings.describe(),
        local_changes=local_changes,
        rates=rates,
        backfill=backfill,
        pause=pause,
        can_manage=staff.may(Permission.AUTOMATIONS_MANAGE),
        notice=notice[:200] if notice else None,
    )


@router.post("/automations/{name}/switch", response_model=None)
def switch(
    state: State,
    staff: Manager,
    name: str,
    mode: Annotated[str, Form(pattern="^(live|dry-run|off)$")],
) -> Response:
    """Turn an automation off, to dry run (records, sends nothing) or live."""
    try:
        state.registry.get(name)  # never a switch row for an automation that does not exist
    except EngineError as exc:
        raise HTTPException(404, exc.message) from exc
    with state.db.transaction() as session:
        set_switch(
            session,
            name,
            actor=staff.user.username,
            now=staff.seen_at,
            enabled=mode != "off",
            dry_run=mode == "dry-run",
        )
    return RedirectResponse(f"/automations?notice={name}+is+now+{mode}", status_code=303)


@router.post("/automations/{name}/run", response_model=None)
def run_now(state: State, staff: Manager, name: str) -> Response:
    """Queue a run now for the workers (in its current mode)."""
    runtime = engine_runtime(state)
    with state.db.transaction() as session:
        dry_run = switch_for(session, name).dry_run
    try:
        run_id = request_run(runtime, name, dry_run=dry_run, requested_by=staff.user.username)
        state.queue.enqueue_run(run_id)
    except ClinicflowError as exc:
        return RedirectResponse(f"/automations?notice={exc.message[:150]}", status_code=303)
    return RedirectResponse(f"/automations?notice=Run+{run_id}+of+{name}+queued", status_code=303)
