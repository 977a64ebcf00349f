"""The REST API, `/api/v1`: what the pages show, for the automation team's scripts.

Callers send `Authorization: Bearer cfpat_...` (a personal access token whose scopes are
permissions) or use the browser session (then state-changing calls need `X-CSRF-Token`). Calls
that return PHI write one audit row each, as the pages do.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from clinicflow.automations.triage.intake import post_message
from clinicflow.boards import TodayFilters, today_board
from clinicflow.channels.sandbox import list_outbox
from clinicflow.engine import (
    RunRecord,
    WorkItemId,
    WorkItemView,
    add_note,
    all_switches,
    automation_statuses,
    claim_work_item,
    get_run,
    get_work_item,
    list_open,
    list_runs,
    request_run,
    resolve_work_item,
)
from clinicflow.errors import EngineError, InputError
from clinicflow.security.permissions import Permission
from clinicflow.store.bodies import open_body
from clinicflow.store.replica import FhirResource
from clinicflow.store.schedule_queries import display_name
from clinicflow.web.audit_views import audit_view, view_detail
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.pages import engine_runtime
from clinicflow.web.params import RowId
from clinicflow.web.routes.today import parse_day
from clinicflow.web.staff_ui import cipher_of

router = APIRouter(prefix="/api/v1", tags=["api"])


def _caller(permission: Permission) -> Any:
    """The dependency marker of a route that needs `permission`."""
    return Depends(require(permission))


class Me(BaseModel):
    username: str
    display_name: str
    role: str
    permissions: list[str]
    via: str


class AppointmentOut(BaseModel):
    id: str
    start: datetime
    minutes: int | None
    status: str
    confirmation: str
    practitioner_id: str | None
    practitioner: str
    patient_id: str | None
    patient: str
    visit_type: str | None
    reminders_sent: int


class PatientOut(BaseModel):
    id: str
    name: str | None
    birth_date: str | None
    gender: str | None


class WorkItemOut(BaseModel):
    id: int
    status: str
    pool: str
    owner: str | None
    priority: str
    due: datetime | None
    focus: str | None
    for_ref: str | None = Field(serialization_alias="for")
    description: str
    notes: list[str] = []

    @classmethod
    def of(cls, item: WorkItemView) -> WorkItemOut:
        return cls(
            id=item.id,
            status=item.status.value,
            pool=item.pool,
            owner=item.owner_user,
            priority=item.priority.value,
            due=item.due_at,
            focus=item.focus,
            for_ref=item.for_ref,
            description=item.description,
            notes=[f"{n.author}: {n.text}" for n in item.notes],
        )


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class AutomationOut(BaseModel):
    name: str
    summary: str
    trigger: str
    owner: str
    mode: str
    status: str


class RunOut(BaseModel):
    id: int
    automation: str
    state: str
    dry_run: bool
    trigger: str
    requested_by: str
    started_at: datetime | None
    finished_at: datetime | None
    units: dict[str, int]
    error: str | None

    @classmethod
    def of(cls, r: RunRecord) -> RunOut:
        return cls(
            id=r.id,
            automation=r.automation,
            state=r.state.value,
            dry_run=r.dry_run,
            trigger=r.trigger_kind.value,
            requested_by=r.requested_by,
            started_at=r.started_at,
            finished_at=r.finished_at,
            units=r.units,
            error=r.error_message,
        )


class OutboxOut(BaseModel):
    id: int
    channel: str
    to: str
    subject: str | None
    body: str
    for_ref: str | None = Field(serialization_alias="for")
    sent_at: datetime


def _engine_problem(exc: EngineError) -> HTTPException:
    status = 404 if exc.code.endswith(("not_found", "unknown")) else 409
    return HTTPException(status, exc.message)


@router.get("/me", response_model=Me)
def me(staff: Annotated[Staff, _caller(Permission.ACCOUNT)]) -> Me:
    """Who the token or session belongs to, and what it may do."""
    return Me(
        username=staff.user.username,
        display_name=staff.user.display_name,
        role=staff.user.role.value,
        permissions=sorted(staff.permissions),
        via=staff.via,
    )


@router.get("/appointments", response_model=list[AppointmentOut])
def appointments(
    request: Request,
    state: State,
    staff: Annotated[Staff, _caller(Permission.TODAY_VIEW)],
    day: Annotated[date | None, Query()] = None,
    provider: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AppointmentOut]:
    """One day's appointments (default today, in the practice's zone), as on the Today board."""
    zone = ZoneInfo(state.settings.timezone)
    shown = day or parse_day(None, staff.seen_at.astimezone(zone).date())
    with state.db.transaction() as session:
        rows = today_board(
            session,
            cipher_of(state),
            day=shown,
            zone=zone,
            filters=TodayFilters(practitioner_id=provider, include_cancelled=True),
        )
        audit_view(
            session,
            staff,
            view="api-appointments",
            resources=[f"Appointment/{r.appointment_id}" for r in rows],
            patients=[r.patient_id for r in rows],
            path=request.url.path,
        )
    return [
        AppointmentOut(
            id=r.appointment_id,
            start=r.start_at,
            minutes=r.minutes,
            status=r.status,
            confirmation=r.confirmation,
            practitioner_id=r.practitioner_id,
            practitioner=r.practitioner,
            patient_id=r.patient_id,
            patient=r.patient,
            visit_type=r.visit_type,
            reminders_sent=r.reminders_sent,
        )
        for r in rows
    ]


@router.get("/patients/{patient_id}", response_model=PatientOut)
def patient(
    request: Request,
    state: State,
    staff: Annotated[Staff, _caller(Permission.PATIENTS_VIEW)],
    patient_id: Annotated[str, Path(max_length=64)],
) -> PatientOut:
    """A patient's name, birth date and gender (the minimum; the EHR holds the rest)."""
    with state.db.transaction() as session:
        body = session.scalar(
            select(FhirResource.body).where(
                FhirResource.resource_type == "Patient",
                FhirResource.fhir_id == patient_id,
                FhirResource.removed_at.is_(None),
            )
        )
        if body is None:
            raise HTTPException(404, f"There is no patient {patient_id}.")
        resource = open_body(cipher_of(state), body, "Patient", patient_id)
        audit_view(
            session,
            staff,
            view="api-patient",
            resources=[f"Patient/{patient_id}"],
            patients=[patient_id],
            path=request.url.path,
        )
    return PatientOut(
        id=patient_id,
        name=display_name(resource),
        birth_date=resource.get("birthDate"),
        gender=resource.get("gender"),
    )


@router.get("/work-items", response_model=list[WorkItemOut], response_model_by_alias=True)
def work_items(
    request: Request,
    state: State,
    staff: Annotated[Staff, _caller(Permission.WORK_VIEW)],
    pool: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[WorkItemOut]:
    """Open work items, most pressing first."""
    with state.db.transaction() as session:
        items = list_open(
            session,
            cipher_of(state),
            reader=staff.user.username,
            now=staff.seen_at,
            pool=pool,
            limit=limit,
            detail=view_detail(staff, "api-work-items", request.url.path),
        )
    return [WorkItemOut.of(i) for i in items]


@router.get("/work-items/{item_id}", response_model=WorkItemOut, response_model_by_alias=True)
def work_item(
    request: Request,
    state: State,
    staff: Annotated[Staff, _caller(Permission.WORK_VIEW)],
    item_id: RowId,
) -> WorkItemOut:
    """One work item with its notes."""
    try:
        with state.db.transaction() as session:
            item = get_work_item(
                session,
                cipher_of(state),
                WorkItemId(item_id),
                reader=staff.user.username,
                now=staff.seen_at,
                detail=view_detail(staff, "api-work-item", request.url.path),
            )
    except EngineError as exc:
        raise _engine_problem(exc) from exc
    return WorkItemOut.of(item)


@router.post("/work-items/{item_id}/claim", status_code=204)
def claim(
    state: State, staff: Annotated[Staff, _caller(Permission.WORK_ACT)], item_id: RowId
) -> None:
    """Claim a work item for the caller."""
    try:
        with state.db.transaction() as session:
            claim_work_item(
                session, WorkItemId(item_id), user=staff.user.username, now=staff.seen_at
            )
    except EngineError as exc:
        raise _engine_problem(exc) from exc


@router.post("/work-items/{item_id}/notes", status_code=204)
def note(
    state: State,
    staff: Annotated[Staff, _caller(Permission.WORK_ACT)],
    item_id: RowId,
    body: NoteIn,
) -> None:
    """Add a note to a work item."""
    try:
        with state.db.transaction() as session:
            add_note(
                session,
                cipher_of(state),
                WorkItemId(item_id),
                author=staff.user.username,
                text=body.text,
                now=staff.seen_at,
            )
    except EngineError as exc:
        raise _engine_problem(exc) from exc


@router.post("/work-items/{item_id}/resolve", status_code=204)
def resolve(
    state: State, staff: Annotated[Staff, _caller(Permission.WORK_ACT)], item_id: RowId
) -> None:
    """Close a work item as completed."""
    try:
        with state.db.transaction() as session:
            resolve_work_item(
                session, WorkItemId(item_id), user=staff.user.username, now=staff.seen_at
            )
    except EngineError as exc:
        raise _engine_problem(exc) from exc


@router.get("/automations", response_model=list[AutomationOut])
def automations(
    state: State, _staff: Annotated[Staff, _caller(Permission.AUTOMATIONS_VIEW)]
) -> list[AutomationOut]:
    """Every automation with its trigger, owner, mode and load status."""
    with state.db.transaction() as session:
        listed = automation_statuses(state.registry.listing(), all_switches(session))
    return [
        AutomationOut(
            name=a.name,
            summary=a.summary,
            trigger=a.trigger,
            owner=a.owner,
            mode=a.mode,
            status=a.status,
        )
        for a in listed
    ]


@router.get("/runs", response_model=list[RunOut])
def runs(
    state: State,
    _staff: Annotated[Staff, _caller(Permission.AUTOMATIONS_VIEW)],
    automation: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunOut]:
    """Recent runs, newest first, with their errors."""
    with state.db.transaction() as session:
        records = list_runs(session, automation=automation, limit=limit)
    return [RunOut.of(r) for r in records]


@router.post("/automations/{name}/runs", response_model=RunOut, status_code=202)
def queue_run(
    state: State,
    staff: Annotated[Staff, _caller(Permission.AUTOMATIONS_MANAGE)],
    name: str,
    dry_run: bool = False,
) -> RunOut:
    """Queue a run of an automation for the workers."""
    try:
        run_id = request_run(
            engine_runtime(state), name, dry_run=dry_run, requested_by=staff.user.username
        )
    except EngineError as exc:
        raise _engine_problem(exc) from exc
    state.queue.enqueue_run(run_id)
    with state.db.read() as session:
        return RunOut.of(get_run(session, run_id))


@router.get("/outbox", response_model=list[OutboxOut], response_model_by_alias=True)
def outbox(
    state: State,
    staff: Annotated[Staff, _caller(Permission.MESSAGES_VIEW)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OutboxOut]:
    """The sandbox outbox, newest first (what would have gone to patients)."""
    with state.db.transaction() as session:
        messages = list_outbox(
            session, cipher_of(state), reader=staff.actor, now=staff.seen_at, limit=limit
        )
    return [
        OutboxOut(
            id=m.id,
            channel=m.channel,
            to=m.to,
            subject=m.subject,
            body=m.body,
            for_ref=m.for_ref,
            sent_at=m.sent_at,
        )
        for m in messages
    ]


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    patient_id: str | None = Field(None, max_length=64)
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")
    in_response_to: str | None = Field(None, max_length=160)


class MessageAccepted(BaseModel):
    id: int
    status: str = "stored"


@router.post("/messages", response_model=MessageAccepted, status_code=202)
def post_patient_message(
    state: State, staff: Annotated[Staff, _caller(Permission.MESSAGES_POST)], body: MessageIn
) -> MessageAccepted:
    """Store a patient's message for triage; 202 once it is stored (the decision follows)."""
    try:
        with state.db.transaction() as session:
            message_id = post_message(
                session,
                cipher_of(state),
                text=body.text,
                patient_id=body.patient_id,
                language=body.language,
                thread_ref=body.in_response_to,
                by=staff.actor,
                now=staff.seen_at,
            )
    except InputError as exc:
        raise HTTPException(422, str(exc)) from None
    return MessageAccepted(id=message_id)
