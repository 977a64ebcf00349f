"""Storing what a patient sent, once, with its consent change, event and audit row.

A webhook is answered only after `store_inbound` has committed, and Twilio redelivers a webhook
it got no answer for, so the same message can arrive twice: its provider id (MessageSid) is
unique and the second arrival stores nothing and changes nothing. Everything else a message
causes (confirming a visit, a work item for a free-text reply) is done by automations that
subscribe to `inbound.received`, outside the webhook's request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.channels.replies import KEYWORDS, Classified, Intent, classify, normalise
from clinicflow.engine.events import record_event
from clinicflow.engine.payloads import MessageChannel
from clinicflow.engine.upsert import insert_returning_id
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.store.messaging import InboundMessage, inbound_message_aad

INBOUND_RECEIVED = "inbound.received"
RESOURCE_TYPE = "InboundMessage"


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """The stored message's id, whether this call stored it, and what it asks for."""

    id: int
    created: bool
    intent: Intent


def store_inbound(
    session: Session,
    cipher: PhiCipher,
    *,
    provider_id: str,
    channel: str,
    sender: str,
    contact_digest: str,
    body: str,
    received_at: datetime,
    classified: Classified | None = None,
    appointment_ids: Sequence[str] | None = None,
) -> StoredInbound:
    """Store a message unless its provider id is known; on first store, consent, event, audit.

    Runs in the caller's transaction and never commits. `contact_digest` is the sender's blind
    index (`cipher.blind_index("phone", number)` for a text).
    """
    message_channel = _channel(channel)
    meaning = classified or classify(body)
    values: dict[str, Any] = {
        "provider_id": provider_id,
        "channel": message_channel.value,
        "contact_digest": contact_digest,
        "sender_enc": cipher.encrypt(sender.encode(), inbound_message_aad(provider_id, "from")),
        "body_enc": cipher.encrypt(body.encode(), inbound_message_aad(provider_id, "body")),
        "intent": meaning.intent.value,
        "appointment_ids": list(appointment_ids) if appointment_ids is not None else None,
        "received_at": received_at,
    }
    new_id = insert_returning_id(session, InboundMessage, values, ["provider_id"])
    if new_id is None:
        existing = session.execute(
            select(InboundMessage.id, InboundMessage.intent).where(
                InboundMessage.provider_id == provider_id
            )
        ).one()
        return StoredInbound(int(existing.id), created=False, intent=Intent(existing.intent))
    if meaning.opts_out or meaning.opts_in:
        record_consent(
            session,
            channel=message_channel,
            contact_digest=contact_digest,
            opted_out=meaning.opts_out,
            keyword=_keyword(body, meaning),
            source=ConsentSource.SMS
            if message_channel is MessageChannel.SMS
            else ConsentSource.EMAIL_LINK,
            now=received_at,
            inbound_message_id=new_id,
        )
    payload = {"intent": meaning.intent.value, "channel": message_channel.value}
    record_event(
        session,
        event_type=INBOUND_RECEIVED,
        resource_type=RESOURCE_TYPE,
        resource_id=str(new_id),
        at=received_at,
        payload=payload,
    )
    # Last: the audit append holds a lock until the transaction ends.
    record_access(
        session,
        Actor.system(f"inbound-{message_channel.value}"),
        "create",
        [f"{RESOURCE_TYPE}/{new_id}"],
        at=received_at,
        detail=payload,
    )
    return StoredInbound(new_id, created=True, intent=meaning.intent)


def _channel(channel: str) -> MessageChannel:
    try:
        return MessageChannel(channel)
    except ValueError:
        raise InputError(
            f"unknown channel {channel!r}; expected one of {', '.join(MessageChannel)}",
            where="inbound message",
        ) from None


def _keyword(body: str, meaning: Classified) -> str:
    """The keyword as evidence: the word the patient sent when it is one of ours (never free
    text, which may hold PHI), else the intent's name."""
    word = normalise(body)
    return word.upper() if word in KEYWORDS else meaning.intent.value.upper()
