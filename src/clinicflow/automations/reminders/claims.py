"""Which touchpoints of which visits a message already covers (the `reminder_claims` table).

A claim is taken in the run's transaction together with the message's effect, one row per visit,
unique per (appointment, touchpoint, start). Two runs racing on the same visits cannot both win
a row (PostgreSQL makes the second insert wait for the first transaction, then yield), so a visit
is listed in at most one message per touchpoint. A claim whose message was voided (the visit
moved, another listed visit was cancelled) is released, so the next plan covers the visits that
still need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from clinicflow.engine.effects import void_pending_keys
from clinicflow.engine.states import EffectState
from clinicflow.engine.upsert import NO_SYNC, insert_ignoring_many
from clinicflow.store.base import stored_instant
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import ReminderClaim

CHUNK = 500
ClaimKey = tuple[str, str, datetime]  # (appointment id, touchpoint name, visit start)
_UNIQUE = ["appointment_id", "touchpoint", "start_at"]


_HELD = (
    select(
        ReminderClaim.id,
        ReminderClaim.appointment_id,
        ReminderClaim.touchpoint,
        ReminderClaim.start_at,
        Effect.state,
    )
    .outerjoin(Effect, Effect.key == ReminderClaim.effect_key)
    .where(ReminderClaim.appointment_id.in_(bindparam("ids", expanding=True)))
)


def held_claims(session: Session, appointment_ids: Iterable[str]) -> set[ClaimKey]:
    """Claims on these visits whose message still stands; voided ones are released first."""
    wanted = sorted(set(appointment_ids))
    held: set[ClaimKey] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = session.execute(_HELD, {"ids": chunk}).all()
        released = [row.id for row in rows if row.state == EffectState.VOIDED]
        if released:
            session.execute(
                delete(ReminderClaim).where(ReminderClaim.id.in_(released)),
                execution_options=NO_SYNC,
            )
        held.update(
            (row.appointment_id, row.touchpoint, row.start_at)
            for row in rows
            if row.state != EffectState.VOIDED
        )
    return held


@dataclass(frozen=True, slots=True)
class NewClaim:
    """A visit's touchpoint to claim for the message with key `effect_key`."""

    key: ClaimKey
    effect_key: str
    channel: str
    contact_digest: str
    practitioner_id: str | None
    asks_reply: bool


def take_claims(session: Session, claims: Sequence[NewClaim], *, now: datetime) -> set[ClaimKey]:
    """Claim these visits' touchpoints; the keys won (the others some message already covers).

    Inserted in key order, so two runs racing on PostgreSQL wait for each other in one order.
    """
    rows = [
        {
            "appointment_id": claim.key[0],
            "touchpoint": claim.key[1],
            "start_at": claim.key[2],
            "effect_key": claim.effect_key,
            "channel": claim.channel,
            "contact_digest": claim.contact_digest,
            "practitioner_id": claim.practitioner_id,
            "asks_reply": claim.asks_reply,
            "created_at": now,
        }
        for claim in sorted(claims, key=lambda c: c.key)
    ]
    won = insert_ignoring_many(session, ReminderClaim, rows, _UNIQUE, _UNIQUE)
    return {
        (appointment_id, touchpoint, _instant(start)) for appointment_id, touchpoint, start in won
    }


def _instant(value: datetime | str) -> datetime:
    instant = stored_instant(value)
    if instant is None:  # the column is NOT NULL: never happens
        raise ValueError("a reminder claim without a start")
    return instant


def rekey(session: Session, old_key: str, new_key: str) -> None:
    """Point the claims of message `old_key` at `new_key` (it lists fewer visits than planned)."""
    session.execute(
        update(ReminderClaim).where(ReminderClaim.effect_key == old_key).values(effect_key=new_key),
        execution_options=NO_SYNC,
    )


def release_gone(session: Session, gone: Mapping[str, datetime], *, now: datetime) -> set[str]:
    """Void the messages not yet sent that list a visit that went away (cancelled, moved,
    removed) and release their claims; the other visits those messages listed, to plan again.

    A message in flight is left to the send-time check, which voids it too; the daily sweep
    then releases its claims.
    """
    ids = sorted(gone)
    keys: set[str] = set()
    for first in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(
                ReminderClaim.appointment_id, ReminderClaim.start_at, ReminderClaim.effect_key
            ).where(ReminderClaim.appointment_id.in_(ids[first : first + CHUNK]))
        )
        keys.update(row.effect_key for row in rows if row.start_at == gone[row.appointment_id])
    voided = void_pending_keys(
        session, sorted(keys), reason="a visit it lists was cancelled or moved", now=now
    )
    return _release(session, voided) - set(gone)


def sweep_voided(session: Session, start_after: datetime) -> set[str]:
    """Release the claims of upcoming visits whose message was voided (at send time: opted out,
    another listed visit moved); the visits to plan again."""
    rows = session.execute(
        select(ReminderClaim.effect_key)
        .join(Effect, Effect.key == ReminderClaim.effect_key)
        .where(ReminderClaim.start_at > start_after, Effect.state == EffectState.VOIDED)
    )
    return _release(session, {row.effect_key for row in rows})


def _release(session: Session, effect_keys: set[str]) -> set[str]:
    """Delete the claims of these messages; the visits they covered."""
    keys = sorted(effect_keys)
    released: set[str] = set()
    for first in range(0, len(keys), CHUNK):
        chunk = keys[first : first + CHUNK]
        released.update(
            session.scalars(
                delete(ReminderClaim)
                .where(ReminderClaim.effect_key.in_(chunk))
                .returning(ReminderClaim.appointment_id),
                execution_options=NO_SYNC,
            )
        )
    return released
