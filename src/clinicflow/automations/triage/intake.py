"""Messages into `triage_messages`: from a text or e-mail, a portal Communication, or the API.

A text or e-mail was stored by `channels.inbound` before its webhook answered; a portal message
by the sync, in the replica. Triage copies the words into its own row (encrypted, bound to the
source) with the patient, language and thread, in the same transaction as its decision. A
message posted to the API has no other home, so `post_message` stores it (and its
`message.received` event) before the API answers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.automations.replies import MESSAGE_RECEIVED
from clinicflow.automations.triage.text import guess_language
from clinicflow.engine.events import EventInfo, record_event
from clinicflow.engine.upsert import insert_returning_id
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.store.bodies import read_body
from clinicflow.store.messaging import InboundMessage, inbound_text
from clinicflow.store.replica import Communication, Patient
from clinicflow.store.triage import TriageMessage, triage_body_aad

MAX_POSTED = 10_000  # characters a posted message may have


def text_of(cipher: PhiCipher, row: TriageMessage) -> str:
    """The message's words."""
    return cipher.decrypt(row.body_enc, triage_body_aad(row.source_ref)).decode()


def _language(session: Session, patient_id: str | None, text: str) -> str:
    patient = session.get(Patient, patient_id) if patient_id else None
    if patient is not None and patient.language:
        return patient.language.split("-")[0].lower()
    return guess_language(text)


def _store(
    session: Session,
    cipher: PhiCipher,
    *,
    source_ref: str,
    channel: str,
    text: str,
    patient_id: str | None,
    thread_ref: str | None,
    received_at: datetime,
    language: str | None = None,
) -> TriageMessage:
    values: dict[str, Any] = {
        "source_ref": source_ref,
        "channel": channel,
        "patient_id": patient_id,
        "language": language or _language(session, patient_id, text),
        "thread_ref": thread_ref,
        "body_enc": cipher.encrypt(text.encode(), triage_body_aad(source_ref)),
        "received_at": received_at,
        "urgent": False,
        "escalation_level": 0,
    }
    insert_returning_id(session, TriageMessage, values, ["source_ref"])
    return session.scalars(
        select(TriageMessage).where(TriageMessage.source_ref == source_ref)
    ).one()  # inserted now or before


def _communication_text(resource: dict[str, Any]) -> str:
    parts = [
        str(p["contentString"])
        for p in resource.get("payload") or ()
        if isinstance(p, dict) and p.get("contentString")
    ]
    return "\n".join(parts)


def message_for_event(
    session: Session, cipher: PhiCipher, event: EventInfo
) -> TriageMessage | None:
    """The triage row of the message an event is about (made from its source the first time);
    None when the source is gone."""
    if event.resource_type == "TriageMessage":  # posted to the API: stored already
        return session.get(TriageMessage, int(event.resource_id))
    ref = f"{event.resource_type}/{event.resource_id}"
    found = session.scalar(select(TriageMessage).where(TriageMessage.source_ref == ref))
    if found is not None:
        return found
    if event.resource_type == "InboundMessage":
        inbound = session.get(InboundMessage, int(event.resource_id))
        if inbound is None:
            return None
        text = inbound_text(cipher, inbound)
        patient = event.payload.get("patient_id")
        return _store(
            session,
            cipher,
            source_ref=ref,
            channel=inbound.channel,
            text=text,
            patient_id=str(patient) if patient else None,
            thread_ref=None,
            received_at=inbound.received_at,
        )
    if event.resource_type == "Communication":
        row = session.get(Communication, event.resource_id)
        resource = read_body(session, cipher, "Communication", event.resource_id)
        if row is None or resource is None:
            return None
        return _store(
            session,
            cipher,
            source_ref=ref,
            channel="portal",
            text=_communication_text(resource),
            patient_id=row.patient_id,
            thread_ref=f"Communication/{row.in_response_to}" if row.in_response_to else None,
            received_at=row.sent_at or row.received_at or event.occurred_at,
        )
    return None


def post_message(
    session: Session,
    cipher: PhiCipher,
    *,
    text: str,
    patient_id: str | None,
    language: str | None,
    thread_ref: str | None,
    by: Actor,
    now: datetime,
) -> int:
    """Store a message posted to the API and raise `message.received`; returns its id."""
    if not text.strip():
        raise InputError("the message has no text", where="text", code="triage.empty")
    if len(text) > MAX_POSTED:
        raise InputError(
            f"the message is longer than {MAX_POSTED} characters", where="text", code="triage.long"
        )
    if patient_id is not None and session.get(Patient, patient_id) is None:
        raise InputError(
            f"there is no Patient/{patient_id} in the replica",
            where="patient",
            code="triage.patient",
        )
    row = _store(
        session,
        cipher,
        source_ref=f"api/{uuid.uuid4().hex}",
        channel="api",
        text=text,
        patient_id=patient_id,
        thread_ref=thread_ref,
        received_at=now,
        language=language,
    )
    record_event(
        session,
        event_type=MESSAGE_RECEIVED,
        resource_type="TriageMessage",
        resource_id=str(row.id),
        at=now,
        payload={"channel": "api"},
    )
    record_access(
        session,
        by,
        "create",
        [f"TriageMessage/{row.id}", *([f"Patient/{patient_id}"] if patient_id else [])],
        at=now,
    )
    return row.id
