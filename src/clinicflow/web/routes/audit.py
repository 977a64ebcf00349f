"""The Audit page: search who touched which patient's data, when and from where."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from clinicflow.security.audit import catch_up_audit_index, record_access
from clinicflow.security.audit_search import AuditQuery, search_audit
from clinicflow.security.permissions import Permission
from clinicflow.web.audit_views import view_detail
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import render

router = APIRouter()


def _day(text: str | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError:
        return None
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1) if end else day, time(0, 0), tzinfo=zone)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    state: State,
    staff: Annotated[Staff, Depends(require(Permission.AUDIT_VIEW))],
    user: Annotated[str | None, Query(max_length=128)] = None,
    patient: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """Matching audit rows, newest first (the search itself is audited)."""
    zone = ZoneInfo(state.settings.timezone)
    query = AuditQuery(
        actor=user or None,
        patient_id=patient or None,
        action=action or None,
        since=_day(since, zone, end=False),
        until=_day(until, zone, end=True),
    )
    if query.patient_id:
        with state.db.transaction() as session:
            catch_up_audit_index(session)  # list views' rows are indexed in batches
    with state.db.transaction() as session:
        entries = search_audit(session, query)
        record_access(
            session,
            staff.actor,
            "audit-search",
            [],
            at=staff.seen_at,
            detail=view_detail(
                staff,
                "audit",
                request.url.path,
                user=user or "",
                patient=patient or "",
                action=action or "",
            ),
        )
    return render(
        request,
        "staff/audit.html",
        title="Audit",
        staff=staff,
        entries=entries,
        q={
            "user": user or "",
            "patient": patient or "",
            "action": action or "",
            "since": since or "",
            "until": until or "",
        },
    )
