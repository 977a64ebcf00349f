"""Tables of waitlist backfill: freed slots, their offers, and the one booking each slot gets.

`waitlist_bookings.slot_key` is unique: however many patients claim a freed slot at the same
instant, on however many workers, the database lets exactly one booking in (the others are told
the slot was just taken and stay on the list).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.engine import IdType


class FreedSlotRecord(Base):
    """A slot freed by a cancellation or a reschedule, and where its backfill stands.

    `state`: open (offers going out in waves) | booked (a claim won) | unfilled (the waves ran
    out or the slot came too close; the front desk was asked) | closed (filled another way, or
    the automation was stopped). Times are aware UTC; ids name replica resources.
    """

    __tablename__ = "waitlist_slots"
    __table_args__ = (Index("ix_waitlist_slots_state_next", "state", "next_wave_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    slot_key: Mapped[str] = mapped_column(String(160), unique=True)
    freed_by: Mapped[str] = mapped_column(String(64))  # the Appointment that gave it up
    practitioner_id: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    specialty: Mapped[str] = mapped_column(String(64))
    visit_type: Mapped[str | None] = mapped_column(String(32))
    slot_id: Mapped[str | None] = mapped_column(String(64))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer)
    freed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    waves_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_wave_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_why: Mapped[str | None] = mapped_column(String(200))
    booked_entry_id: Mapped[str | None] = mapped_column(String(64))  # the entry now booked
    value_cents: Mapped[int] = mapped_column(Integer, default=0)  # revenue recovered once booked


class WaitlistOffer(Base):
    """A freed slot offered to one waitlist entry, in one wave."""

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        UniqueConstraint("slot_key", "entry_id"),  # an entry is offered a slot once
        Index("ix_waitlist_offers_patient", "patient_id", "offered_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    slot_key: Mapped[str] = mapped_column(String(160))
    slot_start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entry_id: Mapped[str] = mapped_column(String(64))  # the waitlist Appointment's id
    patient_id: Mapped[str] = mapped_column(String(64))
    wave: Mapped[int] = mapped_column(Integer)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # offered | booked (this claim won) | taken (claimed after another won) | expired
    # | declined (the patient said no) | closed (the slot was filled; nobody asked)
    state: Mapped[str] = mapped_column(String(16))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How the offer went out and to whom (blind index), so a "Y" text finds its offer.
    channel: Mapped[str | None] = mapped_column(String(8))
    contact_digest: Mapped[str | None] = mapped_column(String(64), index=True)


class SlotBooking(Base):
    """The one booking of a freed slot (unique `slot_key`: the claim race's referee)."""

    __tablename__ = "waitlist_bookings"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    slot_key: Mapped[str] = mapped_column(String(160), unique=True)
    offer_id: Mapped[int] = mapped_column(IdType)
    entry_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str] = mapped_column(String(64))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The Appointment written for the patient (set when the write-back is recorded).
    appointment_id: Mapped[str | None] = mapped_column(String(64))
