"""The plain operations page: automations and recent runs (no PHI: names, counts and states)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from clinicflow.clock import local_text
from clinicflow.ehr.writeback import count_local_changes
from clinicflow.engine import all_switches, automation_statuses, list_runs
from clinicflow.web.health import State

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


templates.env.filters["localtime"] = local_text


@router.get("/", response_class=HTMLResponse)
def automations_page(request: Request, state: State) -> HTMLResponse:
    """Every automation with its trigger, owner and mode, and the latest runs."""
    with state.db.transaction() as session:
        automations = automation_statuses(state.registry.listing(), all_switches(session))
        runs = list_runs(session, limit=50)
        local_changes = count_local_changes(session)
    return templates.TemplateResponse(
        request,
        "automations.html",
        {
            "automations": automations,
            "runs": runs,
            "settings": state.settings.describe(),
            "zone": state.settings.timezone,
            "local_changes": local_changes,
        },
    )
