"""Counts for `clinicflow status` and the web app's front page (no PHI: counts only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinicflow.store.engine import AutomationRun, Effect, Event, WorkItem
from clinicflow.store.replica import WHOLE_SYNC_TYPE, FhirResource, SyncCheckpoint

CLOSED_WORK_ITEM_STATUSES = ("completed", "cancelled", "entered-in-error", "rejected", "failed")


def _grouped(session: Session, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column).order_by(column))
    return {str(key): int(n) for key, n in rows}


def summarize(session: Session) -> dict[str, Any]:
    """Resources by type, pending events, open work items, effects and runs by state."""
    pending = select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))
    open_items = (
        select(func.count())
        .select_from(WorkItem)
        .where(WorkItem.status.not_in(CLOSED_WORK_ITEM_STATUSES))
    )
    return {
        "resources": _grouped(session, FhirResource.resource_type),
        "events": {"pending": int(session.execute(pending).scalar_one())},
        "work_items": {"open": int(session.execute(open_items).scalar_one())},
        "effects": _grouped(session, Effect.state),
        "runs": _grouped(session, AutomationRun.state),
    }


def ehr_sync_state(session: Session, now: datetime) -> dict[str, dict[str, Any]]:
    """For each EHR synced from: what the replica is current as of, and how far behind that is."""
    rows = session.execute(
        select(SyncCheckpoint.source, SyncCheckpoint.high_water_at, SyncCheckpoint.updated_at)
        .where(SyncCheckpoint.resource_type == WHOLE_SYNC_TYPE)
        .order_by(SyncCheckpoint.source)
    )
    return {
        str(source).removeprefix("fhir "): {
            "current_as_of": current.isoformat() if current else None,
            "last_success_at": finished.isoformat(),
            "lag_s": round((now - current).total_seconds()) if current else None,
        }
        for source, current, finished in rows
    }
