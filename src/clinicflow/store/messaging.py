"""Tables of patient messaging: what each reminder covered, what patients sent, consent, the pause.

Phone numbers and addresses never appear in clear: `contact_digest` is the blind index of the
contact (`PhiCipher.blind_index("phone" | "email", value)`), and what a patient wrote is encrypted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.security.phi import PhiCipher
from clinicflow.security.registry import register_encrypted_column
from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.engine import IdType


class ReminderClaim(Base):
    """One touchpoint of one visit, claimed by the message that covers it.

    Unique per (appointment, touchpoint, start): a visit is reminded once per touchpoint even when
    several visits share one message, and a rescheduled visit (new start) is a new touchpoint. A
    claim whose message was voided is taken over by the next plan. Replies to an SMS are matched
    to the visits its message listed through `contact_digest` and `effect_key`.
    """

    __tablename__ = "reminder_claims"
    __table_args__ = (
        UniqueConstraint("appointment_id", "touchpoint", "start_at"),
        Index("ix_reminder_claims_contact", "contact_digest", "created_at"),
        Index("ix_reminder_claims_start", "start_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    appointment_id: Mapped[str] = mapped_column(String(64))
    touchpoint: Mapped[str] = mapped_column(String(32))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    effect_key: Mapped[str] = mapped_column(String(300), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    contact_digest: Mapped[str] = mapped_column(String(64))
    practitioner_id: Mapped[str | None] = mapped_column(String(64))
    asks_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundMessage(Base):
    """A message a patient sent (an SMS, or a click on a reminder's page), stored before we answer.

    `provider_id` (Twilio's MessageSid) is unique, so a webhook delivered twice is stored once.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_contact", "contact_digest", "received_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    contact_digest: Mapped[str] = mapped_column(String(64))
    sender_enc: Mapped[bytes] = mapped_column(LargeBinary)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    intent: Mapped[str] = mapped_column(String(16))  # confirm | cancel | reschedule | stop | ...
    # The visits the message answers, when it says so itself (a reminder page's link does; an
    # SMS reply is matched to the reminder it answers when it is handled).
    appointment_ids: Mapped[list[str] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[dict[str, object] | None] = mapped_column(JSON)


class ConsentChange(Base):
    """An opt-out or opt-in of one contact on one channel, with its evidence (append-only).

    The contact's current consent is its latest row; no row means not opted out.
    """

    __tablename__ = "consent_changes"
    __table_args__ = (Index("ix_consent_changes_contact", "channel", "contact_digest", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    contact_digest: Mapped[str] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean)
    keyword: Mapped[str] = mapped_column(String(32))  # STOP, START, "unsubscribe link", ...
    inbound_message_id: Mapped[int | None] = mapped_column(IdType)
    source: Mapped[str] = mapped_column(String(32))  # sms | email-link | staff
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PracticeFlag(Base):
    """A practice-wide switch such as `messages_paused`; no row means off."""

    __tablename__ = "practice_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def inbound_message_aad(provider_id: str, part: str) -> bytes:
    """AAD of one part ("from", "body") of an inbound message."""
    return f"inbound_message:{provider_id}:{part}".encode()


def inbound_text(cipher: PhiCipher, message: InboundMessage) -> str:
    """What the patient wrote, in clear."""
    return cipher.decrypt(
        message.body_enc, inbound_message_aad(message.provider_id, "body")
    ).decode()


def inbound_sender(cipher: PhiCipher, message: InboundMessage) -> str:
    """Who sent it (a phone number or an e-mail address), in clear."""
    return cipher.decrypt(
        message.sender_enc, inbound_message_aad(message.provider_id, "from")
    ).decode()


register_encrypted_column(
    InboundMessage.__table__, "sender_enc", lambda r: inbound_message_aad(r.provider_id, "from")
)
register_encrypted_column(
    InboundMessage.__table__, "body_enc", lambda r: inbound_message_aad(r.provider_id, "body")
)


class ReminderMark(Base):
    """When the reminder planner must look at an upcoming visit again (its incremental plan).

    Planning every visit of the next two weeks on every run costs more than the sends (a run every
    five minutes); a visit whose start has not moved is only looked at again when its next
    touchpoint falls due. `start_at` is the start it was planned for: a visit whose start or
    status changed no longer matches its mark and is planned afresh. `next_check_at` None: nothing
    more to send for it.
    """

    __tablename__ = "reminder_marks"
    __table_args__ = (
        Index("ix_reminder_marks_next_check", "next_check_at"),
        Index("ix_reminder_marks_start", "start_at"),
    )

    appointment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReminderPlanState(Base):
    """What the reminder planner last saw: the replica's generation, the policy, the sweep day."""

    __tablename__ = "reminder_plan_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
