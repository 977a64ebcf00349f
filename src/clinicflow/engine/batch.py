"""Carrying out many effects with one commit per step for the whole batch, not four per effect.

`execute_effect` commits each effect's claim, in-flight mark and done on its own (a few ms each
on SQLite, most of a reminder's cost). `execute_effects` keeps the same protocol and the same
promises, a step at a time for up to `EnginePolicy.batch_size` effects:

1. Claim: one compare-and-set `UPDATE ... WHERE id IN (...) AND <claimable> RETURNING id`; commit.
   Effects another worker holds, or not yet due, are not returned and are left alone. A crash
   here is safe: the reconciler returns expired claims to pending (nothing was sent).
2. In flight: one `UPDATE ... WHERE state = 'claimed' AND lease_owner = <ours> RETURNING id`;
   commit. An effect voided in between is not returned and is not sent.
3. Handlers are called one by one, each with a fresh session, as in `execute_effect`. A handler
   that wrote through `env.session` has its done marked in that session (its writes commit
   exactly when the effect becomes done, as before). The others wrote nothing of ours to commit,
   so their done marks wait and are written together at the end, in one transaction. A crash
   before that leaves them in flight: the reconciler asks each handler whether it arrived
   (the sandbox and Twilio can tell), so nothing is sent twice and nothing is lost.
Failures (deferred, voided, retryable, failed, outcome unknown) are settled one effect at a
time, exactly as `execute_effect` settles them.

Every effect in flight shares one lease, so a slow provider (a long code sends 1 text/s) must not
outlive it: once half the lease has passed, the effects not yet handed to their handler are given
back to pending, attempt returned, for the next batch. Nothing was sent for them, so this is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from clinicflow.engine.effects import defer, mark_done, mark_unknown, mark_voided
from clinicflow.engine.execution import (
    Execution,
    _after_error,  # one copy of the retry-or-fail policy for single and batched effects
    _fail,
    effect_call,
    settle_unknown,
)
from clinicflow.engine.handlers import (
    DeferredError,
    EffectCall,
    EffectHandler,
    OutcomeUnknownError,
    VoidedError,
)
from clinicflow.engine.runtime import EngineRuntime, lease_token
from clinicflow.engine.states import EffectId, EffectState
from clinicflow.errors import ClinicflowError
from clinicflow.store.engine import Effect

logger = logging.getLogger(__name__)

# Declarative models expose `__table__` as a FromClause; this one is a Table (Core executemany).
_EFFECTS: Table = Effect.__table__  # type: ignore[assignment]
# Marks one effect done, if it is still ours; run once per effect in a single executemany.
_DONE = (
    update(_EFFECTS)
    .where(
        _EFFECTS.c.id == bindparam("effect_id"),
        # Not IN (...): an expanding list cannot go through executemany.
        or_(_EFFECTS.c.state == EffectState.IN_FLIGHT, _EFFECTS.c.state == EffectState.UNKNOWN),
        _EFFECTS.c.lease_owner == bindparam("owner"),
    )
    .values(
        state=EffectState.DONE,
        result=bindparam("result"),
        finished_at=bindparam("now"),
        updated_at=bindparam("now"),
        lease_expires_at=None,
    )
)


@dataclass(frozen=True, slots=True)
class _Sent:
    """An effect whose handler returned and wrote nothing through our session."""

    effect_id: EffectId
    result: dict[str, object]


def execute_effects(rt: EngineRuntime, effect_ids: Sequence[EffectId]) -> list[Execution]:
    """Carry out these effects in batches; one Execution per id, as `execute_effect` would give.

    State None: another worker holds the effect, it is not due, or its lease was lost.
    """
    executions: list[Execution] = []
    for chunk in _chunks(list(dict.fromkeys(effect_ids)), rt.policy.batch_size):
        executions += _execute_batch(rt, chunk)
    return executions


def _chunks(ids: list[EffectId], size: int) -> Iterator[list[EffectId]]:
    for start in range(0, len(ids), max(size, 1)):
        yield ids[start : start + max(size, 1)]


def claim_effects(
    session: Session, effect_ids: Sequence[EffectId], *, owner: str, now: datetime, lease_s: float
) -> list[EffectId]:
    """Take the lease on those of these effects that are due and free; the ids this caller won."""
    claimable = or_(
        and_(
            Effect.state == EffectState.PENDING,
            or_(Effect.not_before.is_(None), Effect.not_before <= now),
        ),
        and_(Effect.state == EffectState.CLAIMED, Effect.lease_expires_at < now),
    )
    stmt = (
        update(Effect)
        .where(Effect.id.in_(effect_ids), claimable)
        .values(
            state=EffectState.CLAIMED,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=Effect.attempts + 1,
            updated_at=now,
        )
        .returning(Effect.id)
    )
    won = session.execute(stmt, execution_options={"synchronize_session": False}).scalars()
    return sorted(EffectId(i) for i in won)


def mark_all_in_flight(
    session: Session, effect_ids: Sequence[EffectId], *, owner: str, now: datetime, lease_s: float
) -> list[EffectId]:
    """Say the outside calls are about to happen, for those still claimed by `owner`."""
    stmt = (
        update(Effect)
        .where(
            Effect.id.in_(effect_ids),
            Effect.state == EffectState.CLAIMED,
            Effect.lease_owner == owner,
        )
        .values(
            state=EffectState.IN_FLIGHT,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
        .returning(Effect.id)
    )
    moved = session.execute(stmt, execution_options={"synchronize_session": False}).scalars()
    return sorted(EffectId(i) for i in moved)


def give_back(
    session: Session, effect_ids: Sequence[EffectId], *, owner: str, now: datetime
) -> list[EffectId]:
    """Return in-flight effects whose handler was never called to pending, attempt returned."""
    stmt = (
        update(Effect)
        .where(
            Effect.id.in_(effect_ids),
            Effect.state == EffectState.IN_FLIGHT,
            Effect.lease_owner == owner,
        )
        .values(
            state=EffectState.PENDING,
            not_before=None,
            lease_owner=None,
            lease_expires_at=None,
            enqueued_at=now,
            attempts=Effect.attempts - 1,
            updated_at=now,
        )
        .returning(Effect.id)
    )
    returned = session.execute(stmt, execution_options={"synchronize_session": False}).scalars()
    return sorted(EffectId(i) for i in returned)


def _execute_batch(rt: EngineRuntime, effect_ids: list[EffectId]) -> list[Execution]:
    owner = lease_token()
    lease_s = rt.policy.effect_lease_s
    with rt.db.transaction() as session:
        won = claim_effects(session, effect_ids, owner=owner, now=rt.clock.now(), lease_s=lease_s)
        rows = {
            EffectId(row.id): row
            for row in session.scalars(
                select(Effect).where(Effect.id.in_(won)).execution_options(populate_existing=True)
            )
        }
    executions = {i: Execution(i, None) for i in effect_ids}
    ready: dict[EffectId, tuple[EffectHandler, EffectCall]] = {}
    for effect_id in won:
        row = rows[effect_id]
        try:
            ready[effect_id] = (rt.handlers.get(row.kind), effect_call(rt, row))
        except ClinicflowError as exc:  # no handler, or a payload that does not decrypt
            executions[effect_id] = _fail(rt, row, owner, exc, reaches_patient=row.reaches_patient)
    if not ready:
        return list(executions.values())

    with rt.db.transaction() as session:
        flying = mark_all_in_flight(
            session, list(ready), owner=owner, now=rt.clock.now(), lease_s=lease_s
        )
    deadline = rt.clock.monotonic() + lease_s / 2
    sent: list[_Sent] = []
    for n, effect_id in enumerate(flying):
        if rt.clock.monotonic() > deadline:
            executions.update(_give_back_rest(rt, flying[n:], owner))
            break
        handler, call = ready[effect_id]
        outcome = _call(rt, handler, call, owner)
        if isinstance(outcome, _Sent):
            sent.append(outcome)
        else:
            executions[effect_id] = outcome
    executions.update(_mark_sent_done(rt, sent, owner))
    return list(executions.values())


def _call(
    rt: EngineRuntime, handler: EffectHandler, call: EffectCall, owner: str
) -> _Sent | Execution:
    """Call one handler; settle anything but a clean return as `execute_effect` does."""
    extra = {"effect_id": call.effect_id, "run_id": call.run_id, "kind": call.kind}
    session = rt.db.sessions()
    try:
        result = handler.execute(call, rt.handler_env(session))
        if not session.in_transaction():
            return _Sent(call.effect_id, dict(result or {}))
        # The handler wrote through our session: those writes commit with its done, now.
        if not mark_done(session, call.effect_id, owner=owner, now=rt.clock.now(), result=result):
            session.rollback()
            logger.warning("effect lease lost before done", extra=extra)
            return Execution(call.effect_id, None)
        session.commit()
        return Execution(call.effect_id, EffectState.DONE)
    except DeferredError as exc:
        session.rollback()
        with rt.db.transaction() as tx:
            defer(
                tx,
                call.effect_id,
                owner=owner,
                now=rt.clock.now(),
                until=exc.until,
                reason=exc.message,
            )
        return Execution(call.effect_id, EffectState.PENDING, exc.until)
    except VoidedError as exc:
        session.rollback()
        with rt.db.transaction() as tx:
            mark_voided(tx, call.effect_id, owner=owner, now=rt.clock.now(), reason=exc.message)
        return Execution(call.effect_id, EffectState.VOIDED)
    except OutcomeUnknownError:
        session.rollback()
        logger.warning("effect outcome unknown", extra=extra)
    except ClinicflowError as exc:
        session.rollback()
        return _after_error(rt, call, handler, owner, exc)
    except Exception:  # the per-effect boundary: one bad send must not stop the batch
        session.rollback()
        logger.exception("effect handler crashed", extra=extra)
    finally:
        session.close()
    with rt.db.transaction() as tx:
        mark_unknown(tx, call.effect_id, owner=owner, now=rt.clock.now())
    return settle_unknown(rt, call.effect_id)


def _mark_sent_done(
    rt: EngineRuntime, sent: Sequence[_Sent], owner: str
) -> Mapping[EffectId, Execution]:
    """Mark every sent effect done in one transaction (an effect whose lease was lost is left)."""
    if not sent:
        return {}
    now = rt.clock.now()
    ids = [s.effect_id for s in sent]
    with rt.db.transaction() as session:
        session.connection().execute(
            _DONE,
            [
                {"effect_id": s.effect_id, "owner": owner, "result": s.result, "now": now}
                for s in sent
            ],
        )
        done = set(
            session.scalars(
                select(Effect.id).where(
                    Effect.id.in_(ids),
                    Effect.state == EffectState.DONE,
                    Effect.lease_owner == owner,
                )
            )
        )
    lost = [i for i in ids if i not in done]
    if lost:
        logger.warning("effect lease lost before done", extra={"effect_ids": lost})
    return {i: Execution(i, EffectState.DONE if i in done else None) for i in ids}


def _give_back_rest(
    rt: EngineRuntime, effect_ids: Sequence[EffectId], owner: str
) -> Mapping[EffectId, Execution]:
    now = rt.clock.now()
    with rt.db.transaction() as session:
        returned = set(give_back(session, effect_ids, owner=owner, now=now))
    logger.info("batch ran out of lease", extra={"returned": len(returned)})
    return {
        i: Execution(i, EffectState.PENDING if i in returned else None, now) for i in effect_ids
    }
