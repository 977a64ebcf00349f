"""The Messages page's read model: what patients sent, and what the sandbox outbox delivered.

With a patient given, only that patient's: inbound messages from any of their phones or
addresses (matched by blind index, never by decrypting every sender) and outbox messages for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.security.phi import PhiCipher
from clinicflow.store.engine import SandboxMessage, sandbox_message_aad
from clinicflow.store.messaging import InboundMessage, inbound_sender, inbound_text

__all__ = [
    "InboundView",
    "OutboundView",
    "contact_digests",
    "inbound_messages",
    "outbound_messages",
]


@dataclass(frozen=True, slots=True)
class InboundView:
    """A message from a patient, decrypted, with what clinicflow understood and did."""

    id: int
    channel: str
    sender: str
    text: str
    intent: str
    received_at: datetime
    handled_at: datetime | None
    appointment_ids: tuple[str, ...]
    outcome: str


@dataclass(frozen=True, slots=True)
class OutboundView:
    """A message the sandbox delivered, decrypted."""

    id: int
    channel: str
    to: str
    subject: str | None
    body: str
    for_ref: str | None
    sent_at: datetime


def contact_digests(cipher: PhiCipher, patient: dict[str, Any]) -> list[str]:
    """Blind indexes of a patient's phones and e-mail addresses (as inbound messages keep them)."""
    digests = []
    for point in patient.get("telecom") or []:
        if not isinstance(point, dict) or not point.get("value"):
            continue
        kind = "email" if point.get("system") == "email" else "phone"
        if point.get("system") in ("phone", "sms", "email"):
            digests.append(cipher.blind_index(kind, str(point["value"])))
    return digests


def _outcome(outcome: dict[str, object] | None) -> str:
    if not outcome:
        return ""
    return ", ".join(
        f"{k}: {v}" for k, v in sorted(outcome.items()) if not isinstance(v, dict | list)
    )


def inbound_messages(
    session: Session, cipher: PhiCipher, *, digests: list[str] | None = None, limit: int = 100
) -> list[InboundView]:
    """Newest first; only from `digests` when given."""
    query = select(InboundMessage).order_by(InboundMessage.received_at.desc()).limit(limit)
    if digests is not None:
        query = query.where(InboundMessage.contact_digest.in_(digests or [""]))
    return [
        InboundView(
            id=m.id,
            channel=m.channel,
            sender=inbound_sender(cipher, m),
            text=inbound_text(cipher, m),
            intent=m.intent,
            received_at=m.received_at,
            handled_at=m.handled_at,
            appointment_ids=tuple(m.appointment_ids or ()),
            outcome=_outcome(m.outcome),
        )
        for m in session.scalars(query)
    ]


def outbound_messages(
    session: Session, cipher: PhiCipher, *, for_ref: str | None = None, limit: int = 100
) -> list[OutboundView]:
    """The sandbox outbox, newest first; only those for `for_ref` (Patient/ID) when given."""
    query = select(SandboxMessage).order_by(SandboxMessage.id.desc()).limit(limit)
    if for_ref is not None:
        query = query.where(SandboxMessage.for_ref == for_ref)
    return [
        OutboundView(
            id=m.id,
            channel=m.channel,
            to=cipher.decrypt(m.recipient_enc, sandbox_message_aad(m.uid, "to")).decode(),
            subject=cipher.decrypt_text(m.subject_enc, sandbox_message_aad(m.uid, "subject")),
            body=cipher.decrypt(m.body_enc, sandbox_message_aad(m.uid, "body")).decode(),
            for_ref=m.for_ref,
            sent_at=m.sent_at,
        )
        for m in session.scalars(query)
    ]
