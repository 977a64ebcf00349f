"""Offers and claims of freed slots: record a wave's offers, settle a claim (first one wins).

The referee is the database: a claim inserts the slot's one booking row (`waitlist_bookings`,
unique `slot_key`) with ON CONFLICT DO NOTHING. Whoever's insert lands books the slot; every
later claim finds the row and is told the slot was just taken. No lock is held across the
patient's answer, and two workers claiming at the same instant cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clinicflow.engine.events import record_event
from clinicflow.store.conflicts import upsert_insert
from clinicflow.store.waitlist import SlotBooking, WaitlistOffer

__all__ = [
    "WAITLIST_CLAIMED",
    "ClaimOutcome",
    "NewOffer",
    "claim",
    "claim_offer",
    "latest_offer_to",
    "record_offers",
    "slot_key",
]

# Raised for each settled claim; waitlist-backfill books the slot or says it was taken.
WAITLIST_CLAIMED = "waitlist.claimed"


class ClaimOutcome(StrEnum):
    """What a patient's claim came to."""

    BOOKED = "booked"  # theirs
    TAKEN = "taken"  # someone else's claim won
    EXPIRED = "expired"  # the offer ran out
    UNKNOWN = "unknown"  # no such offer


@dataclass(frozen=True, slots=True)
class NewOffer:
    """One entry to offer the slot to, in one wave."""

    entry_id: str
    patient_id: str
    wave: int
    channel: str | None = None  # sms | email
    contact_digest: str | None = None  # the blind index of the number or address it goes to


def slot_key(practitioner_id: str | None, start: datetime, slot_id: str | None = None) -> str:
    """What names a freed slot: its Slot when there is one, else provider and start."""
    if slot_id:
        return f"Slot/{slot_id}"
    return f"Practitioner/{practitioner_id or '-'}@{start.isoformat()}"


def record_offers(
    session: Session,
    *,
    key: str,
    slot_start_at: datetime,
    offers: Sequence[NewOffer],
    now: datetime,
    expires_at: datetime,
) -> list[int]:
    """Record a wave's offers (an entry already offered this slot is skipped); their ids."""
    ids: list[int] = []
    for offer in offers:
        stmt = (
            upsert_insert(session, WaitlistOffer)
            .values(
                slot_key=key,
                slot_start_at=slot_start_at,
                entry_id=offer.entry_id,
                patient_id=offer.patient_id,
                wave=offer.wave,
                offered_at=now,
                expires_at=expires_at,
                state="offered",
                channel=offer.channel,
                contact_digest=offer.contact_digest,
            )
            .on_conflict_do_nothing(index_elements=["slot_key", "entry_id"])
            .returning(WaitlistOffer.id)
        )
        new_id = session.execute(stmt).scalar_one_or_none()
        if new_id is not None:
            ids.append(int(new_id))
    return ids


def claim_offer(session: Session, offer_id: int, *, now: datetime) -> ClaimOutcome:
    """Settle one claim in the caller's transaction: book the slot if nobody has yet."""
    offer = session.get(WaitlistOffer, offer_id)
    if offer is None:
        return ClaimOutcome.UNKNOWN
    booked_by = session.scalar(
        select(SlotBooking.offer_id).where(SlotBooking.slot_key == offer.slot_key)
    )
    if booked_by == offer.id:
        return ClaimOutcome.BOOKED  # the same claim again (a second tap, a retried webhook)
    if booked_by is not None:
        _answer(session, offer.id, "taken", now)
        return ClaimOutcome.TAKEN
    if offer.state == "closed":
        return ClaimOutcome.TAKEN  # the slot was filled in the EHR meanwhile
    if offer.state != "offered" or now >= offer.expires_at:
        _answer(session, offer.id, "expired", now)
        return ClaimOutcome.EXPIRED
    won = session.execute(
        upsert_insert(session, SlotBooking)
        .values(
            slot_key=offer.slot_key,
            offer_id=offer.id,
            entry_id=offer.entry_id,
            patient_id=offer.patient_id,
            booked_at=now,
        )
        .on_conflict_do_nothing(index_elements=["slot_key"])
        .returning(SlotBooking.id)
    ).scalar_one_or_none()
    outcome = ClaimOutcome.BOOKED if won is not None else ClaimOutcome.TAKEN
    _answer(session, offer.id, outcome.value, now)
    return outcome


def claim(session: Session, offer_id: int, *, now: datetime) -> ClaimOutcome:
    """Settle a claim and raise `waitlist.claimed` for the automation to act on what it came to
    (booking in the EHR, the patient's confirmation, telling the others)."""
    outcome = claim_offer(session, offer_id, now=now)
    if outcome is not ClaimOutcome.UNKNOWN:
        record_event(
            session,
            event_type=WAITLIST_CLAIMED,
            resource_type="WaitlistOffer",
            resource_id=str(offer_id),
            at=now,
            payload={"outcome": outcome.value},
        )
    return outcome


def latest_offer_to(
    session: Session, *, channel: str, contact_digest: str, since: datetime
) -> WaitlistOffer | None:
    """The newest offer sent to this contact on this channel since `since` (a text's "Y"
    answers it)."""
    return session.scalar(
        select(WaitlistOffer)
        .where(
            WaitlistOffer.channel == channel,
            WaitlistOffer.contact_digest == contact_digest,
            WaitlistOffer.offered_at >= since,
        )
        .order_by(WaitlistOffer.offered_at.desc(), WaitlistOffer.id.desc())
        .limit(1)
    )


def _answer(session: Session, offer_id: int, state: str, now: datetime) -> None:
    session.execute(
        update(WaitlistOffer)
        .where(WaitlistOffer.id == offer_id)
        .values(state=state, answered_at=now)
        .execution_options(synchronize_session=False)
    )
