"""The effect ledger: record effects with their idempotency keys and move them between states.

Every state change is a compare-and-set UPDATE whose WHERE clause names the state (and, for a
worker, its lease token) it expects; the row count says whether this caller won. These functions
never commit: `clinicflow.engine.execution` strings them together, one commit per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from clinicflow.engine.states import EffectId, EffectState, RunId
from clinicflow.engine.upsert import NO_SYNC, insert_ignoring_many
from clinicflow.engine.upsert import compare_and_set as cas_row
from clinicflow.security.phi import PhiCipher
from clinicflow.store.engine import Effect, effect_payload_aad


@dataclass(frozen=True, slots=True)
class RecordedEffect:
    """What recording an effect did; `created` is False when the key was already recorded."""

    id: EffectId
    key: str
    kind: str
    state: EffectState
    created: bool


# As json.dumps(sort_keys=True, default=str) wrote payloads before: instants and dataclasses
# through str(), keys sorted, non-string keys as strings; orjson writes a run's thousands of
# them several times faster.
_PAYLOAD_JSON = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def dry_run_key(run_id: RunId, key: str) -> str:
    """The key a dry run records an effect under (apart from the live key space)."""
    return f"dry-run:{run_id}:{key}"[:300]


def decrypt_payload(cipher: PhiCipher, effect: Effect) -> dict[str, object]:
    """The effect's payload in clear."""
    return open_payload(cipher, effect.key, effect.payload_enc)


def open_payload(cipher: PhiCipher, key: str, payload_enc: bytes) -> dict[str, object]:
    """A payload in clear from its stored columns (for readers that load no ORM row)."""
    data: dict[str, object] = orjson.loads(cipher.decrypt(payload_enc, effect_payload_aad(key)))
    return data


@dataclass(frozen=True, slots=True)
class NewEffect:
    """An effect to record: its kind, idempotency key, payload and what it is about."""

    kind: str
    key: str
    payload: Mapping[str, object]
    summary: str
    reaches_patient: bool
    focus: str | None = None


def record_effect(
    session: Session,
    cipher: PhiCipher,
    *,
    run_id: RunId,
    automation: str,
    kind: str,
    key: str,
    payload: Mapping[str, object],
    summary: str,
    reaches_patient: bool,
    dry_run: bool,
    now: datetime,
    focus: str | None = None,
) -> RecordedEffect:
    """Record an effect as pending unless its key exists; then nothing changes.

    `focus` names what the effect acts on ("Appointment/123"), so `void_pending` can stop it.

    In a dry run the effect is recorded as `dry_run` under a key of the run's own, so a rehearsal
    never takes the live key: once the automation goes live, the same effects happen for real.
    """
    new = NewEffect(kind, key, payload, summary, reaches_patient, focus)
    return record_effects(
        session, cipher, [new], run_id=run_id, automation=automation, dry_run=dry_run, now=now
    )[0]


def record_effects(
    session: Session,
    cipher: PhiCipher,
    effects: Sequence[NewEffect],
    *,
    run_id: RunId,
    automation: str,
    dry_run: bool,
    now: datetime,
) -> list[RecordedEffect]:
    """Record many effects as `record_effect` records one, in a few multi-row statements; one
    RecordedEffect per item, in order (a key given twice is recorded once)."""
    state = EffectState.DRY_RUN if dry_run else EffectState.PENDING
    rows: dict[str, dict[str, Any]] = {}
    for effect in effects:
        key = dry_run_key(run_id, effect.key) if dry_run else effect.key
        if key in rows:
            continue
        body = orjson.dumps(dict(effect.payload), default=str, option=_PAYLOAD_JSON)
        rows[key] = {
            "key": key,
            "kind": effect.kind,
            "run_id": run_id,
            "automation": automation,
            "reaches_patient": effect.reaches_patient,
            "state": state.value,
            "summary": effect.summary[:300],
            "payload_enc": cipher.encrypt(body, effect_payload_aad(key)),
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "enqueued_at": now,
            "focus": effect.focus,
        }
    ordered = [rows[k] for k in sorted(rows)]  # one lock order for racing runs (PostgreSQL)
    created = {
        key: (EffectId(effect_id), state)
        for effect_id, key in insert_ignoring_many(session, Effect, ordered, ["key"], ["id", "key"])
    }
    existing: dict[str, tuple[EffectId, EffectState]] = {}
    missing = sorted(set(rows) - set(created))
    for start in range(0, len(missing), 500):
        for found in session.execute(
            select(Effect.id, Effect.key, Effect.state).where(
                Effect.key.in_(missing[start : start + 500])
            )
        ):
            existing[found.key] = (EffectId(found.id), EffectState(found.state))
    recorded = []
    for effect in effects:
        key = dry_run_key(run_id, effect.key) if dry_run else effect.key
        was_new = key in created
        effect_id, effect_state = created[key] if was_new else existing[key]
        recorded.append(RecordedEffect(effect_id, key, effect.kind, effect_state, was_new))
    return recorded


def compare_and_set(session: Session, effect_id: EffectId, condition: Any, **values: Any) -> bool:
    """UPDATE the effect only if `condition` holds; True if this caller changed it."""
    return cas_row(session, Effect, effect_id, condition, **values)


def claim_effect(
    session: Session, effect_id: EffectId, *, owner: str, now: datetime, lease_s: float
) -> bool:
    """Take the lease on a due pending effect, or on one whose claim expired; True if won."""
    claimable = or_(
        and_(
            Effect.state == EffectState.PENDING,
            or_(Effect.not_before.is_(None), Effect.not_before <= now),
        ),
        and_(Effect.state == EffectState.CLAIMED, Effect.lease_expires_at < now),
    )
    return compare_and_set(
        session,
        effect_id,
        claimable,
        state=EffectState.CLAIMED,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=lease_s),
        attempts=Effect.attempts + 1,
        updated_at=now,
    )


def mark_in_flight(
    session: Session, effect_id: EffectId, *, owner: str, now: datetime, lease_s: float
) -> bool:
    """Say the outside call is about to happen (from here a crash is ambiguous)."""
    mine = and_(Effect.state == EffectState.CLAIMED, Effect.lease_owner == owner)
    return compare_and_set(
        session,
        effect_id,
        mine,
        state=EffectState.IN_FLIGHT,
        lease_expires_at=now + timedelta(seconds=lease_s),
        updated_at=now,
    )


def mark_done(
    session: Session,
    effect_id: EffectId,
    *,
    owner: str | None,
    now: datetime,
    result: Mapping[str, object] | None,
) -> bool:
    """Record success; a worker passes its lease token, the reconciler None (from unknown)."""
    if owner is None:
        expected = Effect.state == EffectState.UNKNOWN
    else:
        # The reconciler may have marked a slow call unknown; its own worker still knows it worked.
        expected = and_(
            Effect.state.in_([EffectState.IN_FLIGHT, EffectState.UNKNOWN]),
            Effect.lease_owner == owner,
        )
    return compare_and_set(
        session,
        effect_id,
        expected,
        state=EffectState.DONE,
        result=dict(result or {}),
        finished_at=now,
        updated_at=now,
        lease_expires_at=None,
    )


def mark_many_done(
    session: Session,
    done: Sequence[tuple[EffectId, Mapping[str, object] | None]],
    *,
    owner: str,
    now: datetime,
) -> bool:
    """`mark_done` for many effects of one worker in one statement; True only if every one
    was still this worker's to mark (else the caller rolls back and marks them one by one)."""
    if not done:
        return True
    table = Effect.__table__
    stmt = (
        update(table)  # type: ignore[arg-type]  # a Table, typed as FromClause
        .where(
            table.c.id == bindparam("effect_id"),
            # Not IN (...): an expanding list cannot be used in an executemany.
            or_(table.c.state == EffectState.IN_FLIGHT, table.c.state == EffectState.UNKNOWN),
            table.c.lease_owner == owner,
        )
        .values(
            state=EffectState.DONE,
            result=bindparam("done_result", type_=table.c.result.type),
            finished_at=now,
            updated_at=now,
            lease_expires_at=None,
        )
    )
    connection = session.connection()
    if not connection.dialect.supports_sane_multi_rowcount:
        return all(
            mark_done(session, effect_id, owner=owner, now=now, result=result)
            for effect_id, result in done
        )
    changed = connection.execute(
        stmt, [{"effect_id": i, "done_result": dict(r or {})} for i, r in done]
    )
    return bool(changed.rowcount == len(done))


def mark_for_retry(
    session: Session,
    effect_id: EffectId,
    *,
    owner: str | None,
    now: datetime,
    not_before: datetime,
    error_code: str | None = None,
    error_message: str | None = None,
) -> bool:
    """Put the effect back to pending, due at `not_before` (owner None: from unknown)."""
    if owner is None:
        expected = Effect.state == EffectState.UNKNOWN
    else:
        expected = and_(
            Effect.state.in_([EffectState.CLAIMED, EffectState.IN_FLIGHT]),
            Effect.lease_owner == owner,
        )
    return compare_and_set(
        session,
        effect_id,
        expected,
        state=EffectState.PENDING,
        not_before=not_before,
        lease_owner=None,
        lease_expires_at=None,
        enqueued_at=now,
        work_item_id=None,  # a later doubt gets a work item of its own
        error_code=error_code,
        error_message=error_message,
        updated_at=now,
    )


def defer(
    session: Session,
    effect_id: EffectId,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    reason: str,
) -> bool:
    """Put a held effect back to pending until `until`, giving back the attempt its claim took:
    waiting for quiet hours to end is not a failure."""
    mine = and_(
        Effect.state.in_([EffectState.CLAIMED, EffectState.IN_FLIGHT]),
        Effect.lease_owner == owner,
    )
    return compare_and_set(
        session,
        effect_id,
        mine,
        state=EffectState.PENDING,
        not_before=until,
        lease_owner=None,
        lease_expires_at=None,
        enqueued_at=now,
        attempts=Effect.attempts - 1,
        error_code="effect.deferred",
        error_message=reason[:500],
        updated_at=now,
    )


def mark_voided(
    session: Session, effect_id: EffectId, *, owner: str, now: datetime, reason: str
) -> bool:
    """Void an effect its handler found should no longer happen (it was not sent)."""
    mine = and_(
        Effect.state.in_([EffectState.CLAIMED, EffectState.IN_FLIGHT]),
        Effect.lease_owner == owner,
    )
    return compare_and_set(
        session,
        effect_id,
        mine,
        state=EffectState.VOIDED,
        error_code="voided",
        error_message=reason[:500],
        lease_owner=None,
        lease_expires_at=None,
        finished_at=now,
        updated_at=now,
    )


def mark_failed(
    session: Session,
    effect_id: EffectId,
    *,
    owner: str | None,
    now: datetime,
    error_code: str,
    error_message: str,
) -> bool:
    """Record a failure that will not be retried."""
    expected: ColumnElement[bool]
    if owner is None:
        expected = Effect.state.in_([EffectState.UNKNOWN, EffectState.PENDING])
    else:
        expected = and_(
            Effect.state.in_([EffectState.CLAIMED, EffectState.IN_FLIGHT]),
            Effect.lease_owner == owner,
        )
    return compare_and_set(
        session,
        effect_id,
        expected,
        state=EffectState.FAILED,
        error_code=error_code,
        error_message=error_message,
        finished_at=now,
        lease_expires_at=None,
        updated_at=now,
    )


def mark_unknown(
    session: Session, effect_id: EffectId, *, owner: str | None, now: datetime
) -> bool:
    """An in-flight effect's fate is unclear: its worker says so, or its lease ran out (None)."""
    if owner is None:
        expected = and_(Effect.state == EffectState.IN_FLIGHT, Effect.lease_expires_at < now)
    else:
        expected = and_(Effect.state == EffectState.IN_FLIGHT, Effect.lease_owner == owner)
    return compare_and_set(session, effect_id, expected, state=EffectState.UNKNOWN, updated_at=now)


def void_pending(session: Session, focus: str, *, reason: str, now: datetime) -> int:
    """Void messages to patients about `focus` that have not gone out (pending, or claimed but
    not yet sent): nobody is reminded of a visit that no longer exists. Work items and write-backs
    stand: a person may still need to see them, and the EHR refuses a write to what it deleted.

    A worker holding a claim checks the state when it marks the effect in flight, so voiding a
    claimed effect stops it too; an effect already in flight may have been sent and is left to
    run its course. Returns how many were voided.
    """
    condition = and_(Effect.focus == focus, Effect.reaches_patient.is_(True))
    return len(_void_not_sent(session, condition, reason=reason, now=now))


def void_pending_keys(
    session: Session, keys: Sequence[str], *, reason: str, now: datetime
) -> set[str]:
    """Void the effects with these keys that have not gone out, as `void_pending` does; the keys
    voided (an effect in flight or finished is left as it is)."""
    voided: set[str] = set()
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 500):
        condition = Effect.key.in_(wanted[start : start + 500])
        voided.update(_void_not_sent(session, condition, reason=reason, now=now))
    return voided


def _void_not_sent(
    session: Session, condition: ColumnElement[bool], *, reason: str, now: datetime
) -> list[str]:
    result = session.execute(
        update(Effect)
        .where(condition, Effect.state.in_([EffectState.PENDING, EffectState.CLAIMED]))
        .values(
            state=EffectState.VOIDED,
            error_code="voided",
            error_message=reason[:500],
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
        .returning(Effect.key),
        execution_options=NO_SYNC,
    )
    return list(result.scalars())


def link_work_item(session: Session, effect_id: EffectId, work_item_id: int) -> None:
    """Remember which work item asks a person about this effect."""
    session.execute(
        update(Effect).where(Effect.id == effect_id).values(work_item_id=work_item_id),
        execution_options=NO_SYNC,
    )


def effect_counts(session: Session, run_id: RunId) -> dict[str, int]:
    """How many of a run's effects are in each state."""
    rows = session.execute(
        select(Effect.state, func.count()).where(Effect.run_id == run_id).group_by(Effect.state)
    )
    return {state: int(n) for state, n in rows}


def pending_ids_of_run(session: Session, run_id: RunId) -> list[EffectId]:
    """The run's effects still waiting to be executed."""
    stmt = select(Effect.id).where(Effect.run_id == run_id, Effect.state == EffectState.PENDING)
    return [EffectId(i) for i in session.scalars(stmt.order_by(Effect.id))]
