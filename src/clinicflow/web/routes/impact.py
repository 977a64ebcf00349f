"""The Impact page: hours and money each automation saved per week, and the lines behind them.

Counts and sums only (no PHI), for leadership and the automation team. The chart is SVG drawn on
the server (`impact.report`), so the page needs no script and no outside resource; the CSV
export carries the same lines with the ids of the runs behind each.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from clinicflow.engine import set_switch
from clinicflow.errors import InputError
from clinicflow.impact.ledger import WeekLine, totals, weekly_lines
from clinicflow.impact.proposals import (
    LEADERSHIP_DECISIONS,
    NewProposal,
    Standing,
    decide,
    file_proposal,
    portfolio,
    start_trial,
)
from clinicflow.impact.report import (
    csv_text,
    hours_chart_svg,
    money_chart_svg,
    portfolio_csv,
    portfolio_rows,
    rates_chart_svg,
    trends_csv,
    units_text,
)
from clinicflow.impact.trends import Trends, practice_trends
from clinicflow.security.audit import record_access
from clinicflow.security.permissions import Permission
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import render
from clinicflow.web.state import AppState

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.AUTOMATIONS_VIEW))]
Weeks = Annotated[int, Query(ge=1, le=520)]


Filer = Annotated[Staff, Depends(require(Permission.PROPOSALS_FILE))]
Decider = Annotated[Staff, Depends(require(Permission.PROPOSALS_DECIDE))]


def _portfolio(state: AppState) -> list[Standing]:
    with state.db.read() as session:
        return portfolio(session, state.registry, state.settings, now=state.clock.now())


def _trends(state: AppState, weeks: int) -> Trends:
    with state.db.read() as session:
        return practice_trends(session, state.settings, now=state.clock.now(), weeks=weeks)


def _lines(state: AppState, weeks: int) -> list[WeekLine]:
    with state.db.read() as session:
        return weekly_lines(
            session, state.registry, state.settings, weeks=weeks, now=state.clock.now()
        )


@router.get("/impact", response_class=HTMLResponse)
def impact_page(request: Request, state: State, staff: Viewer, weeks: Weeks = 8) -> HTMLResponse:
    """The chart, the totals and every line, for the last `weeks` weeks."""
    lines = _lines(state, weeks)
    trends = _trends(state, weeks)
    return render(
        request,
        "staff/impact.html",
        title="Impact",
        staff=staff,
        weeks=weeks,
        lines=lines,
        sums=totals(lines),
        chart=hours_chart_svg(lines),
        units_text=units_text,
        settings_costs=sorted(state.settings.role_hourly_cost.items()),
        portfolio=portfolio_rows(_portfolio(state)),
        trends=trends.rates,
        avoided=trends.avoided,
        avoided_cents=trends.avoided_cents,
        baseline=trends.baseline,
        rates_chart=rates_chart_svg(trends.rates),
        money_chart=money_chart_svg(lines),
        roles=sorted(state.settings.role_hourly_cost),
        automations=[a.name for a in state.registry.automations()],
        may_file=staff.may(Permission.PROPOSALS_FILE),
        may_decide=staff.may(Permission.PROPOSALS_DECIDE),
        decisions=sorted(LEADERSHIP_DECISIONS),
    )


@router.get("/impact.csv", dependencies=[Depends(require(Permission.AUTOMATIONS_VIEW))])
def impact_csv(state: State, weeks: Weeks = 8) -> Response:
    """The same lines as CSV, with the runs behind each."""
    return Response(
        csv_text(_lines(state, weeks)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="impact-{weeks}-weeks.csv"'},
    )


@router.get("/impact/portfolio.csv", dependencies=[Depends(require(Permission.AUTOMATIONS_VIEW))])
def portfolio_export(state: State) -> Response:
    """Every proposal with its estimate, actual, ratio and flag, as CSV."""
    return Response(
        portfolio_csv(_portfolio(state)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="portfolio.csv"'},
    )


def _problem(exc: InputError) -> HTTPException:
    return HTTPException(422, f"{exc.where}: {exc}" if exc.where else str(exc))


@router.post("/impact/proposals", response_model=None)
def file_a_proposal(
    state: State,
    staff: Filer,
    process: Annotated[str, Form(max_length=200)],
    department: Annotated[str, Form(max_length=100)],
    owner: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=40)],
    volume_per_week: Annotated[float, Form(ge=0)],
    minutes_per_task: Annotated[float, Form(ge=0)],
    share_automated: Annotated[float, Form(gt=0, le=1)],
    build_cost: Annotated[float, Form(ge=0)],
    running_cost_per_year: Annotated[float, Form(ge=0)],
    risks: Annotated[str, Form(max_length=2000)] = "",
    clinical_signoff: Annotated[bool, Form()] = False,
) -> Response:
    """File a proposal; its estimate is computed from these figures."""
    new = NewProposal(
        process,
        department,
        owner,
        role,
        volume_per_week,
        minutes_per_task,
        share_automated,
        build_cost,
        running_cost_per_year,
        risks,
        clinical_signoff,
    )
    with state.db.transaction() as session:
        try:
            proposal = file_proposal(session, new, by=staff.user.username, now=staff.seen_at)
        except InputError as exc:
            raise _problem(exc) from None
        record_access(
            session,
            staff.actor,
            "create",
            [f"Proposal/{proposal.id}"],
            at=staff.seen_at,
            detail={"proposal": "filed"},
        )
    return RedirectResponse("/impact#portfolio", status_code=303)


@router.post("/impact/proposals/{proposal_id}/decide", response_model=None)
def decide_a_proposal(
    state: State,
    staff: Decider,
    proposal_id: int,
    decision: Annotated[str, Form(max_length=24)],
    note: Annotated[str, Form(max_length=2000)] = "",
    automation: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Approve (naming the automation), reject or ask for changes (saying why), go live, retire."""
    if decision not in (*LEADERSHIP_DECISIONS, "go-live"):
        raise HTTPException(422, f"Unknown decision {decision!r}.")
    with state.db.transaction() as session:
        try:
            decide(
                session,
                proposal_id,
                decision,
                by=staff.user.username,
                now=staff.seen_at,
                note=note,
                automation=automation or None,
                registry=state.registry,
            )
        except InputError as exc:
            raise _problem(exc) from None
        record_access(
            session,
            staff.actor,
            "write",
            [f"Proposal/{proposal_id}"],
            at=staff.seen_at,
            detail={"proposal": decision},
        )
    return RedirectResponse("/impact#portfolio", status_code=303)


@router.post("/impact/proposals/{proposal_id}/trial", response_model=None)
def trial_a_proposal(
    state: State,
    staff: Filer,
    proposal_id: int,
    automation: Annotated[str, Form(max_length=100)],
    weeks: Annotated[int, Form(ge=1, le=26)] = 2,
) -> Response:
    """Trial a proposal: its automation runs in dry run on the practice's data for `weeks`."""
    if state.registry.find(automation) is None:
        raise HTTPException(422, f"There is no automation {automation!r}.")
    with state.db.transaction() as session:
        try:
            start_trial(
                session,
                proposal_id,
                automation=automation,
                weeks=weeks,
                by=staff.user.username,
                now=staff.seen_at,
            )
        except InputError as exc:
            raise _problem(exc) from None
        set_switch(session, automation, actor=staff.user.username, now=staff.seen_at, dry_run=True)
        record_access(
            session,
            staff.actor,
            "write",
            [f"Proposal/{proposal_id}"],
            at=staff.seen_at,
            detail={"proposal": "trial", "automation": automation, "weeks": weeks},
        )
    return RedirectResponse("/impact#portfolio", status_code=303)


@router.get("/impact/trends.csv", dependencies=[Depends(require(Permission.AUTOMATIONS_VIEW))])
def trends_export(state: State, weeks: Weeks = 8) -> Response:
    """The weekly no-show and confirmation rates as CSV."""
    return Response(
        trends_csv(_trends(state, weeks).rates),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="trends-{weeks}-weeks.csv"'},
    )
