"""waitlist-backfill, waitlist-waves: offer freed slots to the waitlist, book the first claim.

- `waitlist-backfill` runs once per event. On `appointment.cancelled` or `appointment.rescheduled`
  it records the freed slot and sends the first wave of offers; on `waitlist.claimed` (a claim
  won or lost, settled by the claim page or a "Y" text) it books the slot in the EHR, confirms
  to the patient, tells the others and voids offers not yet sent.
- `waitlist-waves` runs every five minutes: the next wave for each open slot whose wave is due,
  until the slot is booked, comes within the lead time, or the waves run out; then a work item
  asks the front desk to fill the slot by phone. It also finds bookings the EHR refused (the
  entry was no longer on the waitlist): the patient was told the slot was theirs, so an urgent
  work item asks the front desk to book it by hand or call them.

The claim itself is settled where the patient answers (`claims.claim_offer`, a unique booking
row per slot), so two claims at the same instant book exactly one patient.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from clinicflow.automations.waitlist.claims import WAITLIST_CLAIMED, slot_key
from clinicflow.automations.waitlist.freed import (
    CANCELLED,
    RESCHEDULED,
    ChangedVisit,
    freed_slot,
    visit_value_cents,
)
from clinicflow.automations.waitlist.offers import (
    BACKFILL,
    offer_message_key,
    policy_of,
    send_wave,
    slot_focus,
    slot_is_free,
    tell,
)
from clinicflow.clock import local_text
from clinicflow.ehr.writeback import EHR_WRITE_BACK, Change, WriteBack, booking
from clinicflow.engine import (
    Automation,
    Event,
    EventInfo,
    Priority,
    RunContext,
    Schedule,
    Unit,
    ehr_write_key,
    work_item_key,
)
from clinicflow.engine.effects import void_pending
from clinicflow.engine.states import EffectState
from clinicflow.store.conflicts import upsert_insert
from clinicflow.store.engine import Effect
from clinicflow.store.replica import Appointment
from clinicflow.store.schedule_queries import practitioner_names
from clinicflow.store.waitlist import FreedSlotRecord, WaitlistOffer

NAME = BACKFILL
WAVES_NAME = "waitlist-waves"
FRONT_DESK = "front-desk"

OPEN, BOOKED, UNFILLED, CLOSED = "open", "booked", "unfilled", "closed"


def run_backfill(ctx: RunContext) -> None:
    """One event: a slot freed, or a claim settled."""
    event = ctx.trigger.event
    if event is None:
        return
    if event.type in (CANCELLED, RESCHEDULED):
        _open_freed_slot(ctx, event)
    elif event.type == WAITLIST_CLAIMED:
        _settle(ctx, event)


def run_waves(ctx: RunContext) -> None:
    """Every open slot whose next wave is due: the next wave, or the end of its backfill."""
    due = ctx.session.scalars(
        select(FreedSlotRecord)
        .where(FreedSlotRecord.state == OPEN, FreedSlotRecord.next_wave_at <= ctx.now)
        .order_by(FreedSlotRecord.start_at)
        .with_for_update(skip_locked=True)
    )
    for record in due:
        _advance(ctx, record)
    _check_bookings(ctx)


# A booking the EHR has not shown within this long after its write-back finished was refused.
BOOKING_CHECK_WINDOW = timedelta(days=2)


def _check_bookings(ctx: RunContext) -> None:
    """A work item for each booked slot whose write-back finished but whose entry is still not
    booked (the EHR refused it, or it failed): the patient was told the slot is theirs."""
    recent = ctx.session.scalars(
        select(FreedSlotRecord).where(
            FreedSlotRecord.state == BOOKED,
            FreedSlotRecord.closed_at >= ctx.now - BOOKING_CHECK_WINDOW,
        )
    )
    for record in recent:
        if record.booked_entry_id is None:
            continue
        ref = f"Appointment/{record.booked_entry_id}"
        effect = ctx.session.scalar(select(Effect).where(Effect.key == _booking_key(ref, record)))
        if effect is None or effect.state not in (EffectState.DONE, EffectState.FAILED):
            continue
        entry = ctx.session.get(Appointment, record.booked_entry_id)
        if entry is not None and entry.status == "booked" and entry.start_at == record.start_at:
            continue
        asked = ctx.effects.open_work_item(
            key=work_item_key(NAME, "booking-refused", slot_focus(record)),
            description=(
                f"A waitlist patient took the {local_text(record.start_at, ctx.settings.timezone)} "
                "slot and was told it is theirs, but the EHR does not show the booking "
                f"(write-back {effect.state}). Book it by hand or call the patient."
            ),
            pool=FRONT_DESK,
            priority=Priority.URGENT,
            due_at=record.start_at,
            focus=ref,
        )
        if asked.created:  # looked at again on later runs, asked once
            ctx.count("booking_refused")


def _booking_key(ref: str, record: FreedSlotRecord) -> str:
    return ehr_write_key(NAME, ref, f"book@{record.start_at.isoformat()}")


def _open_freed_slot(ctx: RunContext, event: EventInfo) -> None:
    row = ctx.session.get(Appointment, event.resource_id)
    if row is None:
        return
    visit = ChangedVisit(
        fhir_id=row.fhir_id,
        status=row.status,
        start_at=row.start_at,
        minutes=row.minutes,
        practitioner_id=row.practitioner_id,
        location_id=row.location_id,
        service_type=row.service_type,
        appointment_type=row.appointment_type,
        slot_id=row.slot_id,
    )
    slot = freed_slot(visit, event.type, event.payload, zone=ctx.zone, now=ctx.now)
    if slot is None:
        return
    # The visit that freed it is part of the key: the same time freed again later (the
    # backfilled patient cancels too) is a new slot to fill, not the old one replayed.
    key = f"{slot_key(slot.practitioner_id, slot.start_at, slot.slot_id)}#{row.fhir_id}"
    new_id = ctx.session.execute(
        upsert_insert(ctx.session, FreedSlotRecord)
        .values(
            slot_key=key,
            freed_by=row.fhir_id,
            practitioner_id=slot.practitioner_id,
            location_id=slot.location_id,
            specialty=slot.specialty,
            visit_type=slot.visit_type,
            slot_id=slot.slot_id,
            start_at=slot.start_at,
            minutes=slot.minutes,
            freed_at=ctx.now,
            state=OPEN,
            waves_sent=0,
            next_wave_at=ctx.now,
            value_cents=0,
        )
        .on_conflict_do_nothing(index_elements=["slot_key"])
        .returning(FreedSlotRecord.id)
    ).scalar_one_or_none()
    if new_id is None:
        return  # this change was handled already
    record = ctx.session.get(FreedSlotRecord, new_id)
    if record is not None:
        ctx.count("slot_freed")
        _advance(ctx, record)


def _advance(ctx: RunContext, record: FreedSlotRecord) -> None:
    """Send the next wave, or end the backfill and say why."""
    policy = policy_of(ctx.settings)
    deadline = record.start_at - policy.min_lead
    if not slot_is_free(ctx, record):
        _close(ctx, record, CLOSED, "the time was booked in the EHR")
        return
    if ctx.now >= deadline:
        _close(ctx, record, UNFILLED, "it is now too close to its start for waitlist offers")
        return
    if record.waves_sent >= ctx.settings.waitlist_max_waves:
        waves = record.waves_sent
        _close(ctx, record, UNFILLED, f"nobody took it after {waves} wave(s) of offers")
        return
    sent = send_wave(ctx, record)
    gap = timedelta(minutes=ctx.settings.waitlist_wave_gap_minutes)
    if sent:
        record.waves_sent += 1
    elif record.waves_sent == 0:
        _close(ctx, record, UNFILLED, "nobody on the waitlist fits it")
        return
    else:
        # Nobody left to offer: wait one gap for the answers already out, then stop.
        record.waves_sent = ctx.settings.waitlist_max_waves
    record.next_wave_at = min(ctx.now + gap, deadline)


def _close(ctx: RunContext, record: FreedSlotRecord, state: str, why: str) -> None:
    record.state = state
    record.closed_at = ctx.now
    record.closed_why = why
    record.next_wave_at = None
    void_pending(
        ctx.session, slot_focus(record), reason=f"the slot's backfill ended: {why}", now=ctx.now
    )
    _close_offers(ctx, record)
    if state == UNFILLED:
        ctx.count("slot_unfilled")
        if record.start_at > ctx.now:
            _ask_front_desk(ctx, record, why)


def _close_offers(ctx: RunContext, record: FreedSlotRecord) -> list[WaitlistOffer]:
    """Offers of this slot nobody answered, now closed; those whose message went out."""
    open_offers = list(
        ctx.session.scalars(
            select(WaitlistOffer).where(
                WaitlistOffer.slot_key == record.slot_key, WaitlistOffer.state == "offered"
            )
        )
    )
    if not open_offers:
        return []
    ctx.session.execute(
        update(WaitlistOffer)
        .where(WaitlistOffer.id.in_([o.id for o in open_offers]))
        .values(state="closed", answered_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    sent_keys = set(
        ctx.session.scalars(
            select(Effect.key).where(
                Effect.focus == slot_focus(record), Effect.state == EffectState.DONE
            )
        )
    )
    return [o for o in open_offers if offer_message_key(o.id, "offer") in sent_keys]


def _ask_front_desk(ctx: RunContext, record: FreedSlotRecord, why: str) -> None:
    names = practitioner_names(ctx.session, ctx.cipher, [record.practitioner_id])
    who = names.get(record.practitioner_id, "the practitioner")
    when = local_text(record.start_at, ctx.settings.timezone)
    ctx.effects.open_work_item(
        key=work_item_key(NAME, "unfilled", slot_focus(record)),
        description=(
            f"A freed {record.minutes}-minute slot on {when} with {who} is still open: {why}. "
            "Fill it by phone, or leave it."
        ),
        pool=FRONT_DESK,
        priority=Priority.ROUTINE,
        due_at=record.start_at,
        focus=f"Appointment/{record.freed_by}",
    )


def _settle(ctx: RunContext, event: EventInfo) -> None:
    offer = ctx.session.get(WaitlistOffer, int(event.resource_id))
    if offer is None:
        return
    record = ctx.session.scalar(
        select(FreedSlotRecord).where(FreedSlotRecord.slot_key == offer.slot_key)
    )
    if record is None:
        return
    outcome = event.payload.get("outcome")
    if outcome == "booked":
        _book(ctx, record, offer)
    elif outcome == "taken":
        tell(ctx, record, offer, "slot-taken")
    elif outcome == "expired":
        ctx.effects.open_work_item(
            key=work_item_key(NAME, "late-claim", f"WaitlistOffer/{offer.id}"),
            description=(
                f"A waitlist patient answered yes after their offer of "
                f"{local_text(record.start_at, ctx.settings.timezone)} had ended "
                f"(the slot is {record.state}). Call them if it can still work."
            ),
            pool=FRONT_DESK,
            focus=f"Appointment/{offer.entry_id}",
            for_ref=f"Patient/{offer.patient_id}",
        )


def _book(ctx: RunContext, record: FreedSlotRecord, offer: WaitlistOffer) -> None:
    if record.state == BOOKED:
        return  # settled already (the same claim twice: a second tap, a retried webhook)
    end = record.start_at + timedelta(minutes=record.minutes)
    ref = f"Appointment/{offer.entry_id}"
    change = WriteBack(
        Change.BOOK,
        "Appointment",
        offer.entry_id,
        status="booked",
        resource=booking(
            start=record.start_at,
            end=end,
            practitioner_id=record.practitioner_id,
            location_id=record.location_id,
            slot_id=record.slot_id,
        ),
    )
    ctx.effects.record(
        EHR_WRITE_BACK,
        key=_booking_key(ref, record),
        payload=change.to_payload(),
        summary=f"book {ref} into a freed slot",
        focus=ref,
    )
    record.state = BOOKED
    record.booked_entry_id = offer.entry_id
    record.closed_at = ctx.now
    record.closed_why = "booked by a waitlist patient"
    record.next_wave_at = None
    record.value_cents = visit_value_cents(record.visit_type, ctx.settings.visit_values)
    void_pending(ctx.session, slot_focus(record), reason="the slot was booked", now=ctx.now)
    tell(ctx, record, offer, "slot-booked")
    for other in _close_offers(ctx, record):
        tell(ctx, record, other, "slot-filled")
    ctx.count("slot_filled")


UNITS = (
    Unit("slot_freed", minutes_saved=0.0),
    Unit("offer_sent", minutes_saved=0.0),
    # Filling a slot by hand: a few calls down the waitlist at ~3 minutes each, plus booking.
    Unit("slot_filled", minutes_saved=15.0),
    Unit("slot_unfilled", minutes_saved=0.0),
    Unit("booking_refused", minutes_saved=0.0),
)

AUTOMATION = Automation(
    name=NAME,
    summary="Offer slots freed by cancellations to waitlist patients; book the first who claims",
    trigger=Event(CANCELLED, also=(RESCHEDULED, WAITLIST_CLAIMED)),
    run=run_backfill,
    owner=FRONT_DESK,
    units=UNITS,
)

WAVES = Automation(
    name=WAVES_NAME,
    summary="Send the next wave of waitlist offers; hand unfilled slots to the front desk",
    trigger=Schedule("*/5 * * * *"),
    run=run_waves,
    owner=FRONT_DESK,
    units=UNITS,
)
