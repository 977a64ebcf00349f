"""Rendering staff pages: the shared layout's navigation, the urgent alarm, idle logoff timing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select

from clinicflow.clock import local_text
from clinicflow.engine.states import OPEN_WORK_ITEM_STATUSES, Priority
from clinicflow.security.permissions import CLINICAL_ROLES, Permission
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.store.engine import WorkItem
from clinicflow.web.auth import Staff
from clinicflow.web.state import AppState

__all__ = ["NAV", "NavItem", "cipher_of", "home_for", "render", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["localtime"] = local_text

URGENT_PRIORITIES = (Priority.URGENT.value, Priority.ASAP.value, Priority.STAT.value)


@dataclass(frozen=True, slots=True)
class NavItem:
    """One entry of the top navigation, shown to roles with its permission."""

    label: str
    href: str
    permission: Permission
    current: bool = False


NAV = (
    NavItem("Today", "/today", Permission.TODAY_VIEW),
    NavItem("Waitlist", "/waitlist", Permission.TODAY_VIEW),
    NavItem("Review queue", "/review", Permission.WORK_VIEW),
    NavItem("Messages", "/messages", Permission.MESSAGES_VIEW),
    NavItem("On-call", "/on-call", Permission.ONCALL_VIEW),
    NavItem("Automations", "/automations", Permission.AUTOMATIONS_VIEW),
    NavItem("Impact", "/impact", Permission.AUTOMATIONS_VIEW),
    NavItem("Audit", "/audit", Permission.AUDIT_VIEW),
    NavItem("Users", "/users", Permission.USERS_MANAGE),
    NavItem("Tokens", "/account/tokens", Permission.TOKENS_USE),
)


def home_for(staff: Staff) -> str:
    """The first page of the navigation this person may open."""
    for item in NAV:
        if staff.may(item.permission):
            return item.href
    return "/account"


def cipher_of(state: AppState) -> PhiCipher:
    """The PHI cipher, keyring read per request so a key rotation applies without a restart."""
    return PhiCipher(keyring_from_settings(state.settings, create=False))


def _urgent_count(state: AppState) -> int:
    with state.db.read() as session:
        count = session.scalar(
            select(func.count())
            .select_from(WorkItem)
            .where(
                WorkItem.status.in_([s.value for s in OPEN_WORK_ITEM_STATUSES]),
                WorkItem.priority.in_(URGENT_PRIORITIES),
            )
        )
    return int(count or 0)


def shows_alarm(staff: Staff | None) -> bool:
    """Whether this person's screens carry the live urgent-message alarm."""
    return (
        staff is not None
        and staff.session is not None
        and staff.session.mfa_passed
        and staff.user.role in CLINICAL_ROLES
    )


def render(
    request: Request,
    template: str,
    *,
    title: str,
    staff: Staff | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A staff page in the shared layout; the navigation shows only what the role may open."""
    state: AppState = request.app.state.clinicflow
    nav: list[NavItem] = []
    alarm = 0
    if staff is not None and staff.session is not None and staff.session.mfa_passed:
        path = request.url.path
        nav = [
            NavItem(i.label, i.href, i.permission, current=path.startswith(i.href))
            for i in NAV
            if staff.may(i.permission)
        ]
        if staff.may(Permission.WORK_VIEW):
            alarm = _urgent_count(state)
    return templates.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "staff": staff,
            "nav": nav,
            "urgent_alarm": alarm,
            # The live urgent-message alarm (staff.js polls /alarms) on clinicians' screens.
            "alarms": shows_alarm(staff),
            "idle_seconds": state.settings.idle_logoff_minutes * 60,
            "zone": state.settings.timezone,
            **context,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},  # PHI pages must not sit in a browser cache
    )
