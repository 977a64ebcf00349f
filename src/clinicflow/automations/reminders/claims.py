"""Which touchpoints of which visits a message already covers (the `reminder_claims` table).

A claim is taken in the run's transaction together with the message's effect, one row per visit,
unique per (appointment, touchpoint, start). Two runs racing on the same visits cannot both win
a row (PostgreSQL makes the second insert wait for the first transaction, then yield), so a visit
is listed in at most one message per touchpoint. A claim whose message was voided (the visit
moved, another listed visit was cancelled) is released, so the next plan covers the visits that
still need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinicflow.engine.states import EffectState
from clinicflow.engine.upsert import NO_SYNC, insert_if_absent
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import ReminderClaim

CHUNK = 500
ClaimKey = tuple[str, str, datetime]  # (appointment id, touchpoint name, visit start)


def held_claims(session: Session, appointment_ids: Iterable[str]) -> set[ClaimKey]:
    """Claims on these visits whose message still stands; voided ones are released first."""
    wanted = sorted(set(appointment_ids))
    held: set[ClaimKey] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = session.execute(
            select(
                ReminderClaim.id,
                ReminderClaim.appointment_id,
                ReminderClaim.touchpoint,
                ReminderClaim.start_at,
                Effect.state,
            )
            .outerjoin(Effect, Effect.key == ReminderClaim.effect_key)
            .where(ReminderClaim.appointment_id.in_(chunk))
        ).all()
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


def take_claim(
    session: Session,
    key: ClaimKey,
    *,
    effect_key: str,
    channel: str,
    contact_digest: str,
    practitioner_id: str | None,
    asks_reply: bool,
    now: datetime,
) -> bool:
    """Claim one visit's touchpoint for a message; False when another message has it."""
    appointment_id, touchpoint, start_at = key
    return insert_if_absent(
        session,
        ReminderClaim,
        {
            "appointment_id": appointment_id,
            "touchpoint": touchpoint,
            "start_at": start_at,
            "effect_key": effect_key,
            "channel": channel,
            "contact_digest": contact_digest,
            "practitioner_id": practitioner_id,
            "asks_reply": asks_reply,
            "created_at": now,
        },
        ["appointment_id", "touchpoint", "start_at"],
    )
