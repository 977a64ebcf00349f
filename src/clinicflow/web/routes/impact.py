"""The Impact page: hours and money each automation saved per week, and the lines behind them.

Counts and sums only (no PHI), for leadership and the automation team. The chart is SVG drawn on
the server (`impact.report`), so the page needs no script and no outside resource; the CSV
export carries the same lines with the ids of the runs behind each.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from clinicflow.impact.ledger import WeekLine, totals, weekly_lines
from clinicflow.impact.report import csv_text, hours_chart_svg, units_text
from clinicflow.security.permissions import Permission
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import render
from clinicflow.web.state import AppState

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.AUTOMATIONS_VIEW))]
Weeks = Annotated[int, Query(ge=1, le=520)]


def _lines(state: AppState, weeks: int) -> list[WeekLine]:
    with state.db.read() as session:
        return weekly_lines(
            session, state.registry, state.settings, weeks=weeks, now=state.clock.now()
        )


@router.get("/impact", response_class=HTMLResponse)
def impact_page(request: Request, state: State, staff: Viewer, weeks: Weeks = 8) -> HTMLResponse:
    """The chart, the totals and every line, for the last `weeks` weeks."""
    lines = _lines(state, weeks)
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
    )


@router.get("/impact.csv", dependencies=[Depends(require(Permission.AUTOMATIONS_VIEW))])
def impact_csv(state: State, weeks: Weeks = 8) -> Response:
    """The same lines as CSV, with the runs behind each."""
    return Response(
        csv_text(_lines(state, weeks)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="impact-{weeks}-weeks.csv"'},
    )
