"""Carrying out one effect so that a SIGKILL at any instant loses nothing and repeats nothing.

This is the one place in the engine whose function commits step by step; see `execute_effect`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from clinicflow.engine.effects import (
    claim_effect,
    decrypt_payload,
    defer,
    mark_done,
    mark_failed,
    mark_for_retry,
    mark_in_flight,
    mark_unknown,
    mark_voided,
)
from clinicflow.engine.handlers import (
    DeferredError,
    EffectCall,
    EffectHandler,
    OutcomeUnknownError,
    VoidedError,
)
from clinicflow.engine.review import open_effect_review
from clinicflow.engine.rules import Resolution, may_retry, resolve_ambiguous, retry_delay_s
from clinicflow.engine.runtime import EngineRuntime, lease_token
from clinicflow.engine.states import Delivery, EffectId, EffectState, RunId
from clinicflow.errors import ClinicflowError
from clinicflow.store.engine import Effect

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Execution:
    """What one attempt did. `state` None: another worker holds the effect, or it is not due."""

    effect_id: EffectId
    state: EffectState | None
    retry_at: datetime | None = None


def effect_call(rt: EngineRuntime, row: Effect) -> EffectCall:
    """The handler's view of an effect row (payload decrypted)."""
    return EffectCall(
        effect_id=EffectId(row.id),
        key=row.key,
        kind=row.kind,
        automation=row.automation,
        run_id=RunId(row.run_id),
        attempt=row.attempts,
        payload=decrypt_payload(rt.cipher, row),
    )


def execute_effect(rt: EngineRuntime, effect_id: EffectId) -> Execution:
    """Carry out one effect, committing after each step.

    1. Claim: compare-and-set pending (or an expired claim) → `claimed` with a lease; commit.
       Losing the race means another worker has it, and we stop. A crash here is safe: the
       reconciler returns an expired claim to pending, since nothing was sent.
    2. In flight: `claimed` → `in_flight` with a fresh lease; commit. From here a crash is
       ambiguous and only `reconcile` (never a blind retry) decides what happened.
    3. Call the handler, then mark `done` with its result in one transaction, so a transactional
       handler's own writes commit exactly when the effect becomes done.
    A `ClinicflowError` means it did not happen: retry with backoff if retryable and attempts
    remain, else `failed` (with a work item if a patient was concerned). Anything else is treated
    as "outcome unknown" and settled like a crash.
    """
    owner = lease_token()
    lease_s = rt.policy.effect_lease_s
    with rt.db.transaction() as session:
        if not claim_effect(session, effect_id, owner=owner, now=rt.clock.now(), lease_s=lease_s):
            return Execution(effect_id, None)
        row = session.get_one(Effect, effect_id, populate_existing=True)
    prepared = _prepare(rt, row)
    if isinstance(prepared, ClinicflowError):  # no handler, or a payload that does not decrypt
        return _fail(rt, row, owner, prepared, reaches_patient=row.reaches_patient)
    handler, call = prepared

    with rt.db.transaction() as session:
        if not mark_in_flight(session, effect_id, owner=owner, now=rt.clock.now(), lease_s=lease_s):
            return Execution(effect_id, None)

    return _call_and_finish(rt, handler, call, owner)


def _prepare(rt: EngineRuntime, row: Effect) -> tuple[EffectHandler, EffectCall] | ClinicflowError:
    try:
        return rt.handlers.get(row.kind), effect_call(rt, row)
    except ClinicflowError as exc:
        return exc


def _call_and_finish(
    rt: EngineRuntime, handler: EffectHandler, call: EffectCall, owner: str
) -> Execution:
    session = rt.db.sessions()
    try:
        result = handler.execute(call, rt.handler_env(session))
        if not mark_done(session, call.effect_id, owner=owner, now=rt.clock.now(), result=result):
            session.rollback()
            logger.warning("effect lease lost before done", extra=log_extra(call))
            return Execution(call.effect_id, None)
        session.commit()
        return Execution(call.effect_id, EffectState.DONE)
    except Exception as exc:  # noqa: BLE001 - settled (and logged with its traceback) below
        session.rollback()
        return settle_failures(rt, handler, owner, [(call, exc)])[call.effect_id]
    finally:
        session.close()


def settle_failures(
    rt: EngineRuntime,
    handler: EffectHandler,
    owner: str,
    failures: Sequence[tuple[EffectCall, BaseException]],
) -> dict[EffectId, Execution]:
    """Settle handler calls that did not return, for `execute_effect` and batches alike:
    deferred and voided ones in one transaction, a ClinicflowError by the retry policy, anything
    else as outcome unknown (then `reconcile` is asked whether it went out)."""
    settled: dict[EffectId, Execution] = {}
    held = [(c, e) for c, e in failures if isinstance(e, DeferredError | VoidedError)]
    if held:
        with rt.db.transaction() as tx:
            for call, why in held:
                settled[call.effect_id] = _hold(tx, call, why, owner, rt.clock.now())
    unknown: list[EffectId] = []
    for call, exc in failures:
        if isinstance(exc, DeferredError | VoidedError):
            continue
        if isinstance(exc, OutcomeUnknownError):
            logger.warning("effect outcome unknown", extra=log_extra(call))
        elif isinstance(exc, ClinicflowError):
            settled[call.effect_id] = _after_error(rt, call, handler, owner, exc)
            continue
        else:
            logger.error("effect handler crashed", exc_info=exc, extra=log_extra(call))
        unknown.append(call.effect_id)
    if unknown:
        with rt.db.transaction() as tx:
            for effect_id in unknown:
                mark_unknown(tx, effect_id, owner=owner, now=rt.clock.now())
        settled.update((i, settle_unknown(rt, i)) for i in unknown)
    return settled


def _hold(
    tx: Session,
    call: EffectCall,
    exc: DeferredError | VoidedError,
    owner: str,
    now: datetime,
) -> Execution:
    if isinstance(exc, DeferredError):
        defer(tx, call.effect_id, owner=owner, now=now, until=exc.until, reason=exc.message)
        logger.info("effect deferred", extra={**log_extra(call), "until": exc.until.isoformat()})
        return Execution(call.effect_id, EffectState.PENDING, exc.until)
    mark_voided(tx, call.effect_id, owner=owner, now=now, reason=exc.message)
    logger.info("effect voided by its handler", extra={**log_extra(call), "why": exc.message})
    return Execution(call.effect_id, EffectState.VOIDED)


def log_extra(call: EffectCall) -> dict[str, object]:
    """The ids a log line about this effect carries."""
    return {"effect_id": call.effect_id, "run_id": call.run_id, "kind": call.kind}


def _after_error(
    rt: EngineRuntime, call: EffectCall, handler: EffectHandler, owner: str, exc: ClinicflowError
) -> Execution:
    extra = {"effect_id": call.effect_id, "code": exc.code, "attempt": call.attempt}
    if may_retry(retryable=exc.retryable, attempt=call.attempt, policy=rt.policy.retry):
        now = rt.clock.now()
        retry_at = now + timedelta(seconds=retry_delay_s(call.attempt, rt.policy.retry))
        with rt.db.transaction() as session:
            mark_for_retry(
                session,
                call.effect_id,
                owner=owner,
                now=now,
                not_before=retry_at,
                error_code=exc.code,
                error_message=exc.message,
            )
        logger.info("effect will be retried", extra=extra)
        return Execution(call.effect_id, EffectState.PENDING, retry_at)
    with rt.db.transaction() as session:
        row = session.get_one(Effect, call.effect_id, populate_existing=True)
    return _fail(rt, row, owner, exc, reaches_patient=handler.reaches_patient)


def _fail(
    rt: EngineRuntime, row: Effect, owner: str, exc: ClinicflowError, *, reaches_patient: bool
) -> Execution:
    now = rt.clock.now()
    effect_id = EffectId(row.id)
    logger.warning("effect failed", extra={"effect_id": effect_id, "code": exc.code})
    with rt.db.transaction() as session:
        if not mark_failed(
            session, effect_id, owner=owner, now=now, error_code=exc.code, error_message=exc.message
        ):
            return Execution(effect_id, None)
        if reaches_patient:
            open_effect_review(
                session, rt, row, now=now, why=f"It failed: {exc.message}", urgent=False
            )
    return Execution(effect_id, EffectState.FAILED)


UNKNOWN_WHY = (
    "We cannot tell whether it reached the patient, so it will not be sent again on its own. "
    "Check with the patient or the provider's log, then mark it delivered or not delivered."
)


def _ask_handler(rt: EngineRuntime, row: Effect) -> tuple[bool, Delivery]:
    try:
        handler = rt.handlers.get(row.kind)
        call = effect_call(rt, row)
    except ClinicflowError:
        return False, Delivery.UNKNOWN
    if handler.transactional:
        return True, Delivery.NOT_DELIVERED
    session = rt.db.sessions()
    try:
        return False, handler.reconcile(call, rt.handler_env(session))
    except Exception:
        logger.exception("effect reconcile failed", extra={"effect_id": row.id})
        return False, Delivery.UNKNOWN
    finally:
        session.close()


def settle_unknown(rt: EngineRuntime, effect_id: EffectId) -> Execution:
    """Decide an `unknown` effect: done if it arrived, pending if it provably did not, else a
    work item for a person (and it stays `unknown`)."""
    with rt.db.transaction() as session:
        row = session.get(Effect, effect_id, populate_existing=True)
    if row is None or row.state != EffectState.UNKNOWN or row.work_item_id is not None:
        return Execution(effect_id, None)
    transactional, answer = _ask_handler(rt, row)
    resolution = resolve_ambiguous(transactional=transactional, answer=answer)
    now = rt.clock.now()
    extra = {"effect_id": effect_id, "resolution": resolution.value}
    logger.info("unknown effect settled", extra=extra)
    with rt.db.transaction() as session:
        if resolution is Resolution.DONE:
            done = mark_done(session, effect_id, owner=None, now=now, result={"reconciled": True})
            return Execution(effect_id, EffectState.DONE if done else None)
        if resolution is Resolution.RETRY and row.attempts < rt.policy.retry.max_attempts:
            retried = mark_for_retry(session, effect_id, owner=None, now=now, not_before=now)
            return Execution(effect_id, EffectState.PENDING if retried else None, now)
        if resolution is Resolution.RETRY:
            message = f"Gave up after {row.attempts} attempts that did not complete."
            mark_failed(
                session,
                effect_id,
                owner=None,
                now=now,
                error_code="effect.gave_up",
                error_message=message,
            )
            if row.reaches_patient:
                open_effect_review(session, rt, row, now=now, why=message, urgent=False)
            return Execution(effect_id, EffectState.FAILED)
        open_effect_review(session, rt, row, now=now, why=UNKNOWN_WHY, urgent=row.reaches_patient)
        return Execution(effect_id, EffectState.UNKNOWN)
