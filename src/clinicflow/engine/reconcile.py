"""The reconciler: finds what dead workers left behind and puts it back on track.

- `claimed` with an expired lease: nothing was sent, so back to pending and enqueued again.
- `in_flight` with an expired lease: ambiguous, so `unknown`, then settled by asking the handler
  (`execution.settle_unknown`): delivered → done, provably not → pending, can't tell → a person.
- pending effects and queued runs nobody enqueued for a while (their huey task died with a
  worker, which huey never redelivers): enqueued again. The claim decides who runs them, so an
  extra enqueue is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from clinicflow.engine.effects import (
    compare_and_set,
    mark_done,
    mark_for_retry,
    mark_unknown,
)
from clinicflow.engine.execution import settle_unknown
from clinicflow.engine.runs import stale_run_ids, stale_runs
from clinicflow.engine.runtime import EngineRuntime
from clinicflow.engine.states import EffectId, EffectState, RunId
from clinicflow.engine.upsert import mark_enqueued
from clinicflow.store.engine import Effect

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What one pass found: work to enqueue again, and how unknown effects were settled."""

    effects: list[EffectId] = field(default_factory=list)
    runs: list[RunId] = field(default_factory=list)
    settled: dict[str, int] = field(default_factory=dict)


def release_expired_claims(session: Session, *, now: datetime, limit: int) -> list[EffectId]:
    """Expired `claimed` effects back to pending: nothing was sent, so this is safe."""
    ids = session.scalars(
        select(Effect.id)
        .where(Effect.state == EffectState.CLAIMED, Effect.lease_expires_at < now)
        .limit(limit)
    ).all()
    expired = and_(Effect.state == EffectState.CLAIMED, Effect.lease_expires_at < now)
    return [
        EffectId(i)
        for i in ids
        if compare_and_set(
            session,
            EffectId(i),
            expired,
            state=EffectState.PENDING,
            lease_owner=None,
            lease_expires_at=None,
            enqueued_at=now,
            updated_at=now,
        )
    ]


def ids_in_state(
    session: Session, state: EffectState, *, expired_before: datetime | None, limit: int
) -> list[EffectId]:
    """Ids of effects in `state`, oldest first (leases expired before the instant, if given)."""
    stmt = select(Effect.id).where(Effect.state == state)
    if expired_before is not None:
        stmt = stmt.where(Effect.lease_expires_at < expired_before)
    if state == EffectState.UNKNOWN:
        stmt = stmt.where(Effect.work_item_id.is_(None))  # those with one wait for a person
    return [EffectId(i) for i in session.scalars(stmt.order_by(Effect.id).limit(limit))]


def stale_pending(
    session: Session, *, now: datetime, older_than: datetime, limit: int
) -> list[EffectId]:
    """Due pending effects nobody enqueued since `older_than` (their task may have been lost),
    marked enqueued now."""
    ids = stale_pending_ids(session, now=now, older_than=older_than, limit=limit)
    mark_enqueued(session, Effect, ids, now)
    return ids


def stale_pending_ids(
    session: Session, *, now: datetime, older_than: datetime, limit: int
) -> list[EffectId]:
    """Due pending effects nobody enqueued since `older_than`."""
    stmt = (
        select(Effect.id)
        .where(
            Effect.state == EffectState.PENDING,
            or_(Effect.not_before.is_(None), Effect.not_before <= now),
            or_(Effect.enqueued_at.is_(None), Effect.enqueued_at < older_than),
        )
        .order_by(Effect.id)
        .limit(limit)
    )
    return [EffectId(i) for i in session.scalars(stmt)]


@dataclass(frozen=True, slots=True)
class _Found:
    """What each of the reconciler's steps has to do, seen in one read snapshot."""

    expired_claims: bool
    expired_in_flight: bool
    unknown: list[EffectId]
    stale: bool


def _look(session: Session, *, now: datetime, older_than: datetime, limit: int) -> _Found:
    # Reads only: on SQLite a read snapshot takes no write lock, so the reconciler of an idle
    # worker (every tick, every few seconds) neither waits for a writer nor holds one up. A step
    # that finds its work here does it in its own write transaction, where it looks again.
    return _Found(
        expired_claims=bool(
            ids_in_state(session, EffectState.CLAIMED, expired_before=now, limit=1)
        ),
        expired_in_flight=bool(
            ids_in_state(session, EffectState.IN_FLIGHT, expired_before=now, limit=1)
        ),
        unknown=ids_in_state(session, EffectState.UNKNOWN, expired_before=None, limit=limit),
        stale=bool(
            stale_pending_ids(session, now=now, older_than=older_than, limit=1)
            or stale_run_ids(session, now=now, older_than=older_than, limit=1)
        ),
    )


def reconcile(rt: EngineRuntime, *, now: datetime | None = None) -> ReconcileReport:
    """One pass over the ledgers (each step in its own transaction, so any crash is resumable)."""
    now = now or rt.clock.now()
    limit = rt.policy.batch_size
    report = ReconcileReport()
    older_than = now - timedelta(seconds=rt.policy.requeue_after_s)
    with rt.db.read() as session:
        found = _look(session, now=now, older_than=older_than, limit=limit)
    if found.expired_claims:
        with rt.db.transaction() as session:
            report.effects += release_expired_claims(session, now=now, limit=limit)
    unknown = found.unknown
    if found.expired_in_flight:
        with rt.db.transaction() as session:
            for effect_id in ids_in_state(
                session, EffectState.IN_FLIGHT, expired_before=now, limit=limit
            ):
                mark_unknown(session, effect_id, owner=None, now=now)
            # Those just marked unknown are settled in this pass too.
            unknown = ids_in_state(session, EffectState.UNKNOWN, expired_before=None, limit=limit)
    for effect_id in unknown:
        try:
            settled = settle_unknown(rt, effect_id)
        except Exception:
            logger.exception("could not settle an unknown effect", extra={"effect_id": effect_id})
            continue
        if settled.state is not None:
            report.settled[settled.state.value] = report.settled.get(settled.state.value, 0) + 1
        if settled.state is EffectState.PENDING:
            report.effects.append(effect_id)
    if found.stale:
        with rt.db.transaction() as session:
            report.effects += stale_pending(session, now=now, older_than=older_than, limit=limit)
            report.runs += stale_runs(session, now=now, older_than=older_than, limit=limit)
    if report.effects or report.runs or report.settled:
        logger.info(
            "reconciler found work",
            extra={
                "effects": len(report.effects),
                "runs": len(report.runs),
                "settled": report.settled,
            },
        )
    return report


def settle_by_person(
    session: Session, effect_id: EffectId, *, delivered: bool, now: datetime
) -> bool:
    """A person's answer for an `unknown` effect: delivered → done, not delivered → pending.

    The caller enqueues the effect again after committing when it was not delivered.
    """
    if delivered:
        return mark_done(session, effect_id, owner=None, now=now, result={"settled_by": "person"})
    return mark_for_retry(session, effect_id, owner=None, now=now, not_before=now)
