"""Offering a freed slot to waiting patients, and telling them how their claim went (the shell).

Reads the replica (waitlist Appointments, patients' contacts, consent, earlier offers), asks
the pure rules whom to offer next, records the offers and sends them as effects. Every message
about a slot's offers has the focus `WaitlistSlot/{id}`, so once the slot is booked the offers
not yet sent are voided in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from clinicflow.automations.reminders.templates import ReminderContext, VisitLine, load_templates
from clinicflow.automations.reminders.visits import contacts, person_names, place_names
from clinicflow.automations.waitlist.claims import NewOffer, record_offers
from clinicflow.automations.waitlist.entries import FreedSlot, PatientId, WaitlistEntry
from clinicflow.automations.waitlist.freed import offer_deadline
from clinicflow.automations.waitlist.from_fhir import entry_from_appointment, with_contact
from clinicflow.automations.waitlist.rules import RankedEntry, RankingPolicy, rank
from clinicflow.channels.consent import opted_out_among
from clinicflow.channels.link_secret import claim_link, unsubscribe_link
from clinicflow.clock import zone_or
from clinicflow.engine import RunContext, message_key
from clinicflow.engine.payloads import MessageChannel, OutgoingMessage
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.settings import Settings
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import Appointment, FhirResource, Patient
from clinicflow.store.waitlist import FreedSlotRecord, WaitlistOffer

SLOT_FOCUS = "WaitlistSlot"
# Both waitlist automations send offers; their messages are keyed under one name, so an offer
# is one message whichever run sent it.
BACKFILL = "waitlist-backfill"


def offer_message_key(offer_id: int, what: str) -> str:
    """The effect key of a message about one offer: the offer, or an answer to its claim."""
    return message_key(BACKFILL, f"WaitlistOffer/{offer_id}", what)


@dataclass(frozen=True, slots=True)
class Reach:
    """How to reach one waiting patient: the channel, the address and its blind index."""

    channel: MessageChannel
    to: str
    digest: str
    first_name: str | None
    language: str
    zone: ZoneInfo


def policy_of(settings: Settings) -> RankingPolicy:
    """The ranking policy with the practice's recontact gap and lead time."""
    return RankingPolicy(
        recontact_after=timedelta(hours=settings.waitlist_recontact_hours),
        min_lead=timedelta(minutes=settings.waitlist_min_lead_minutes),
    )


def slot_of(record: FreedSlotRecord, zone: ZoneInfo) -> FreedSlot:
    """The pure slot a stored record describes."""
    return FreedSlot(
        start_at=record.start_at,
        minutes=record.minutes,
        practitioner_id=record.practitioner_id,
        specialty=record.specialty,
        location_id=record.location_id,
        visit_type=record.visit_type,
        zone=zone,
        slot_id=record.slot_id,
    )


def slot_focus(record: FreedSlotRecord) -> str:
    """What every message about this slot's offers is about (for voiding them at once)."""
    return f"{SLOT_FOCUS}/{record.id}"


def slot_is_free(ctx: RunContext, record: FreedSlotRecord) -> bool:
    """No visit in the replica holds the practitioner at the slot's time (staff may have
    booked it by phone, or the EHR may have rebooked the cancelled visit itself)."""
    end = record.start_at + timedelta(minutes=record.minutes)
    taken = ctx.session.scalar(
        select(func.count())
        .select_from(Appointment)
        .where(
            Appointment.practitioner_id == record.practitioner_id,
            Appointment.status.in_(("booked", "pending", "arrived", "checked-in")),
            Appointment.start_at < end,
            Appointment.end_at > record.start_at,
        )
    )
    return not taken


def send_wave(ctx: RunContext, record: FreedSlotRecord) -> int:
    """Offer the slot to the next best waiting patients; how many offers went out.

    Nobody is offered the same slot twice, nor the slot they have just given up.
    """
    policy = policy_of(ctx.settings)
    slot = slot_of(record, ctx.zone)
    skip = set(
        ctx.session.scalars(
            select(WaitlistOffer.patient_id).where(WaitlistOffer.slot_key == record.slot_key)
        )
    )
    freed_by = ctx.session.get(Appointment, record.freed_by)
    if freed_by is not None and freed_by.patient_id:
        skip.add(freed_by.patient_id)
    entries = [e for e in _candidates(ctx, slot) if e.patient_id not in skip]
    ways = _reach(ctx, [e.patient_id for e in entries])
    usable = [
        with_contact(
            e,
            channel=ways[e.patient_id][0].channel,
            opted_out=False,
            last_contacted_at=_last_offered(ctx, e.patient_id),
        )
        for e in entries
        if e.patient_id in ways
    ]
    chosen = _best_distinct(rank(usable, slot, now=ctx.now, policy=policy), ctx.settings)
    if not chosen:
        return 0
    # The way the entry asked for, while it can be used; else the patient's preferred one.
    reach = {
        r.entry.patient_id: next(
            (w for w in ways[r.entry.patient_id] if w.channel is r.entry.channel),
            ways[r.entry.patient_id][0],
        )
        for r in chosen
    }
    deadline = offer_deadline(slot, policy.min_lead)
    new = [
        NewOffer(
            r.entry.id,
            r.entry.patient_id,
            record.waves_sent,
            reach[r.entry.patient_id].channel.value,
            reach[r.entry.patient_id].digest,
        )
        for r in chosen
    ]
    ids = record_offers(
        ctx.session,
        key=record.slot_key,
        slot_start_at=record.start_at,
        offers=new,
        now=ctx.now,
        expires_at=deadline,
    )
    offers = list(ctx.session.scalars(select(WaitlistOffer).where(WaitlistOffer.id.in_(ids))))
    for offer in offers:
        _send_offer(ctx, record, offer, reach[PatientId(offer.patient_id)], deadline)
    record_access(
        ctx.session,
        Actor.automation(ctx.automation.name),
        "read",
        sorted({f"Patient/{o.patient_id}" for o in offers}),
        at=ctx.now,
        detail={"why": "waitlist offer", "slot": slot_focus(record)},
    )
    ctx.count("offer_sent", len(offers))
    return len(offers)


def _best_distinct(ranked: list[RankedEntry], settings: Settings) -> list[RankedEntry]:
    """The wave: the best `waitlist_wave_size` entries, one per patient."""
    seen: set[str] = set()
    chosen = []
    for candidate in ranked:
        if candidate.entry.patient_id in seen:
            continue
        seen.add(candidate.entry.patient_id)
        chosen.append(candidate)
        if len(chosen) == settings.waitlist_wave_size:
            break
    return chosen


def _candidates(ctx: RunContext, slot: FreedSlot) -> list[WaitlistEntry]:
    """Waitlist entries that may want this slot: for its practitioner or anyone, dates open."""
    day_on = slot.start_at.astimezone(slot.zone).date()
    rows = ctx.session.execute(
        select(FhirResource.fhir_id, FhirResource.body)
        .join(
            Appointment,
            (Appointment.fhir_id == FhirResource.fhir_id)
            & (FhirResource.resource_type == "Appointment"),
        )
        .where(
            Appointment.status == "waitlist",
            or_(
                Appointment.practitioner_id == slot.practitioner_id,
                Appointment.practitioner_id.is_(None),
            ),
            or_(Appointment.requested_start_on.is_(None), Appointment.requested_start_on <= day_on),
            or_(Appointment.requested_end_on.is_(None), Appointment.requested_end_on >= day_on),
        )
    )
    entries = []
    for fhir_id, body in rows:
        try:
            resource = open_body(ctx.cipher, body, "Appointment", fhir_id)
            entries.append(entry_from_appointment(resource, zone=slot.zone))
        except InputError as exc:
            ctx.logger.warning(
                "a waitlist entry cannot be read", extra={"where": exc.where, "why": str(exc)}
            )
    return entries


def _reach(ctx: RunContext, patient_ids: Sequence[str]) -> dict[PatientId, list[Reach]]:
    """The ways to reach each patient who can be reached, preferred first (telecom rank),
    opted-out channels left out; a patient with no way left out."""
    people = contacts(ctx.session, ctx.cipher, patient_ids)
    rows = {
        p.fhir_id: p
        for p in ctx.session.scalars(select(Patient).where(Patient.fhir_id.in_(patient_ids)))
    }
    sms = {pid: ctx.cipher.blind_index("phone", c.mobile) for pid, c in people.items() if c.mobile}
    mail = {pid: ctx.cipher.blind_index("email", c.email) for pid, c in people.items() if c.email}
    sms_out = opted_out_among(ctx.session, MessageChannel.SMS, sms.values())
    mail_out = opted_out_among(ctx.session, MessageChannel.EMAIL, mail.values())
    found: dict[PatientId, list[Reach]] = {}
    for pid, person in people.items():
        options: list[tuple[MessageChannel, str, str]] = []
        if person.mobile and sms[pid] not in sms_out:
            options.append((MessageChannel.SMS, person.mobile, sms[pid]))
        if person.email and mail[pid] not in mail_out:
            options.append((MessageChannel.EMAIL, person.email, mail[pid]))
        if not options:
            continue
        if person.prefers == "email":
            options.sort(key=lambda o: o[0] is not MessageChannel.EMAIL)
        row = rows.get(pid)
        found[PatientId(pid)] = [
            Reach(
                channel,
                to,
                digest,
                person.first_name,
                (row.language if row else None) or "en",
                zone_or(row.time_zone if row else None, ctx.zone),
            )
            for channel, to, digest in options
        ]
    return found


def _last_offered(ctx: RunContext, patient_id: str) -> datetime | None:
    return ctx.session.scalar(
        select(func.max(WaitlistOffer.offered_at)).where(WaitlistOffer.patient_id == patient_id)
    )


def _view(
    ctx: RunContext, record: FreedSlotRecord, reach: Reach, **links: str | None
) -> ReminderContext:
    names = person_names(ctx.session, ctx.cipher, [record.practitioner_id])
    places = place_names(ctx.session, ctx.cipher, [record.location_id])
    return ReminderContext(
        language=reach.language,
        patient_first_name=reach.first_name,
        practice_name=ctx.settings.practice_name,
        practice_phone=ctx.settings.practice_phone,
        visits=[
            VisitLine(
                start_local=record.start_at.astimezone(reach.zone),
                practitioner=names.get(record.practitioner_id),
                location=places.get(record.location_id),
            )
        ],
        asks_reply=reach.channel is MessageChannel.SMS,
        claim_url=links.get("claim_url"),
        unsubscribe_url=links.get("unsubscribe_url"),
    )


def _unsubscribe(ctx: RunContext, reach: Reach) -> str | None:
    if reach.channel is not MessageChannel.EMAIL:
        return None
    return unsubscribe_link(ctx.settings, ctx.cipher.ring, contact_digest=reach.digest, now=ctx.now)


def _send_offer(
    ctx: RunContext,
    record: FreedSlotRecord,
    offer: WaitlistOffer,
    reach: Reach,
    deadline: datetime,
) -> None:
    link = claim_link(
        ctx.settings, ctx.cipher.ring, offer_id=offer.id, contact_digest=reach.digest, now=ctx.now
    )
    unsubscribe = _unsubscribe(ctx, reach)
    view = _view(ctx, record, reach, claim_url=link, unsubscribe_url=unsubscribe)
    kind = "sms-slot-offer" if reach.channel is MessageChannel.SMS else "email-slot-offer"
    rendered = load_templates(ctx.settings).render(kind, view)
    ctx.effects.send(
        offer_message_key(offer.id, "offer"),
        OutgoingMessage(
            channel=reach.channel,
            to=reach.to,
            body=rendered.text,
            subject=rendered.subject,
            html=rendered.html,
            for_ref=f"Patient/{offer.patient_id}",
            focus=slot_focus(record),
            unsubscribe_url=unsubscribe,
            zone=str(reach.zone),
            # Held for quiet hours past this, it could no longer be taken: better not sent.
            not_after=deadline,
        ),
    )


def tell(ctx: RunContext, record: FreedSlotRecord, offer: WaitlistOffer, kind: str) -> bool:
    """Send one patient a slot-booked, slot-taken or slot-filled note; False if unreachable."""
    ways = _reach(ctx, [offer.patient_id]).get(PatientId(offer.patient_id), [])
    # The way the offer went, while it can still be used; else the patient's preferred one.
    reach = next((w for w in ways if w.channel.value == offer.channel), ways[0] if ways else None)
    if reach is None:
        return False
    view = _view(ctx, record, reach, unsubscribe_url=_unsubscribe(ctx, reach))
    rendered = load_templates(ctx.settings).render(kind, view)
    ctx.effects.send(
        offer_message_key(offer.id, kind),
        OutgoingMessage(
            channel=reach.channel,
            to=reach.to,
            body=rendered.text,
            subject=f"{ctx.settings.practice_name}: the appointment we offered",
            for_ref=f"Patient/{offer.patient_id}",
            # Not the slot's focus: booking the slot voids unsent offers, not these answers.
            focus=f"WaitlistOffer/{offer.id}",
            unsubscribe_url=view.unsubscribe_url,
            zone=str(reach.zone),
        ),
    )
    return True
