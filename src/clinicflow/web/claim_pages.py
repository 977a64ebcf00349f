"""The page behind a waitlist offer's link: see the freed slot, take it with one button.

Like the reminder pages: no login (the signed link is the permission, for one offer), opening
the page changes nothing (mail scanners fetch links), and the answer is `no-store`. Pressing the
button stores the answer as an inbound message, then settles the claim in the same transaction
(`claims.claim`: the slot's one booking row decides), so the patient is told at once whether the
slot is theirs; booking it in the EHR and the confirmation follow from `waitlist.claimed`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.automations.waitlist.claims import claim
from clinicflow.channels.inbound import store_inbound
from clinicflow.channels.link_secret import read_claim_link
from clinicflow.channels.replies import Classified, Intent
from clinicflow.engine.payloads import MessageChannel
from clinicflow.errors import InputError
from clinicflow.security.audit import record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.store.messaging import InboundMessage
from clinicflow.store.schedule_queries import practitioner_names
from clinicflow.store.waitlist import FreedSlotRecord, SlotBooking, WaitlistOffer
from clinicflow.web.auth import public
from clinicflow.web.health import State
from clinicflow.web.patient_pages import (
    AUDIT_ACTOR,
    FormFields,
    PatientKeyring,
    inbound_provider_id,
    link_problem,
    location_names,
    notice,
    render_page,
    starts_local_text,
)

router = APIRouter(
    include_in_schema=False,
    dependencies=[Depends(public("patients: the signed, expiring offer link is the credential"))],
)


class OfferState(StrEnum):
    """Where an offer stands, as the patient is told."""

    OPEN = "open"
    YOURS = "yours"
    TAKEN = "taken"
    ENDED = "ended"


def offer_state(offer: WaitlistOffer, booked_by: int | None, now: datetime) -> OfferState:
    """What the patient holding this offer's link may do now (pure)."""
    if booked_by == offer.id:
        return OfferState.YOURS
    if booked_by is not None or offer.state in ("taken", "closed"):
        return OfferState.TAKEN
    if offer.state != "offered" or now >= offer.expires_at:
        return OfferState.ENDED
    return OfferState.OPEN


def _offer(session: Session, offer_id: int) -> tuple[WaitlistOffer, FreedSlotRecord] | None:
    offer = session.get(WaitlistOffer, offer_id)
    if offer is None:
        return None
    record = session.scalar(
        select(FreedSlotRecord).where(FreedSlotRecord.slot_key == offer.slot_key)
    )
    return None if record is None else (offer, record)


def _page(
    request: Request,
    state: State,
    session: Session,
    cipher: PhiCipher,
    offer: WaitlistOffer,
    record: FreedSlotRecord,
    now: datetime,
) -> HTMLResponse:
    booked_by = session.scalar(
        select(SlotBooking.offer_id).where(SlotBooking.slot_key == offer.slot_key)
    )
    who = practitioner_names(session, cipher, [record.practitioner_id])
    where = location_names(session, cipher, [record.location_id])
    record_access(
        session,
        AUDIT_ACTOR,
        "read",
        [f"WaitlistOffer/{offer.id}"],
        at=now,
        detail={"page": "claim"},
        index=[f"WaitlistOffer/{offer.id}", f"Patient/{offer.patient_id}"],
    )
    return render_page(
        request,
        state,
        "patient_claim.html",
        {
            "state": offer_state(offer, booked_by, now).value,
            "starts_local": starts_local_text(record.start_at, state.settings.timezone),
            "practitioner": who.get(record.practitioner_id),
            "place": where.get(record.location_id),
        },
    )


@router.get("/claim/{token}", response_class=HTMLResponse)
def claim_page(request: Request, token: str, state: State, keyring: PatientKeyring) -> HTMLResponse:
    """The offered slot, where it stands, and a button to take it while it is open."""
    now = state.clock.now()
    try:
        offer_id = read_claim_link(keyring, token, now=now)
    except InputError as exc:
        return link_problem(request, state, exc)
    with state.db.transaction() as session:
        found = _offer(session, offer_id)
        if found is None:
            return link_problem(request, state, InputError("gone", code="link.invalid"))
        return _page(request, state, session, PhiCipher(keyring), *found, now)


@router.post("/claim/{token}", response_class=HTMLResponse)
def take_slot(
    request: Request, token: str, state: State, keyring: PatientKeyring, form: FormFields
) -> HTMLResponse:
    """Store the claim, settle it, and say at once whether the slot is the patient's."""
    now = state.clock.now()
    try:
        offer_id = read_claim_link(keyring, token, now=now)
    except InputError as exc:
        return link_problem(request, state, exc)
    if form.get("action") != "claim":
        return notice(
            request,
            state,
            "We could not tell what you chose",
            "Please go back and press Take this appointment.",
            status_code=400,
        )
    cipher = PhiCipher(keyring)
    with state.db.transaction() as session:
        found = _offer(session, offer_id)
        if found is None:
            return link_problem(request, state, InputError("gone", code="link.invalid"))
        offer, record = found
        stored = store_inbound(
            session,
            cipher,
            provider_id=inbound_provider_id(token, "claim"),
            channel=MessageChannel.EMAIL.value,
            sender="claim link",
            contact_digest=offer.contact_digest or "",
            body="claim",
            received_at=now,
            classified=Classified(Intent.CONFIRM),
        )
        inbound = session.get(InboundMessage, stored.id)
        if inbound is not None and inbound.handled_at is None:
            # Settled here, not by reminder-replies: the answer is the claim, already acted on.
            outcome = claim(session, offer.id, now=now)
            inbound.handled_at = now
            inbound.outcome = {"waitlist_offer": offer.id, "claim": outcome.value}
        session.refresh(offer)
        return _page(request, state, session, cipher, offer, record, now)
