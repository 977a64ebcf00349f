"""Which touchpoints of which visits a message already covers (the `reminder_claims` table).

A claim is taken in the run's transaction together with the message's effect, one row per visit,
unique per (appointment, touchpoint, start). Two runs racing on the same visits cannot both win
a row (PostgreSQL makes the second insert wait for the first transaction, then yield), so a visit
is listed in at most one message per touchpoint. A claim whose message was voided (the visit
moved, another listed visit was cancelled) is released, so the next plan covers the visits that
still need it.

A run reads claims in its snapshot (`held_claims`, `releases`) and writes them in its
transaction (`take_claims`, `let_go`, `drop_claims`): a claim taken meanwhile by another run
wins, because `take_claims` inserts only what is free.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, select, update
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
        ReminderClaim.effect_key,
        Effect.state,
    )
    .outerjoin(Effect, Effect.key == ReminderClaim.effect_key)
    .where(ReminderClaim.appointment_id.in_(bindparam("ids", expanding=True)))
)


@dataclass(frozen=True, slots=True)
class Held:
    """The claims a run found on its visits: those whose message stands, and the rows of those
    whose message was voided (to release in the run's transaction)."""

    keys: set[ClaimKey]
    voided_ids: list[int]


def held_claims(
    reads: Session, appointment_ids: Iterable[str], *, releasing: Collection[str] = ()
) -> Held:
    """Claims on these visits whose message still stands (read, nothing released here); a
    message in `releasing` (`Releases.gone_keys`) stands no more."""
    wanted = sorted(set(appointment_ids))
    held = Held(set(), [])
    for start in range(0, len(wanted), CHUNK):
        rows = reads.execute(_HELD, {"ids": wanted[start : start + CHUNK]}).all()
        held.voided_ids.extend(row.id for row in rows if row.state == EffectState.VOIDED)
        held.keys.update(
            (row.appointment_id, row.touchpoint, row.start_at)
            for row in rows
            if row.state != EffectState.VOIDED and row.effect_key not in releasing
        )
    return held


def drop_claims(session: Session, claim_ids: Sequence[int]) -> None:
    """Delete these claims (their message was voided)."""
    _delete_in(session, ReminderClaim.id, claim_ids)


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


@dataclass(frozen=True, slots=True)
class Releases:
    """Claims a run lets go of: found in its snapshot, let go in its transaction (`let_go`)."""

    # Messages listing a visit that went away (cancelled, moved, removed): voided unless they
    # went out meanwhile, then their claims released.
    gone_keys: frozenset[str] = frozenset()
    # Messages voided at send time (opted out, another listed visit moved): claims released.
    voided_keys: frozenset[str] = frozenset()
    # The other visits those messages listed: to plan again in this run.
    visits: frozenset[str] = frozenset()


_NOT_SENT = (EffectState.PENDING, EffectState.CLAIMED)


def releases(
    reads: Session, gone: Mapping[str, datetime], *, sweep_after: datetime | None
) -> Releases:
    """What to let go of for these gone visits and, with `sweep_after` (once a day), for the
    upcoming visits' messages voided at send time.

    A message in flight is left to the send-time check, which voids it too; the daily sweep
    then releases its claims.
    """
    ids = sorted(gone)
    keys: set[str] = set()
    for first in range(0, len(ids), CHUNK):
        rows = reads.execute(
            select(
                ReminderClaim.appointment_id, ReminderClaim.start_at, ReminderClaim.effect_key
            ).where(ReminderClaim.appointment_id.in_(ids[first : first + CHUNK]))
        )
        keys.update(row.effect_key for row in rows if row.start_at == gone[row.appointment_id])
    gone_keys = _scalars_in(
        reads, select(Effect.key).where(Effect.state.in_(_NOT_SENT)), Effect.key, keys
    )
    voided: set[str] = set()
    if sweep_after is not None:
        rows = reads.execute(
            select(ReminderClaim.effect_key)
            .join(Effect, Effect.key == ReminderClaim.effect_key)
            .where(ReminderClaim.start_at > sweep_after, Effect.state == EffectState.VOIDED)
        )
        voided = {row.effect_key for row in rows}
    # The visits those messages' claims cover.
    covered = select(ReminderClaim.appointment_id)
    visits = _scalars_in(reads, covered, ReminderClaim.effect_key, gone_keys | voided) - set(gone)
    return Releases(frozenset(gone_keys), frozenset(voided), frozenset(visits))


def let_go(session: Session, found: Releases, *, now: datetime) -> None:
    """Void the messages of gone visits that have not gone out and release their claims, and
    the claims of messages voided at send time. One sent in the meantime keeps its claims: the
    visits it listed that this run planned again lose their claim to it (`take_claims`)."""
    voided = void_pending_keys(
        session, sorted(found.gone_keys), reason="a visit it lists was cancelled or moved", now=now
    )
    _delete_in(session, ReminderClaim.effect_key, sorted(voided | found.voided_keys))


def _delete_in(session: Session, column: Any, values: Sequence[Any]) -> None:
    """Delete the claims whose `column` is one of `values`, CHUNK of them a statement."""
    for first in range(0, len(values), CHUNK):
        session.execute(
            delete(ReminderClaim).where(column.in_(values[first : first + CHUNK])),
            execution_options=NO_SYNC,
        )


def _scalars_in(reads: Session, query: Select[Any], column: Any, values: set[str]) -> set[str]:
    """`query`'s values where `column` is one of `values`, CHUNK of them a statement."""
    wanted = sorted(values)
    found: set[str] = set()
    for first in range(0, len(wanted), CHUNK):
        found.update(reads.scalars(query.where(column.in_(wanted[first : first + CHUNK]))))
    return found
