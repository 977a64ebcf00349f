"""The run ledger: one row per run, created at most once per (automation, trigger key).

Services take a Session and never commit. A worker takes a run with a compare-and-set UPDATE and a
lease; if it dies, the lease runs out and the run is taken again (its transaction rolled back, so
it left nothing behind but the lease).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from clinicflow.engine.states import EventId, RunId, RunState, TriggerKind
from clinicflow.engine.upsert import compare_and_set, insert_returning_id, mark_enqueued
from clinicflow.errors import EngineError
from clinicflow.store.engine import AutomationRun


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as the ledger holds it."""

    id: RunId
    automation: str
    trigger_kind: TriggerKind
    trigger_key: str
    event_id: EventId | None
    state: RunState
    dry_run: bool
    requested_by: str
    scheduled_for: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    units: dict[str, int]
    error_code: str | None
    error_message: str | None
    event_ids: tuple[EventId, ...] = ()  # a coalescing run's events, `event_id` first


def _record(row: AutomationRun) -> RunRecord:
    return RunRecord(
        id=RunId(row.id),
        automation=row.automation,
        trigger_kind=TriggerKind(row.trigger_kind),
        trigger_key=row.trigger_key,
        event_id=EventId(row.event_id) if row.event_id is not None else None,
        state=RunState(row.state),
        dry_run=row.dry_run,
        requested_by=row.requested_by,
        scheduled_for=row.scheduled_for,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        units=dict(row.units or {}),
        error_code=row.error_code,
        error_message=row.error_message,
        event_ids=tuple(EventId(i) for i in row.event_ids or ()),
    )


def create_run(
    session: Session,
    *,
    automation: str,
    trigger_kind: TriggerKind,
    trigger_key: str,
    scheduled_for: datetime,
    requested_by: str,
    now: datetime,
    dry_run: bool = False,
    event_id: EventId | None = None,
    event_ids: Sequence[EventId] | None = None,
) -> RunId | None:
    """Queue a run unless (automation, trigger_key) already has one; the new id, or None."""
    values: dict[str, Any] = {
        "automation": automation,
        "trigger_kind": trigger_kind.value,
        "trigger_key": trigger_key,
        "event_id": event_id,
        "event_ids": list(event_ids) if event_ids else None,
        "state": RunState.QUEUED.value,
        "dry_run": dry_run,
        "requested_by": requested_by,
        "scheduled_for": scheduled_for,
        "created_at": now,
        "enqueued_at": now,
        "attempts": 0,
        "units": {},
    }
    new_id = insert_returning_id(session, AutomationRun, values, ["automation", "trigger_key"])
    return None if new_id is None else RunId(new_id)


def get_run(session: Session, run_id: RunId) -> RunRecord:
    """One run; EngineError if there is none."""
    row = session.get(AutomationRun, run_id, populate_existing=True)
    if row is None:
        raise EngineError(f"There is no run {run_id}.", code="run.not_found")
    return _record(row)


def list_runs(
    session: Session, *, automation: str | None = None, limit: int = 50
) -> list[RunRecord]:
    """Recent runs, newest first."""
    stmt = select(AutomationRun).order_by(AutomationRun.id.desc()).limit(limit)
    if automation is not None:
        stmt = stmt.where(AutomationRun.automation == automation)
    return [_record(row) for row in session.scalars(stmt)]


def _cas(session: Session, run_id: RunId, condition: Any, **values: Any) -> bool:
    return compare_and_set(session, AutomationRun, run_id, condition, **values)


def claim_run(
    session: Session, run_id: RunId, *, owner: str, now: datetime, lease_s: float
) -> bool:
    """Take a queued run, or one whose worker's lease ran out; True if this caller won."""
    claimable = or_(
        AutomationRun.state == RunState.QUEUED,
        and_(AutomationRun.state == RunState.RUNNING, AutomationRun.lease_expires_at < now),
    )
    return _cas(
        session,
        run_id,
        claimable,
        state=RunState.RUNNING,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=lease_s),
        started_at=now,
        attempts=AutomationRun.attempts + 1,
    )


def finish_run(
    session: Session,
    run_id: RunId,
    *,
    owner: str,
    now: datetime,
    state: RunState,
    dry_run: bool,
    units: dict[str, int] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> bool:
    """Record the end of a run this caller holds; False if its lease was taken over meanwhile."""
    mine = and_(AutomationRun.state == RunState.RUNNING, AutomationRun.lease_owner == owner)
    return _cas(
        session,
        run_id,
        mine,
        state=state,
        dry_run=dry_run,
        units=dict(units or {}),
        error_code=error_code,
        error_message=error_message,
        finished_at=now,
        lease_expires_at=None,
    )


def stale_runs(session: Session, *, now: datetime, older_than: datetime, limit: int) -> list[RunId]:
    """Runs to enqueue again (`stale_run_ids`), marked enqueued now."""
    ids = stale_run_ids(session, now=now, older_than=older_than, limit=limit)
    mark_enqueued(session, AutomationRun, ids, now)
    return ids


def stale_run_ids(
    session: Session, *, now: datetime, older_than: datetime, limit: int
) -> list[RunId]:
    """Runs to enqueue again: queued but not enqueued lately, or running with an expired lease."""
    stmt = (
        select(AutomationRun.id)
        .where(
            or_(
                and_(
                    AutomationRun.state == RunState.QUEUED,
                    or_(
                        AutomationRun.enqueued_at.is_(None),
                        AutomationRun.enqueued_at < older_than,
                    ),
                ),
                and_(
                    AutomationRun.state == RunState.RUNNING,
                    AutomationRun.lease_expires_at < now,
                    or_(
                        AutomationRun.enqueued_at.is_(None),
                        AutomationRun.enqueued_at < older_than,
                    ),
                ),
            )
        )
        .order_by(AutomationRun.id)
        .limit(limit)
    )
    return [RunId(i) for i in session.scalars(stmt)]


def latest_cron_instant(session: Session, automation: str) -> datetime | None:
    """The scheduled instant of the automation's newest cron run."""
    stmt = (
        select(AutomationRun.scheduled_for)
        .where(
            AutomationRun.automation == automation,
            AutomationRun.trigger_kind == TriggerKind.CRON,
        )
        .order_by(AutomationRun.scheduled_for.desc())
        .limit(1)
    )
    return session.scalar(stmt)
