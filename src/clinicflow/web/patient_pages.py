"""The patient pages behind e-mail reminders: confirm or cancel a visit, unsubscribe from e-mail.

No login: the signed link is the patient's permission, limited to the visits and the contact it
names. Opening a page (GET) never changes anything, because mail scanners and link previews
fetch links nobody clicked; only the page's buttons (POST) act. A confirm or cancel is stored
as an inbound message, like a text reply, and the reply automation acts on it; the page never
changes an appointment itself. Each page is `no-store`: it shows a patient's visits to whoever
holds the link, and a shared computer's back button must not show it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.channels.consent import ConsentSource, is_opted_out, record_consent
from clinicflow.channels.inbound import store_inbound
from clinicflow.channels.link_secret import read_unsubscribe_link, read_visit_link
from clinicflow.channels.replies import Classified, Intent
from clinicflow.engine.payloads import MessageChannel
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.phi import Keyring, PhiCipher, keyring_from_settings
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import Appointment, FhirResource
from clinicflow.store.schedule_queries import practitioner_names
from clinicflow.web.auth import public
from clinicflow.web.health import State
from clinicflow.web.state import AppState

router = APIRouter(
    include_in_schema=False,
    dependencies=[Depends(public("patients: the signed, expiring link is the credential"))],
)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

NO_STORE = {"Cache-Control": "no-store"}
AUDIT_ACTOR = Actor.system("patient-link")
ACTIONS = {"confirm": Intent.CONFIRM, "cancel": Intent.CANCEL}
MAX_FORM_BYTES = 2048  # our forms send one short field; RFC 8058's body is 26 bytes


class VisitState(StrEnum):
    """Where a visit stands, as the patient is told."""

    OPEN = "open"  # upcoming, not yet confirmed
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    PAST = "past"
    GONE = "gone"  # no longer in the schedule we hold


ANSWERABLE = frozenset({VisitState.OPEN, VisitState.CONFIRMED})
_CANCELLED = frozenset({"cancelled", "entered-in-error"})
_SEEN = frozenset({"arrived", "checked-in", "fulfilled", "noshow"})


@dataclass(frozen=True, slots=True)
class VisitView:
    """One visit as the page shows it: when, with whom, where; never why."""

    state: VisitState
    starts_local: str | None = None
    practitioner: str | None = None
    place: str | None = None


def visit_state(
    status: str | None, patient_status: str | None, start_at: datetime | None, now: datetime
) -> VisitState:
    """Where a visit stands at `now`, from its replica row (`status` None: no row)."""
    if status is None or status == "waitlist" or (start_at is None and status not in _CANCELLED):
        return VisitState.GONE
    if status in _CANCELLED:
        return VisitState.CANCELLED
    if status in _SEEN or (start_at is not None and start_at <= now):
        return VisitState.PAST
    # FHIR records the patient's own confirmation on their participant entry.
    return VisitState.CONFIRMED if patient_status == "accepted" else VisitState.OPEN


def starts_local_text(start_at: datetime, zone: str) -> str:
    """A visit's start as a patient reads it: 'Tuesday 1 December 2026, 10:30 AM'."""
    local = start_at.astimezone(ZoneInfo(zone))
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{local:%A} {local.day} {local:%B} {local.year}, {clock}"


def inbound_provider_id(token: str, action: str) -> str:
    """The id a page answer is stored under: a second click of the same button stores nothing."""
    return "link:" + hashlib.sha256(f"{token}:{action}".encode()).hexdigest()[:48]


def practice_name(email_from: str) -> str:
    """Who to call, as the patient saw it in the reminder's From line; else a generic phrase."""
    name = parseaddr(email_from)[0].strip()
    return name if name and name.lower() != "clinicflow" else "the practice"


def patient_keyring(state: State) -> Keyring:
    """The PHI keyring, read on each request so a key rotation applies without a restart."""
    return keyring_from_settings(state.settings, create=False)


async def form_fields(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (first value of each); empty for any other body."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if len(body) > MAX_FORM_BYTES or not content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        return {}
    try:
        parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    except ValueError:  # more fields than any of our forms has
        return {}
    return {name: values[0] for name, values in parsed.items()}


PatientKeyring = Annotated[Keyring, Depends(patient_keyring)]
FormFields = Annotated[dict[str, str], Depends(form_fields)]


@router.get("/visit/{token}", response_class=HTMLResponse)
def visit_page(request: Request, token: str, state: State, keyring: PatientKeyring) -> HTMLResponse:
    """The visits a reminder listed, each with its state, and Confirm / Cancel while they apply."""
    now = state.clock.now()
    try:
        link = read_visit_link(keyring, token, now=now)
    except InputError as exc:
        return link_problem(request, state, exc)
    with state.db.transaction() as session:
        visits = _load_visits(
            session, PhiCipher(keyring), link.appointment_ids, now=now, zone=state.settings.timezone
        )
    states = {visit.state for visit in visits}
    return render_page(
        request,
        state,
        "patient_visit.html",
        {
            "visits": visits,
            "can_confirm": VisitState.OPEN in states,
            "can_cancel": bool(states & ANSWERABLE),
        },
    )


@router.post("/visit/{token}", response_class=HTMLResponse)
def answer_visit(
    request: Request, token: str, state: State, keyring: PatientKeyring, form: FormFields
) -> HTMLResponse:
    """Store the patient's confirm or cancel once, for the reply automation to act on."""
    now = state.clock.now()
    try:
        link = read_visit_link(keyring, token, now=now)
    except InputError as exc:
        return link_problem(request, state, exc)
    action = form.get("action", "")
    intent = ACTIONS.get(action)
    if intent is None:
        return notice(
            request,
            state,
            "We could not tell what you chose",
            "Please go back and press Confirm or Cancel.",
            status_code=400,
        )
    with state.db.transaction() as session:
        store_inbound(
            session,
            PhiCipher(keyring),
            provider_id=inbound_provider_id(token, action),
            channel=MessageChannel.EMAIL.value,
            sender="visit link",
            contact_digest=link.contact_digest,
            body=action,
            received_at=now,
            classified=Classified(intent),
            appointment_ids=link.appointment_ids,
        )
    asked = "to confirm" if intent is Intent.CONFIRM else "to cancel"
    visits = "your visit" if len(link.appointment_ids) == 1 else "your visits"
    return notice(
        request,
        state,
        "Thank you: we have your answer",
        f"You asked {asked} {visits}. You will get a confirmation from us shortly.",
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    request: Request, token: str, state: State, keyring: PatientKeyring
) -> HTMLResponse:
    """One button that stops our e-mail to this address (opening the page changes nothing)."""
    now = state.clock.now()
    try:
        digest = read_unsubscribe_link(keyring, token, now=now)
    except InputError as exc:
        return link_problem(request, state, exc)
    with state.db.transaction() as session:
        already = is_opted_out(session, MessageChannel.EMAIL, digest)
    return render_page(request, state, "patient_unsubscribe.html", {"already": already})


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(
    request: Request, token: str, state: State, keyring: PatientKeyring
) -> HTMLResponse:
    """Opt this address out of e-mail: the page's button, or a mail client's one-click POST.

    RFC 8058 section 3.2: the mail client POSTs `List-Unsubscribe=One-Click` with no cookies and
    cannot follow a redirect or answer a page, so any POST with a valid token unsubscribes and
    the answer is a plain 200.
    """
    now = state.clock.now()
    try:
        digest = read_unsubscribe_link(keyring, token, now=now)
    except InputError as exc:
        return link_problem(request, state, exc)
    with state.db.transaction() as session:
        record_consent(
            session,
            channel=MessageChannel.EMAIL,
            contact_digest=digest,
            opted_out=True,
            keyword="unsubscribe link",
            source=ConsentSource.EMAIL_LINK,
            now=now,
        )
    return notice(
        request,
        state,
        "You are unsubscribed",
        "We will send no more e-mail to this address. "
        "Texts and calls about your visits are not affected.",
    )


def _load_visits(
    session: Session, cipher: PhiCipher, ids: Sequence[str], *, now: datetime, zone: str
) -> list[VisitView]:
    """The listed visits in the link's order, names decrypted; the read is audited."""
    rows = {
        row.fhir_id: row
        for row in session.scalars(select(Appointment).where(Appointment.fhir_id.in_(ids)))
    }
    found = [rows[fhir_id] for fhir_id in ids if fhir_id in rows]
    people = practitioner_names(
        session, cipher, [r.practitioner_id for r in found if r.practitioner_id]
    )
    places = location_names(session, cipher, [r.location_id for r in found if r.location_id])
    visits = [_view(rows.get(fhir_id), people, places, now=now, zone=zone) for fhir_id in ids]
    if found:
        appointments = [f"Appointment/{row.fhir_id}" for row in found]
        patients = sorted({f"Patient/{row.patient_id}" for row in found if row.patient_id})
        # Last: the audit append holds a lock until the transaction ends.
        record_access(
            session,
            AUDIT_ACTOR,
            "read",
            appointments,
            at=now,
            detail={"page": "visit"},
            index=[*appointments, *patients],
        )
    return visits


def _view(
    row: Appointment | None,
    people: Mapping[str, str],
    places: Mapping[str, str],
    *,
    now: datetime,
    zone: str,
) -> VisitView:
    if row is None:
        return VisitView(VisitState.GONE)
    return VisitView(
        state=visit_state(row.status, row.patient_status, row.start_at, now),
        starts_local=starts_local_text(row.start_at, zone) if row.start_at else None,
        practitioner=people.get(row.practitioner_id) if row.practitioner_id else None,
        place=places.get(row.location_id) if row.location_id else None,
    )


def location_names(session: Session, cipher: PhiCipher, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(FhirResource.fhir_id, FhirResource.body).where(
            FhirResource.resource_type == "Location", FhirResource.fhir_id.in_(wanted)
        )
    )
    names: dict[str, str] = {}
    for fhir_id, body in rows:
        resource = open_body(cipher, body, "Location", fhir_id)
        if isinstance(name := resource.get("name"), str) and name:
            names[fhir_id] = name
    return names


def link_problem(request: Request, state: AppState, error: InputError) -> HTMLResponse:
    # 410 for an expired link (it was ours), 404 for one we cannot read; no detail either way.
    expired = error.code == "link.expired"
    return notice(
        request,
        state,
        "This link has expired" if expired else "This link does not work",
        "Links in our reminders stop working after a while, and this one has."
        if expired
        else "It may have been cut short when it was copied.",
        status_code=410 if expired else 404,
    )


def notice(
    request: Request, state: AppState, title: str, text: str, *, status_code: int = 200
) -> HTMLResponse:
    return render_page(
        request, state, "patient_notice.html", {"title": title, "text": text}, status_code
    )


def render_page(
    request: Request,
    state: AppState,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {**context, "practice": practice_name(state.settings.email_from)},
        status_code=status_code,
        headers=NO_STORE,
    )
