"""message-triage and urgent-escalation: every patient message to its pool, urgent ones to a
person at once, nothing clinical answered by the machine.

message-triage runs for `message.received` (a free-text reply to a reminder, a portal
Communication from the sync, a message posted to the API), the events that arrive together in
one run. It copies the message into
`triage_messages`, decides (`decide.py`), opens a work item in the pool with the pool's due
time, and sends the patient the pool's template (`replies.py`) by the way the message came. An
urgent message's work item is priority stat; the ladder's first step is texted at once and the
on-screen alarm shows it to signed-in nurses. urgent-escalation runs every minute and texts the
next step for each urgent message nobody has taken within `triage_escalate_minutes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from clinicflow.automations.reminders.visits import contacts
from clinicflow.automations.replies import MESSAGE_RECEIVED
from clinicflow.automations.triage.decide import Decision, Triage, default_triage
from clinicflow.automations.triage.escalation import alert, practice_ladder, stop_ladder, taken
from clinicflow.automations.triage.intake import message_for_event, text_of
from clinicflow.automations.triage.pools import answer_within
from clinicflow.automations.triage.replies import Reply, compose, load_templates
from clinicflow.clock import zone_or
from clinicflow.ehr.writeback import EHR_WRITE_BACK, Change, WriteBack
from clinicflow.engine import (
    Automation,
    Event,
    MessageChannel,
    OutgoingMessage,
    Priority,
    Purpose,
    RunContext,
    Schedule,
    Unit,
    ehr_write_key,
    message_key,
    work_item_key,
)
from clinicflow.security.audit import Actor, record_access
from clinicflow.settings import Settings
from clinicflow.store.messaging import InboundMessage, inbound_sender
from clinicflow.store.replica import Patient
from clinicflow.store.triage import TriageMessage

NAME = "message-triage"
ESCALATION = "urgent-escalation"
QUOTE_LIMIT = 600  # characters of the patient's words in the work item's description


def triage_for(settings: Settings) -> Triage:
    """The decision the automation and `clinicflow triage classify` both use."""
    path = settings.triage_red_flags
    models = settings.triage_model_dir or settings.data_dir / "models"
    return default_triage(str(path) if path else None, models)


def run(ctx: RunContext) -> None:
    """Triage the run's messages (idempotent: a triaged message is left alone)."""
    messages = []
    for event in ctx.trigger.events:
        if event.type != MESSAGE_RECEIVED:
            continue
        message = message_for_event(ctx.session, ctx.cipher, event)
        if message is None:
            ctx.logger.warning(
                "%s/%s is gone or holds no words", event.resource_type, event.resource_id
            )
        elif message.triaged_at is None:
            messages.append(message)
    if not messages:
        return
    texts = [text_of(ctx.cipher, m) for m in messages]
    decisions = triage_for(ctx.settings).decide_many(texts)
    record_access(
        ctx.session,
        Actor.automation(NAME),
        "read",
        [ref for m in messages for ref in (f"TriageMessage/{m.id}", _patient_ref(m)) if ref],
        at=ctx.now,
        detail={"messages": len(messages), "urgent": sum(d.urgent for d in decisions)},
    )
    ladder = practice_ladder(ctx.session, ctx.now) if any(d.urgent for d in decisions) else []
    for message, text, decision in zip(messages, texts, decisions, strict=True):
        _route(ctx, message, text, decision, ladder)


def _route(
    ctx: RunContext,
    message: TriageMessage,
    text: str,
    decision: Decision,
    ladder: Sequence[Sequence[str]],
) -> None:
    """Keep the decision, open the work item, alert for an urgent one, answer the patient."""
    due = message.received_at + answer_within(decision.pool, ctx.settings.triage_service_minutes)
    key = work_item_key(NAME, "message", message.source_ref)
    message.pool, message.urgent = decision.pool, decision.urgent
    message.triaged_at = ctx.now
    message.work_item_key = key
    ctx.effects.open_work_item(
        key=key,
        description=_description(message, decision, text),
        pool=decision.pool,
        priority=Priority.STAT if decision.urgent else Priority.ROUTINE,
        due_at=due,
        focus=f"TriageMessage/{message.id}",
        for_ref=_patient_ref(message),
    )
    ctx.count("message_routed")
    kept = decision.to_json()
    if decision.urgent:
        kept["alerted"] = alert(ctx, message, 0, ladder)
        ctx.count("urgent_escalated")
    reply = _reply(ctx, message, decision, due)
    if reply is not None:
        kept["reply"] = reply.kind
    message.decision = kept


def _patient_ref(message: TriageMessage) -> str | None:
    return f"Patient/{message.patient_id}" if message.patient_id else None


def _description(message: TriageMessage, decision: Decision, text: str) -> str:
    quoted = text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "\u2026"
    head = (
        f"URGENT \u2014 possible emergency ({', '.join(decision.red_flags) or 'classifier'})"
        if decision.urgent
        else f"A {message.channel} message for {decision.pool}"
    )
    return f"{head}: \u201c{quoted}\u201d Why: {'; '.join(decision.reasons)}."


def _reply(
    ctx: RunContext, message: TriageMessage, decision: Decision, due: datetime
) -> Reply | None:
    """The pool's template, back the way the message came (a portal reply goes to the EHR)."""
    patient = ctx.session.get(Patient, message.patient_id) if message.patient_id else None
    zone = zone_or(patient.time_zone if patient else None, ctx.zone)
    reply = compose(
        load_templates(ctx.settings.triage_templates),
        pool=decision.pool,
        language=message.language,
        practice=ctx.settings.practice_name,
        phone=ctx.settings.practice_phone,
        due_local=due.astimezone(zone),
        booking_link=ctx.settings.self_scheduling_url,
    )
    if message.channel == "portal":
        _portal_reply(ctx, message, reply)
        ctx.count("acknowledgement_sent")
        return reply
    route = _reply_to(ctx, message)
    if route is None:
        return None
    channel, to = route
    ctx.effects.send(
        message_key(NAME, f"TriageMessage/{message.id}", reply.kind),
        OutgoingMessage(
            channel=channel,
            to=to,
            body=reply.text,
            subject=f"{ctx.settings.practice_name}: we received your message",
            for_ref=_patient_ref(message),
            focus=f"TriageMessage/{message.id}",
            zone=str(zone),
            purpose=Purpose.REPLY,
        ),
    )
    ctx.count("acknowledgement_sent")
    return reply


def _reply_to(ctx: RunContext, message: TriageMessage) -> tuple[MessageChannel, str] | None:
    """Where the reply goes: the text's or e-mail's sender, else the patient's best contact."""
    kind, _, ident = message.source_ref.partition("/")
    if kind == "InboundMessage":
        inbound = ctx.session.get(InboundMessage, int(ident))
        if inbound is not None:
            return MessageChannel(inbound.channel), inbound_sender(ctx.cipher, inbound)
    if message.patient_id is None:
        return None
    contact = contacts(ctx.session, ctx.cipher, [message.patient_id]).get(message.patient_id)
    if contact is None:
        return None
    if contact.mobile and contact.prefers != "email":
        return MessageChannel.SMS, contact.mobile
    if contact.email:
        return MessageChannel.EMAIL, contact.email
    return (MessageChannel.SMS, contact.mobile) if contact.mobile else None


def _portal_reply(ctx: RunContext, message: TriageMessage, reply: Reply) -> None:
    """A Communication in the portal thread, written to the EHR."""
    fhir_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"clinicflow:{message.source_ref}:{reply.kind}"))
    resource = {
        "resourceType": "Communication",
        "id": fhir_id,
        "status": "completed",
        "inResponseTo": [{"reference": message.source_ref}],
        "sent": ctx.now.isoformat(),
        "sender": {"display": ctx.settings.practice_name},
        "payload": [{"contentString": reply.text}],
    }
    if (patient := _patient_ref(message)) is not None:
        resource["subject"] = {"reference": patient}
        resource["recipient"] = [{"reference": patient}]
    change = WriteBack(Change.CREATE, "Communication", fhir_id, resource=resource)
    ctx.effects.record(
        EHR_WRITE_BACK,
        key=ehr_write_key(NAME, message.source_ref, reply.kind),
        payload=change.to_payload(),
        summary=f"{reply.kind} reply in the portal to {message.source_ref}",
        focus=f"Communication/{fhir_id}",
    )


def escalate(ctx: RunContext) -> None:
    """Text the next step of the ladder for each urgent message nobody has taken in time."""
    waiting = ctx.session.scalars(
        select(TriageMessage)
        .where(
            TriageMessage.urgent.is_(True),
            TriageMessage.acknowledged_at.is_(None),
            TriageMessage.next_escalation_at <= ctx.now,
        )
        .order_by(TriageMessage.received_at)
        .limit(200)
    )
    ladder: list[list[str]] | None = None
    for message in waiting:
        took = taken(ctx.session, message)
        if took is not None:
            by, at = took
            stop_ladder(message, by=by, at=at)
            continue
        if ladder is None:
            ladder = practice_ladder(ctx.session, ctx.now)
        alert(ctx, message, message.escalation_level, ladder)
        ctx.count("urgent_escalated")


AUTOMATION = Automation(
    name=NAME,
    summary="Route every patient message to its pool; urgent ones to a person at once",
    # Coalesced: the messages that arrive together are decided together (one classifier
    # call, one transaction), so a busy morning does not queue one run per message.
    trigger=Event(MESSAGE_RECEIVED, coalesce=True),
    run=run,
    owner="nurses",
    units=(
        # Reading a message in the shared inbox and passing it to the right person: about 2
        # minutes (CLINICFLOW_UNIT_MINUTES overrides it for the practice).
        Unit("message_routed", minutes_saved=2.0),
        # The "we got your message, expect an answer by ..." a person would otherwise type.
        Unit("acknowledgement_sent", minutes_saved=1.0),
        Unit("urgent_escalated", minutes_saved=0.0),
        Unit("urgent_alert", minutes_saved=0.0),
    ),
)

ESCALATION_AUTOMATION = Automation(
    name=ESCALATION,
    summary="Alert the next person on the rota about urgent messages nobody has taken",
    trigger=Schedule("* * * * *"),
    run=escalate,
    owner="nurses",
    units=(
        Unit("urgent_escalated", minutes_saved=0.0),
        Unit("urgent_alert", minutes_saved=0.0),
    ),
)
