"""Patients' messages as triage keeps them: where each went, why, and what staff changed.

One row per message, whatever it came as (`source_ref`: `InboundMessage/12` for a text or an
e-mail, `Communication/abc` for a portal message, `api/<uid>` for one posted to the API). The
text is kept encrypted here too, so the review queue, corrections and evaluation read one table.
A row is written before the message is classified (the API's own messages) or in the same
transaction as its decision (texts and portal messages, already stored where they arrived).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.security.registry import register_encrypted_column
from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.engine import IdType


def triage_body_aad(source_ref: str) -> bytes:
    """The text's ciphertext is bound to its message, so it cannot be moved to another row."""
    return f"triage_messages/{source_ref}/body".encode()


class TriageMessage(Base):
    """A patient's message and the triage decision on it.

    `pool` and `urgent` are the decision; `corrected_pool` is where a person moved it (the
    latest move; every move is in `triage_corrections`). `escalation_level` counts the notices
    sent for an urgent message; `next_escalation_at` is when the next is due if nobody has
    acknowledged it.
    """

    __tablename__ = "triage_messages"
    __table_args__ = (
        Index("ix_triage_messages_escalation", "urgent", "acknowledged_at", "next_escalation_at"),
        Index("ix_triage_messages_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source_ref: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | portal | api
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    thread_ref: Mapped[str | None] = mapped_column(String(160))  # inResponseTo
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pool: Mapped[str | None] = mapped_column(String(32))  # None until triaged
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # reasons, scores, model
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    work_item_key: Mapped[str | None] = mapped_column(String(200))
    corrected_pool: Mapped[str | None] = mapped_column(String(32))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


register_encrypted_column(
    TriageMessage.__table__, "body_enc", lambda row: triage_body_aad(row.source_ref)
)


class TriageCorrection(Base):
    """A person moved a message from the pool triage chose (or an earlier move) to another."""

    __tablename__ = "triage_corrections"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("triage_messages.id"), index=True)
    from_pool: Mapped[str] = mapped_column(String(32))
    to_pool: Mapped[str] = mapped_column(String(32))
    decided_pool: Mapped[str] = mapped_column(String(32))  # what triage itself said
    model: Mapped[str] = mapped_column(String(64))
    corrected_by: Mapped[str] = mapped_column(String(64))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)
