"""The plain operations page: automations and recent runs (no PHI: names, counts and states)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from clinicflow.automations.reminders.stats import ConfirmationRates, confirmation_rates
from clinicflow.channels.pause import messages_pause
from clinicflow.clock import local_text
from clinicflow.ehr.writeback import count_local_changes
from clinicflow.engine import all_switches, automation_statuses, list_runs
from clinicflow.errors import SecurityError
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.web.health import State
from clinicflow.web.state import AppState

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


templates.env.filters["localtime"] = local_text


def _rates(state: AppState, session: Session) -> ConfirmationRates:
    """Reminder confirmation rates; none before the practice has its PHI key (nothing sent)."""
    try:
        cipher = PhiCipher(keyring_from_settings(state.settings, create=False))
    except SecurityError:
        return ConfirmationRates([], [])
    zone = ZoneInfo(state.settings.timezone)
    return confirmation_rates(session, cipher, zone=zone, now=state.clock.now())


@router.get("/", response_class=HTMLResponse)
def automations_page(request: Request, state: State) -> HTMLResponse:
    """Every automation with its trigger, owner and mode, and the latest runs."""
    with state.db.transaction() as session:
        automations = automation_statuses(state.registry.listing(), all_switches(session))
        runs = list_runs(session, limit=50)
        local_changes = count_local_changes(session)
        rates = _rates(state, session)
        pause = messages_pause(session)
    return templates.TemplateResponse(
        request,
        "automations.html",
        {
            "automations": automations,
            "runs": runs,
            "settings": state.settings.describe(),
            "zone": state.settings.timezone,
            "local_changes": local_changes,
            "rates": rates,
            "pause": pause,
        },
    )
