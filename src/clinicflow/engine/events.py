"""The event outbox: changes recorded with the data, then dispatched as runs of subscribers.

`record_event` is called in the same transaction as the change it describes, so an event exists
exactly when its change does. The dispatcher turns each event into one run per subscribed
automation (trigger key `event:<id>`, unique) and marks it dispatched in the same transaction: a
crash before the commit leaves the event for the next tick, and nothing is dispatched twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from clinicflow.engine.automation import Event as EventTrigger
from clinicflow.engine.keys import event_trigger_key
from clinicflow.engine.registry import Registry
from clinicflow.engine.runs import create_run
from clinicflow.engine.states import EventId, RunId, TriggerKind
from clinicflow.engine.switches import all_switches
from clinicflow.store.engine import Event

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """An event as a run sees it (`ctx.trigger.event`)."""

    id: EventId
    type: str
    resource_type: str
    resource_id: str
    payload: Mapping[str, object]
    occurred_at: datetime


def record_event(
    session: Session,
    *,
    event_type: str,
    resource_type: str,
    resource_id: str,
    at: datetime,
    payload: Mapping[str, object] | None = None,
) -> None:
    """Record that something happened, in the caller's transaction. `payload` must hold no PHI."""
    session.add(
        Event(
            type=event_type,
            resource_type=resource_type,
            resource_id=resource_id,
            payload=dict(payload or {}),
            occurred_at=at,
        )
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to record; `payload` must hold no PHI."""

    event_type: str
    resource_type: str
    resource_id: str
    at: datetime
    payload: Mapping[str, object]


def record_events(session: Session, events: Sequence[NewEvent]) -> None:
    """Record many events in one statement (a sync batch), in the caller's transaction."""
    if not events:
        return
    session.execute(
        insert(Event),
        [
            {
                "type": e.event_type,
                "resource_type": e.resource_type,
                "resource_id": e.resource_id,
                "payload": dict(e.payload),
                "occurred_at": e.at,
            }
            for e in events
        ],
    )


def _info(row: Event) -> EventInfo:
    return EventInfo(
        id=EventId(row.id),
        type=row.type,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        payload=dict(row.payload or {}),
        occurred_at=row.occurred_at,
    )


def load_event(session: Session, event_id: EventId) -> EventInfo | None:
    """One event, if it exists."""
    row = session.get(Event, event_id)
    return None if row is None else _info(row)


def load_events(session: Session, event_ids: Sequence[EventId]) -> tuple[EventInfo, ...]:
    """Events by id, in the order given (those that no longer exist left out)."""
    rows = {r.id: r for r in session.scalars(select(Event).where(Event.id.in_(event_ids)))}
    return tuple(_info(rows[i]) for i in event_ids if i in rows)


def has_undispatched_events(session: Session) -> bool:
    """Whether any event waits to be dispatched (one lookup in the dispatch index)."""
    stmt = select(Event.id).where(Event.dispatched_at.is_(None)).limit(1)
    return session.scalar(stmt) is not None


def dispatch_events(
    session: Session, *, registry: Registry, now: datetime, limit: int = 200
) -> list[RunId]:
    """Create runs for undispatched events and mark them dispatched; the new run ids."""
    subscribers: dict[str, list[str]] = {}
    coalescing: set[str] = set()
    for automation in registry.automations():
        if isinstance(automation.trigger, EventTrigger):
            for event_type in automation.trigger.types:
                subscribers.setdefault(event_type, []).append(automation.name)
            if automation.trigger.coalesce:
                coalescing.add(automation.name)
    switches = all_switches(session)
    # SKIP LOCKED lets two PostgreSQL dispatchers share the backlog instead of queueing on it.
    stmt = (
        select(Event)
        .where(Event.dispatched_at.is_(None))
        .order_by(Event.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    created: list[RunId] = []
    gathered: dict[str, list[Event]] = {}
    for event in session.scalars(stmt):
        for name in subscribers.get(event.type, []):
            switch = switches.get(name)
            if switch is not None and not switch.enabled:
                continue
            if name in coalescing:
                gathered.setdefault(name, []).append(event)
                continue
            run_id = create_run(
                session,
                automation=name,
                trigger_kind=TriggerKind.EVENT,
                trigger_key=event_trigger_key(event.id),
                scheduled_for=event.occurred_at,
                requested_by=f"event:{event.type}",
                now=now,
                event_id=EventId(event.id),
            )
            if run_id is not None:
                created.append(run_id)
        event.dispatched_at = now
    for name, events in gathered.items():
        # One run for them all, keyed by its first event: each event is in one run only (the
        # events are locked, or on SQLite written, by this dispatch alone).
        run_id = create_run(
            session,
            automation=name,
            trigger_kind=TriggerKind.EVENT,
            trigger_key=event_trigger_key(events[0].id),
            scheduled_for=events[0].occurred_at,
            requested_by=f"event:{events[0].type}"
            + (f" +{len(events) - 1}" if len(events) > 1 else ""),
            now=now,
            event_id=EventId(events[0].id),
            event_ids=[EventId(e.id) for e in events],
        )
        if run_id is not None:
            created.append(run_id)
    if created:
        logger.info("events dispatched", extra={"runs": len(created)})
    return created
