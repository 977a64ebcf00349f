"""Carrying out many effects with one commit per step for the whole batch, not four per effect.

`execute_effect` commits each effect's claim, in-flight mark and done on its own (a few ms each
on SQLite, most of a reminder's cost). `execute_effects` keeps the same protocol and the same
promises, a step at a time for up to `EnginePolicy.batch_size` effects:

1. Claim: one compare-and-set `UPDATE ... WHERE id IN (...) AND <claimable> RETURNING id`; commit.
   Effects another worker holds, or not yet due, are not returned and are left alone. A crash
   here is safe: the reconciler returns expired claims to pending (nothing was sent).
2. In flight: one `UPDATE ... WHERE state = 'claimed' AND lease_owner = <ours> RETURNING id`;
   commit. An effect voided in between is not returned and is not sent.
3. A handler that offers `execute_many` (see `BatchEffectHandler`) gets its effects in chunks of
   `MANY_CHUNK`, one call each; it may hand single effects back to be carried out by `execute`.
   Other handlers are called one by one, each with a fresh session, as in `execute_effect`. A
   handler that wrote through `env.session` has its done marked in that session (its writes
   commit exactly when the effect becomes done, as before). The others wrote nothing of ours to
   commit, so their done marks wait and are written together at the end, in one transaction. A
   crash before that leaves them in flight: the reconciler asks each handler whether it arrived
   (the sandbox and Twilio can tell), so nothing is sent twice and nothing is lost.
Failures (deferred, voided, retryable, failed, outcome unknown) are settled per effect by the
function `execute_effect` uses too (`execution.settle_failures`), for single calls and chunks
alike; deferrals and voids of one chunk share a transaction. When `execute_many` itself
raises, nobody knows which of its effects went out, so each is marked unknown and its handler
asked `reconcile`.

Every effect in flight shares one lease, so a slow provider (a long code sends 1 text/s) must not
outlive it: once half the lease has passed (checked before each call or chunk), the effects not
yet handed to their handler are given back to pending, attempt returned, for the next batch.
Nothing was sent for them, so this is safe.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Row, Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from clinicflow.engine.effects import mark_done, mark_many_done, open_payload
from clinicflow.engine.execution import (
    Execution,
    _fail,
    log_extra,
    settle_failures,
)
from clinicflow.engine.handlers import (
    CALL_EXECUTE,
    BatchEffectHandler,
    Batching,
    EffectCall,
    EffectHandler,
    OutcomeUnknownError,
    can_execute_many,
)
from clinicflow.engine.runtime import EngineRuntime, lease_token
from clinicflow.engine.states import EffectId, EffectState, RunId
from clinicflow.errors import ClinicflowError, EngineError
from clinicflow.store.engine import Effect

logger = logging.getLogger(__name__)

# Effects one `execute_many` call gets: the lease's deadline is checked between chunks.
MANY_CHUNK = 200

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


_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_CLAIMABLE = or_(
    and_(
        _EFFECTS.c.state == EffectState.PENDING,
        or_(_EFFECTS.c.not_before.is_(None), _EFFECTS.c.not_before <= bindparam("now")),
    ),
    and_(_EFFECTS.c.state == EffectState.CLAIMED, _EFFECTS.c.lease_expires_at < bindparam("now")),
)
# Built once: building these per batch cost more than running them.
_CLAIM = (
    update(_EFFECTS)
    .where(_EFFECTS.c.id.in_(_IDS), _CLAIMABLE)
    .values(
        state=EffectState.CLAIMED,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires_at"),
        attempts=_EFFECTS.c.attempts + 1,
        updated_at=bindparam("now"),
    )
    .returning(_EFFECTS.c.id)
)
_IN_FLIGHT = (
    update(_EFFECTS)
    .where(
        _EFFECTS.c.id.in_(_IDS),
        _EFFECTS.c.state == EffectState.CLAIMED,
        _EFFECTS.c.lease_owner == bindparam("owner"),
    )
    .values(
        state=EffectState.IN_FLIGHT,
        lease_expires_at=bindparam("expires_at"),
        updated_at=bindparam("now"),
    )
    .returning(_EFFECTS.c.id)
)
# What a handler's call needs of each effect, without building ORM objects.
_CALLS = select(
    _EFFECTS.c.id,
    _EFFECTS.c.key,
    _EFFECTS.c.kind,
    _EFFECTS.c.automation,
    _EFFECTS.c.run_id,
    _EFFECTS.c.attempts,
    _EFFECTS.c.payload_enc,
).where(_EFFECTS.c.id.in_(_IDS))
_STILL_OURS = select(_EFFECTS.c.id).where(
    _EFFECTS.c.id.in_(_IDS),
    _EFFECTS.c.state == EffectState.DONE,
    _EFFECTS.c.lease_owner == bindparam("owner"),
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
    expires_at = now + timedelta(seconds=lease_s)
    params = {"ids": list(effect_ids), "owner": owner, "now": now, "expires_at": expires_at}
    won = session.connection().execute(_CLAIM, params).scalars()
    return sorted(EffectId(i) for i in won)


def mark_all_in_flight(
    session: Session, effect_ids: Sequence[EffectId], *, owner: str, now: datetime, lease_s: float
) -> list[EffectId]:
    """Say the outside calls are about to happen, for those still claimed by `owner`."""
    expires_at = now + timedelta(seconds=lease_s)
    params = {"ids": list(effect_ids), "owner": owner, "now": now, "expires_at": expires_at}
    moved = session.connection().execute(_IN_FLIGHT, params).scalars()
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
        rows = list(session.connection().execute(_CALLS, {"ids": won})) if won else []
    executions = {i: Execution(i, None) for i in effect_ids}
    ready: dict[EffectId, tuple[EffectHandler, EffectCall]] = {}
    broken: dict[EffectId, ClinicflowError] = {}
    for row in rows:
        try:
            ready[EffectId(row.id)] = (rt.handlers.get(row.kind), _call_of(rt, row))
        except ClinicflowError as exc:  # no handler, or a payload that does not decrypt
            broken[EffectId(row.id)] = exc
    executions.update(_fail_broken(rt, broken, owner))
    if not ready:
        return list(executions.values())

    with rt.db.transaction() as session:
        flying = mark_all_in_flight(
            session, sorted(ready), owner=owner, now=rt.clock.now(), lease_s=lease_s
        )
    sent = _hand_over(rt, flying, ready, owner, executions)
    executions.update(_mark_sent_done(rt, sent, owner))
    return list(executions.values())


def _call_of(rt: EngineRuntime, row: Row[Any]) -> EffectCall:
    """The handler's view of a claimed effect (`execution.effect_call`, from `_CALLS`' row)."""
    return EffectCall(
        effect_id=EffectId(row.id),
        key=row.key,
        kind=row.kind,
        automation=row.automation,
        run_id=RunId(row.run_id),
        attempt=row.attempts,
        payload=open_payload(rt.cipher, row.key, row.payload_enc),
    )


def _fail_broken(
    rt: EngineRuntime, broken: Mapping[EffectId, ClinicflowError], owner: str
) -> Mapping[EffectId, Execution]:
    """Fail the claimed effects that cannot be handed over, as `execute_effect` fails them."""
    if not broken:
        return {}
    with rt.db.transaction() as session:
        rows = session.scalars(select(Effect).where(Effect.id.in_(sorted(broken)))).all()
    return {
        EffectId(row.id): _fail(
            rt, row, owner, broken[EffectId(row.id)], reaches_patient=row.reaches_patient
        )
        for row in rows
    }


def _hand_over(
    rt: EngineRuntime,
    flying: Sequence[EffectId],
    ready: Mapping[EffectId, tuple[EffectHandler, EffectCall]],
    owner: str,
    executions: dict[EffectId, Execution],
) -> list[_Sent]:
    """Call the handlers, a chunk or an effect at a time, until half the lease has passed; settle
    what did not go out into `executions` and return the effects sent but not yet marked done."""
    deadline = rt.clock.monotonic() + rt.policy.effect_lease_s / 2
    steps = deque(_steps(flying, ready))
    sent: list[_Sent] = []
    while steps:
        if rt.clock.monotonic() > deadline:
            executions.update(_give_back_rest(rt, [i for s in steps for i in s.effect_ids], owner))
            break
        step = steps.popleft()
        calls = [ready[i][1] for i in step.effect_ids]
        if step.many is not None:
            outcomes = _call_many(rt, step.many, calls, owner)
        elif len(calls) > 1:
            outcomes = dict(_call_together(rt, step.handler, calls, owner))
        else:
            outcomes = {calls[0].effect_id: _call(rt, step.handler, calls[0], owner)}
        for effect_id, outcome in outcomes.items():
            if outcome is CALL_EXECUTE:  # the handler leaves this one to `execute`, alone
                steps.append(_Step(step.handler, [effect_id], many=None))
            elif isinstance(outcome, _Sent):
                sent.append(outcome)
            else:
                executions[effect_id] = outcome
    return sent


@dataclass(frozen=True, slots=True)
class _Step:
    """Effects handed to their handler in one go: `many` is set for an `execute_many` chunk."""

    handler: EffectHandler
    effect_ids: list[EffectId]
    many: BatchEffectHandler | None


def _steps(
    flying: Sequence[EffectId], ready: Mapping[EffectId, tuple[EffectHandler, EffectCall]]
) -> list[_Step]:
    """Chunks for the handlers that take batches (first), then one step per other effect."""
    groups: dict[int, tuple[BatchEffectHandler, list[EffectId]]] = {}
    alone: list[_Step] = []
    for effect_id in flying:
        handler = ready[effect_id][0]
        if can_execute_many(handler):
            groups.setdefault(id(handler), (handler, []))[1].append(effect_id)
        else:
            alone.append(_Step(handler, [effect_id], many=None))
    chunks = [
        _Step(handler, ids[start : start + MANY_CHUNK], many=handler)
        for handler, ids in groups.values()
        for start in range(0, len(ids), MANY_CHUNK)
    ]
    # Transactional effects of one handler (work items) go in chunks too: one transaction for
    # the chunk (`_call_together`), which falls back to one at a time if any of them fails.
    together: dict[int, tuple[EffectHandler, list[EffectId]]] = {}
    single: list[_Step] = []
    for step in alone:
        if step.handler.transactional:
            together.setdefault(id(step.handler), (step.handler, []))[1].extend(step.effect_ids)
        else:
            single.append(step)
    chunks += [
        _Step(handler, ids[start : start + MANY_CHUNK], many=None)
        for handler, ids in together.values()
        for start in range(0, len(ids), MANY_CHUNK)
    ]
    return chunks + single


def _call(
    rt: EngineRuntime, handler: EffectHandler, call: EffectCall, owner: str
) -> _Sent | Execution:
    """Call one handler; settle anything but a clean return as `execute_effect` does."""
    session = rt.db.sessions()
    try:
        result = handler.execute(call, rt.handler_env(session))
        if not session.in_transaction():
            return _Sent(call.effect_id, dict(result or {}))
        # The handler wrote through our session: those writes commit with its done, now.
        if not mark_done(session, call.effect_id, owner=owner, now=rt.clock.now(), result=result):
            session.rollback()
            logger.warning("effect lease lost before done", extra=log_extra(call))
            return Execution(call.effect_id, None)
        session.commit()
        return Execution(call.effect_id, EffectState.DONE)
    # The per-effect boundary: one bad send must not stop the batch (`settle_failures` logs it).
    except Exception as exc:  # noqa: BLE001 - logged with its traceback by _settle
        session.rollback()
        return settle_failures(rt, handler, owner, [(call, exc)])[call.effect_id]
    finally:
        session.close()


def _call_together(
    rt: EngineRuntime, handler: EffectHandler, calls: Sequence[EffectCall], owner: str
) -> dict[EffectId, _Sent | Execution]:
    """Transactional effects in one transaction, all marked done in one statement and one
    commit: the outcome of `_call` for each effect, at a fraction of the commits. If any of
    them fails (rare: these handlers write rows), nothing of the chunk is kept and each is done
    alone, so the failure is settled exactly as `_call` settles it and the others still go."""
    session = rt.db.sessions()
    succeeded: list[tuple[EffectId, Mapping[str, object] | None]] = []
    try:
        env = rt.handler_env(session)
        for call in calls:
            succeeded.append((call.effect_id, handler.execute(call, env)))
        if not mark_many_done(session, succeeded, owner=owner, now=rt.clock.now()):
            raise _LeaseLostError
        session.commit()
    # Any failure of the chunk sends its effects down the one-by-one path, which settles each.
    except Exception:  # noqa: BLE001
        session.rollback()
        return {c.effect_id: _call(rt, handler, c, owner) for c in calls}
    finally:
        session.close()
    return {effect_id: Execution(effect_id, EffectState.DONE) for effect_id, _ in succeeded}


class _LeaseLostError(Exception):
    """Some effect of a chunk was no longer this worker's to mark done."""


def _call_many(
    rt: EngineRuntime, handler: BatchEffectHandler, calls: Sequence[EffectCall], owner: str
) -> dict[EffectId, _Sent | Execution | Batching]:
    """Hand a chunk to `execute_many`; settle each outcome as `_call` settles a single one."""
    session = rt.db.sessions()
    try:
        outcomes = handler.execute_many(calls, rt.handler_env(session))
        if len(outcomes) != len(calls):
            raise EngineError(
                f"{type(handler).__name__}.execute_many gave {len(outcomes)} outcomes "
                f"for {len(calls)} effects.",
                code="engine.batch_outcomes",
            )
    except Exception:  # the chunk's boundary: we cannot tell which of its effects went out
        logger.exception(
            "effect handler crashed on a batch",
            extra={"effect_ids": [c.effect_id for c in calls], "kind": calls[0].kind},
        )
        outcomes = [OutcomeUnknownError("The batch call failed part-way.") for _ in calls]
    finally:
        session.rollback()  # a batch handler writes nothing of ours (see BatchEffectHandler)
        session.close()
    results: dict[EffectId, _Sent | Execution | Batching] = {}
    failures: list[tuple[EffectCall, BaseException]] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, Batching):
            results[call.effect_id] = outcome
        elif isinstance(outcome, BaseException):
            failures.append((call, outcome))
        else:
            results[call.effect_id] = _Sent(call.effect_id, dict(outcome or {}))
    return {**results, **settle_failures(rt, handler, owner, failures)}


def _mark_sent_done(
    rt: EngineRuntime, sent: Sequence[_Sent], owner: str
) -> Mapping[EffectId, Execution]:
    """Mark every sent effect done in one transaction (an effect whose lease was lost is left)."""
    if not sent:
        return {}
    now = rt.clock.now()
    ids = [s.effect_id for s in sent]
    with rt.db.transaction() as session:
        marked = session.connection().execute(
            _DONE,
            [
                {"effect_id": s.effect_id, "owner": owner, "result": s.result, "now": now}
                for s in sent
            ],
        )
        # Every row matched (the usual case): no need to read back which are ours.
        if session.bind is not None and (
            session.bind.dialect.supports_sane_multi_rowcount and marked.rowcount == len(ids)
        ):
            done = set(ids)
        else:
            done = set(
                session.connection().execute(_STILL_OURS, {"ids": ids, "owner": owner}).scalars()
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
