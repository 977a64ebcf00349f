"""reminder-replies: act on what a patient answered to a reminder, never guessing.

Runs once per `inbound.received` event (the webhook or the reminder page stored the message
first). The answer applies to the visits the reminder listed: the page's link names them; a text
reply is matched to the latest reminder that asked this phone for a reply.
- C / YES / SI: each visit confirmed in the EHR (a write-back), and a thank-you text.
- X / CANCEL: each visit cancelled in the EHR (which raises `appointment.cancelled`), and a
  confirmation to the patient.
- R: a work item for the front desk with the patient's words, and a "we will call" text.
- free text (anything that is not one of the keywords): `message.received`, and message-triage
  screens it for red flags, routes it to its pool and tells the patient it arrived (with
  message-triage off or not installed, a front-desk work item instead); a keyword we cannot tie
  to a visit: a front-desk work item with the patient's words.
- Y / N to a waitlist offer (the newest thing this phone was asked, offer or reminder): Y
  claims the slot (`waitlist.claimed`; waitlist-backfill books it or says it was taken), N
  passes on it and leaves the patient on the list.
- STOP / START / HELP were settled when the message was stored (consent, the HELP answer).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from clinicflow.automations.reminders.templates import (
    ReminderContext,
    VisitLine,
    load_templates,
)
from clinicflow.automations.reminders.visits import contacts, person_names, place_names
from clinicflow.automations.waitlist.claims import claim, latest_offer_to
from clinicflow.channels.inbound import INBOUND_RECEIVED
from clinicflow.channels.link_secret import unsubscribe_link
from clinicflow.channels.replies import Intent, normalise
from clinicflow.clock import zone_or
from clinicflow.ehr.writeback import EHR_WRITE_BACK, Change, WriteBack
from clinicflow.engine import (
    Automation,
    Event,
    Priority,
    RunContext,
    Unit,
    ehr_write_key,
    message_key,
    record_event,
    switch_for,
    work_item_key,
)
from clinicflow.engine.payloads import MessageChannel, OutgoingMessage
from clinicflow.engine.states import EffectState
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import (
    InboundMessage,
    ReminderClaim,
    inbound_sender,
    inbound_text,
)
from clinicflow.store.replica import Appointment, Patient
from clinicflow.store.waitlist import WaitlistOffer

NAME = "reminder-replies"
FRONT_DESK = "front-desk"
# A text answers the latest reminder that asked for a reply within this window.
REPLY_WINDOW = timedelta(days=14)
# A "Y" answers a waitlist offer made within this window (offers end before their slot anyway).
OFFER_REPLY_WINDOW = timedelta(days=2)
NO_WORDS = frozenset({"n", "no"})
MESSAGE_RECEIVED = "message.received"
TRIAGE = "message-triage"
# Patient cancellation (HL7 appointment-cancellation-reason).
PATIENT_CANCELLED = "pat"
_ACKS = {
    Intent.CONFIRM: "sms-confirmed",
    Intent.CANCEL: "sms-cancelled",
    Intent.RESCHEDULE: "sms-reschedule",
}


def run(ctx: RunContext) -> None:
    """Handle one stored inbound message (idempotent: a handled message is left alone)."""
    event = ctx.trigger.event
    if event is None or event.type != INBOUND_RECEIVED:
        return
    message = ctx.session.get(InboundMessage, int(event.resource_id))
    if message is None or message.handled_at is not None:
        return
    intent = Intent(message.intent)
    outcome: dict[str, object] = {"intent": intent.value}
    if intent in (Intent.STOP, Intent.START, Intent.HELP):
        outcome["done"] = "consent recorded when stored"
    elif (offer := _offer_answered(ctx, message, intent)) is not None:
        outcome |= _answer_offer(ctx, message, intent, offer)
    else:
        visits = _visits_answered(ctx, message)
        outcome["visits"] = [v.fhir_id for v in visits]
        words = inbound_text(ctx.cipher, message)
        record_access(
            ctx.session,
            Actor.automation(NAME),
            "read",
            [f"InboundMessage/{message.id}", *{f"Patient/{v.patient_id}" for v in visits}],
            at=ctx.now,
        )
        if intent in (Intent.CONFIRM, Intent.CANCEL) and visits:
            for visit in visits:
                _write_back(ctx, intent, visit)
            if intent is Intent.CONFIRM:
                ctx.count("confirmation_received", len(visits))
            else:
                ctx.count("cancellation_received", len(visits))
            _acknowledge(ctx, message, intent, visits)
        elif intent is Intent.RESCHEDULE and visits:
            _ask_front_desk(ctx, message, visits, f"asked to reschedule: \u201c{words}\u201d")
            _acknowledge(ctx, message, intent, visits)
            ctx.count("reschedule_request", len(visits))
        else:
            if intent is Intent.OTHER:
                _to_triage(ctx, message, visits)
                outcome["triage"] = MESSAGE_RECEIVED
            if intent is not Intent.OTHER or not _triage_on(ctx):
                # A keyword no reminder asked for, or free text while message-triage is off
                # or not installed (nobody would route it): a person at the front desk reads it.
                why = (
                    f"sent a reply we did not act on: \u201c{words}\u201d"
                    if intent is Intent.OTHER
                    else f"answered \u201c{words}\u201d but no recent reminder asked them"
                )
                _ask_front_desk(ctx, message, visits, why)
            ctx.count("reply_for_staff")
    message.handled_at = ctx.now
    message.outcome = outcome


def _to_triage(ctx: RunContext, message: InboundMessage, visits: list[Appointment]) -> None:
    """`message.received`: message-triage screens free text for red flags and routes it."""
    patients = sorted({v.patient_id for v in visits if v.patient_id})
    record_event(
        ctx.session,
        event_type=MESSAGE_RECEIVED,
        resource_type="InboundMessage",
        resource_id=str(message.id),
        at=ctx.now,
        payload={
            "channel": message.channel,
            **({"patient_id": patients[0]} if len(patients) == 1 else {}),
            "appointments": [v.fhir_id for v in visits],
        },
    )


def _triage_on(ctx: RunContext) -> bool:
    """message-triage is loaded and not switched off: free text is its to route."""
    return TRIAGE in ctx.loaded and switch_for(ctx.session, TRIAGE).enabled


def _says_no(ctx: RunContext, message: InboundMessage) -> bool:
    return normalise(inbound_text(ctx.cipher, message)) in NO_WORDS


def _offer_answered(
    ctx: RunContext, message: InboundMessage, intent: Intent
) -> WaitlistOffer | None:
    """The waitlist offer a "Y" or "N" text answers: the newest offer to this phone, if no
    reminder has asked this phone for a reply since."""
    if message.channel != MessageChannel.SMS.value:
        return None
    if intent is not Intent.CONFIRM and not (intent is Intent.OTHER and _says_no(ctx, message)):
        return None
    offer = latest_offer_to(
        ctx.session,
        channel=MessageChannel.SMS.value,
        contact_digest=message.contact_digest,
        since=message.received_at - OFFER_REPLY_WINDOW,
    )
    if offer is None:
        return None
    asked_since = ctx.session.scalar(
        select(ReminderClaim.id)
        .where(
            ReminderClaim.contact_digest == message.contact_digest,
            ReminderClaim.channel == MessageChannel.SMS.value,
            ReminderClaim.asks_reply.is_(True),
            ReminderClaim.created_at > offer.offered_at,
        )
        .limit(1)
    )
    return offer if asked_since is None else None


def _answer_offer(
    ctx: RunContext, message: InboundMessage, intent: Intent, offer: WaitlistOffer
) -> dict[str, object]:
    record_access(
        ctx.session,
        Actor.automation(NAME),
        "read",
        [f"InboundMessage/{message.id}", f"Patient/{offer.patient_id}"],
        at=ctx.now,
    )
    ctx.count("waitlist_answer")
    if intent is Intent.CONFIRM:
        return {"waitlist_offer": offer.id, "claim": claim(ctx.session, offer.id, now=ctx.now)}
    if offer.state == "offered":
        offer.state = "declined"
        offer.answered_at = ctx.now
    return {"waitlist_offer": offer.id, "declined": True}


def _visits_answered(ctx: RunContext, message: InboundMessage) -> list[Appointment]:
    """Upcoming visits the message answers: the link's, or the latest reminder's that asked."""
    ids = list(message.appointment_ids or [])
    if not ids and message.channel == MessageChannel.SMS.value:
        latest = ctx.session.execute(
            select(ReminderClaim.effect_key)
            .join(Effect, Effect.key == ReminderClaim.effect_key)
            .where(
                ReminderClaim.contact_digest == message.contact_digest,
                ReminderClaim.channel == MessageChannel.SMS.value,
                ReminderClaim.asks_reply.is_(True),
                ReminderClaim.created_at >= message.received_at - REPLY_WINDOW,
                Effect.state == EffectState.DONE,
            )
            .order_by(Effect.finished_at.desc(), ReminderClaim.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if latest is not None:
            ids = list(
                ctx.session.scalars(
                    select(ReminderClaim.appointment_id).where(ReminderClaim.effect_key == latest)
                )
            )
    if not ids:
        return []
    rows = ctx.session.scalars(
        select(Appointment)
        .where(
            Appointment.fhir_id.in_(ids),
            Appointment.status.in_(("booked", "pending")),
            Appointment.start_at > ctx.now,
        )
        .order_by(Appointment.start_at)
    )
    return list(rows)


def _write_back(ctx: RunContext, intent: Intent, visit: Appointment) -> None:
    ref = f"Appointment/{visit.fhir_id}"
    if intent is Intent.CONFIRM:
        change = WriteBack(Change.CONFIRM, "Appointment", visit.fhir_id)
        what = "patient-confirmed"
    else:
        change = WriteBack(
            Change.SET_STATUS,
            "Appointment",
            visit.fhir_id,
            status="cancelled",
            reason_code=PATIENT_CANCELLED,
        )
        what = "status=cancelled"
    at = visit.start_at.isoformat() if visit.start_at else ""
    ctx.effects.record(
        EHR_WRITE_BACK,
        key=ehr_write_key(NAME, ref, f"{what}@{at}"),
        payload=change.to_payload(),
        summary=f"{what} {ref}",
        focus=ref,
    )


def _ask_front_desk(
    ctx: RunContext, message: InboundMessage, visits: list[Appointment], what: str
) -> None:
    patient = visits[0].patient_id if visits else None
    focus = f"Appointment/{visits[0].fhir_id}" if visits else f"InboundMessage/{message.id}"
    ctx.effects.open_work_item(
        key=work_item_key(NAME, "reply", f"InboundMessage/{message.id}"),
        description=f"A patient {what} (by {message.channel}).",
        pool=FRONT_DESK,
        priority=Priority.ROUTINE,
        focus=focus,
        for_ref=f"Patient/{patient}" if patient else None,
    )


def _acknowledge(
    ctx: RunContext, message: InboundMessage, intent: Intent, visits: list[Appointment]
) -> None:
    """A short text (or e-mail, for an answer on the reminder page) saying what we did."""
    patient_ids = sorted({v.patient_id for v in visits if v.patient_id})
    people = contacts(ctx.session, ctx.cipher, patient_ids)
    patient = ctx.session.get(Patient, patient_ids[0]) if patient_ids else None
    zone = zone_or(patient.time_zone if patient else None, ctx.zone)
    names = person_names(ctx.session, ctx.cipher, [v.practitioner_id or "" for v in visits])
    places = place_names(ctx.session, ctx.cipher, [v.location_id or "" for v in visits])
    first = people.get(patient_ids[0]) if patient_ids else None
    to, channel, unsubscribe = _reply_route(ctx, message, first.email if first else None)
    if to is None:
        return
    view = ReminderContext(
        language=(patient.language if patient else None) or "en",
        patient_first_name=first.first_name if first and len(patient_ids) == 1 else None,
        practice_name=ctx.settings.practice_name,
        practice_phone=ctx.settings.practice_phone,
        visits=[
            VisitLine(
                start_local=_start(v).astimezone(zone),
                practitioner=names.get(v.practitioner_id or ""),
                location=places.get(v.location_id or ""),
            )
            for v in visits
        ],
        asks_reply=False,
        unsubscribe_url=unsubscribe,
    )
    rendered = load_templates(ctx.settings).render(_ACKS[intent], view)
    ctx.effects.send(
        message_key(NAME, f"InboundMessage/{message.id}", intent.value),
        OutgoingMessage(
            channel=channel,
            to=to,
            body=rendered.text,
            subject=f"{ctx.settings.practice_name}: your appointment",
            for_ref=f"Patient/{patient_ids[0]}" if patient_ids else None,
            focus=f"Appointment/{visits[0].fhir_id}",
            unsubscribe_url=unsubscribe,
            zone=str(zone),
        ),
    )


def _start(visit: Appointment) -> datetime:
    # Only upcoming visits get here, and those were found by their start.
    return visit.start_at or datetime.min.replace(tzinfo=ZoneInfo("UTC"))


def _reply_route(
    ctx: RunContext, message: InboundMessage, email: str | None
) -> tuple[str | None, MessageChannel, str | None]:
    if message.channel == MessageChannel.SMS.value:
        return inbound_sender(ctx.cipher, message), MessageChannel.SMS, None
    if email is None:
        return None, MessageChannel.EMAIL, None
    digest = ctx.cipher.blind_index("email", email)
    link = unsubscribe_link(ctx.settings, ctx.cipher.ring, contact_digest=digest, now=ctx.now)
    return email, MessageChannel.EMAIL, link


AUTOMATION = Automation(
    name=NAME,
    summary="Confirm, cancel or pass to the front desk what patients answer to reminders",
    trigger=Event(INBOUND_RECEIVED),
    run=run,
    owner=FRONT_DESK,
    units=(
        # A confirmation the front desk did not have to phone for: about 3 minutes with
        # dialling and voicemail (CLINICFLOW_UNIT_MINUTES overrides it for the practice).
        Unit("confirmation_received", minutes_saved=3.0),
        # A cancellation by text frees the slot days earlier than a no-show would.
        Unit("cancellation_received", minutes_saved=3.0),
        Unit("reschedule_request", minutes_saved=1.0),
        Unit("reply_for_staff", minutes_saved=0.0),
        Unit("waitlist_answer", minutes_saved=0.0),
    ),
)
