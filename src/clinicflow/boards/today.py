"""The Today board's read model: one day's visits by provider and time, with what was done for each.

Reads the replica's typed columns for the visits, decrypts only the names it shows (patients and
providers of that day), and counts the reminders that went out per visit. The caller audits the
view: one row naming every visit and patient shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinicflow.security.phi import PhiCipher
from clinicflow.store.bodies import open_body
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import ReminderClaim
from clinicflow.store.noshow import NoShowScore
from clinicflow.store.replica import Appointment, FhirResource
from clinicflow.store.schedule_queries import display_name, practitioner_names
from clinicflow.store.waitlist import FreedSlotRecord

__all__ = [
    "CONFIRMATION_LABELS",
    "TodayFilters",
    "TodayVisit",
    "by_provider",
    "expected_noshows",
    "today_board",
]

# Appointment.participant.status of the patient (FHIR R4 ParticipationStatus), as staff say it.
CONFIRMATION_LABELS = {
    "accepted": "confirmed",
    "tentative": "tentative",
    "needs-action": "unconfirmed",
    "declined": "declined",
}
SHOWN_STATUSES = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "checked-in",
    "fulfilled",
    "noshow",
    "cancelled",
)


@dataclass(frozen=True, slots=True)
class TodayFilters:
    """What the board is narrowed to; empty fields mean everything."""

    practitioner_id: str | None = None
    confirmation: str | None = None  # confirmed | unconfirmed | declined | tentative
    include_cancelled: bool = False


@dataclass(frozen=True, slots=True)
class TodayVisit:
    """One row of the board."""

    appointment_id: str
    start_at: datetime
    minutes: int | None
    status: str
    confirmation: str
    practitioner_id: str | None
    practitioner: str
    patient_id: str | None
    patient: str
    visit_type: str | None
    reminders_sent: int
    noshow_risk: float | None = None  # from the noshow-risk automation, when it has run
    noshow_reasons: tuple[str, ...] = ()
    backfilled: bool = False  # booked by waitlist-backfill into a slot someone else freed


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)


def patient_names(session: Session, cipher: PhiCipher, ids: set[str]) -> dict[str, str]:
    """Patients' display names by id, decrypted (the caller audits what it shows)."""
    if not ids:
        return {}
    rows = session.execute(
        select(FhirResource.fhir_id, FhirResource.body).where(
            FhirResource.resource_type == "Patient", FhirResource.fhir_id.in_(sorted(ids))
        )
    )
    return {
        fhir_id: display_name(open_body(cipher, body, "Patient", fhir_id)) or "(no name)"
        for fhir_id, body in rows
    }


def _reminders_sent(session: Session, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(ReminderClaim.appointment_id, func.count())
        .join(Effect, Effect.key == ReminderClaim.effect_key)
        .where(ReminderClaim.appointment_id.in_(ids), Effect.state == "done")
        .group_by(ReminderClaim.appointment_id)
    )
    return {appointment_id: int(count) for appointment_id, count in rows}


def _risks(session: Session, ids: list[str]) -> dict[str, tuple[float, tuple[str, ...]]]:
    if not ids:
        return {}
    rows = session.execute(
        select(NoShowScore.appointment_id, NoShowScore.probability, NoShowScore.reasons).where(
            NoShowScore.appointment_id.in_(ids)
        )
    )
    return {a: (p, tuple(r or ())) for a, p, r in rows}


def _backfilled(session: Session, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    return set(
        session.scalars(
            select(FreedSlotRecord.booked_entry_id).where(
                FreedSlotRecord.state == "booked", FreedSlotRecord.booked_entry_id.in_(ids)
            )
        )
    )


def today_board(
    session: Session, cipher: PhiCipher, *, day: date, zone: ZoneInfo, filters: TodayFilters
) -> list[TodayVisit]:
    """The day's visits, ordered by provider then time."""
    start, end = _day_bounds(day, zone)
    statuses = SHOWN_STATUSES if filters.include_cancelled else SHOWN_STATUSES[:-1]
    query = select(Appointment).where(
        Appointment.start_at >= start,
        Appointment.start_at < end,
        Appointment.status.in_(statuses),
    )
    if filters.practitioner_id:
        query = query.where(Appointment.practitioner_id == filters.practitioner_id)
    visits = list(session.scalars(query))
    if filters.confirmation:
        wanted = {k for k, v in CONFIRMATION_LABELS.items() if v == filters.confirmation}
        visits = [v for v in visits if (v.patient_status or "needs-action") in wanted]
    providers = practitioner_names(
        session, cipher, {v.practitioner_id for v in visits if v.practitioner_id}
    )
    patients = patient_names(session, cipher, {v.patient_id for v in visits if v.patient_id})
    sent = _reminders_sent(session, [v.fhir_id for v in visits])
    risks = _risks(session, [v.fhir_id for v in visits])
    backfilled = _backfilled(session, [v.fhir_id for v in visits])
    rows = [
        TodayVisit(
            appointment_id=v.fhir_id,
            start_at=v.start_at,
            minutes=v.minutes,
            status=v.status,
            confirmation=CONFIRMATION_LABELS.get(v.patient_status or "needs-action", "unknown"),
            practitioner_id=v.practitioner_id,
            practitioner=providers.get(v.practitioner_id or "", "(no provider)"),
            patient_id=v.patient_id,
            patient=patients.get(v.patient_id or "", "(unknown patient)"),
            visit_type=v.appointment_type or v.service_type,
            reminders_sent=sent.get(v.fhir_id, 0),
            noshow_risk=risks[v.fhir_id][0] if v.fhir_id in risks else None,
            noshow_reasons=risks[v.fhir_id][1] if v.fhir_id in risks else (),
            backfilled=v.fhir_id in backfilled,
        )
        for v in visits
        if v.start_at is not None
    ]
    rows.sort(key=lambda r: (r.practitioner, r.start_at, r.appointment_id))
    return rows


ACTIVE = frozenset(("proposed", "pending", "booked", "arrived", "checked-in"))


def expected_noshows(rows: list[TodayVisit]) -> float | None:
    """The sum of the scored visits' no-show risks: how many of them will likely not come (None
    when none is scored). A scheduler may overbook that many, rounded down; clinicflow does not."""
    risks = [r.noshow_risk for r in rows if r.noshow_risk is not None and r.status in ACTIVE]
    return sum(risks) if risks else None


def by_provider(rows: list[TodayVisit]) -> dict[str, list[TodayVisit]]:
    """The rows grouped under each provider's name, in board order."""
    groups: dict[str, list[TodayVisit]] = defaultdict(list)
    for row in rows:
        groups[row.practitioner].append(row)
    return dict(groups)
