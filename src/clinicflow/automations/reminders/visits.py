"""What reminders read from the replica: upcoming visits, patients' contacts, names of places.

Names, phone numbers and addresses come from the encrypted resource bodies; the typed tables give
times, statuses, time zones and languages. Reading them is a PHI read the caller audits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from clinicflow.automations.reminders.policy import Visit
from clinicflow.security.phi import PhiCipher
from clinicflow.store.bodies import open_body
from clinicflow.store.messaging import ReminderMark
from clinicflow.store.replica import (
    Appointment,
    FhirResource,
    LookupIndex,
    Patient,
    PractitionerRole,
)
from clinicflow.store.schedule_queries import display_name

CHUNK = 500
UPCOMING = ("booked", "pending")
# Past this many ids, reading the whole window and filtering beats IN (...) lists.
WHOLE_WINDOW = 5000
_CONTACT_KINDS = ("phone", "email")


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A visit that may need a reminder, with who it is for and with whom."""

    visit: Visit
    patient_id: str
    practitioner_id: str | None
    location_id: str | None
    patient_zone: str | None
    language: str | None

    @property
    def appointment_id(self) -> str:
        """The visit's appointment id."""
        return self.visit.appointment_id


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach a patient: first name, a mobile number, an e-mail, ranked preference."""

    patient_id: str
    first_name: str | None
    mobile: str | None
    email: str | None
    prefers: str | None  # sms | email | phone, from telecom rank


_COLUMNS = select(
    Appointment.fhir_id,
    Appointment.start_at,
    Appointment.booked_at,
    Appointment.appointment_type,
    Appointment.patient_id,
    Appointment.practitioner_id,
    Appointment.location_id,
    Patient.time_zone,
    Patient.language,
    Appointment.status,
    Patient.deceased,
    Patient.active,
    Patient.replaced_by,
).join(Patient, Patient.fhir_id == Appointment.patient_id)
_IN_WINDOW = _COLUMNS.where(
    Appointment.status.in_(UPCOMING),
    Appointment.start_at > bindparam("after"),
    Appointment.start_at <= bindparam("before"),
    Patient.deceased.is_(False),
    Patient.active.is_(True),
    Patient.replaced_by.is_(None),
)
# By key, the rest tested on the rows (`_is_upcoming`): given the status or the patient's flags
# as well, SQLite walks the whole window's (status, start) index, or every unmerged patient, and
# tests each row against the list (20 ms to 0.9 s a run) instead of looking up the keys.
_BY_ID = _COLUMNS.where(Appointment.fhir_id.in_(bindparam("ids", expanding=True)))
_BY_PATIENT = _COLUMNS.where(
    Appointment.patient_id.in_(bindparam("ids", expanding=True)),
    Appointment.start_at > bindparam("after"),
    Appointment.start_at <= bindparam("before"),
)
# Riders: of these patients' visits, those a message due now could list. A visit whose mark (for
# its current start) says nothing of it falls due before `soon` has no touchpoint to ride along
# with: its plan is what the mark was made from (marks.py), so planning it again finds none.
_RIDERS = _BY_PATIENT.outerjoin(
    ReminderMark,
    and_(
        ReminderMark.appointment_id == Appointment.fhir_id,
        ReminderMark.start_at == Appointment.start_at,
    ),
).where(
    or_(
        ReminderMark.appointment_id.is_(None),
        ReminderMark.next_check_at.is_(None),
        ReminderMark.next_check_at <= bindparam("soon"),
    )
)
_ROLES = select(PractitionerRole.practitioner_id, PractitionerRole.specialty_code).order_by(
    PractitionerRole.fhir_id
)


def upcoming_visits(
    session: Session,
    start_after: datetime,
    start_before: datetime,
    *,
    ids: Collection[str] | None = None,
    patient_ids: Collection[str] | None = None,
    known: Collection[str] = (),
    due_by: datetime | None = None,
) -> list[Upcoming]:
    """Booked or pending visits starting in (start_after, start_before], of living, active,
    unmerged patients; only those with these `ids`, or of these `patient_ids`, when given;
    none of the `known` ones. With `patient_ids` and `due_by`: only visits that may have a
    touchpoint due by then (their mark says so, or they have none to say otherwise)."""
    window: dict[str, Any] = {"after": start_after, "before": start_before}
    rows: list[Any] = []
    if ids is None and patient_ids is None:
        rows.extend(row for row in session.execute(_IN_WINDOW, window) if row[0] not in known)
    elif ids is not None and len(ids) > WHOLE_WINDOW:
        rows.extend(
            row
            for row in session.execute(_IN_WINDOW, window)
            if row[0] in ids and row[0] not in known
        )
    else:
        if ids is not None:
            query, wanted = _BY_ID, sorted(ids)
        else:
            query, wanted = (_BY_PATIENT if due_by is None else _RIDERS), sorted(patient_ids or ())
            window["soon"] = due_by
        for first in range(0, len(wanted), CHUNK):
            rows.extend(
                row
                for row in session.execute(query, {**window, "ids": wanted[first : first + CHUNK]})
                if row[0] not in known and _is_upcoming(row, start_after, start_before)
            )
    rows.sort(key=lambda row: (row[1], row[0]))
    specialties = _specialties(session)
    return [
        Upcoming(
            visit=Visit(row[0], row[1], row[2], specialties.get(row[5]), row[3]),
            patient_id=row[4],
            practitioner_id=row[5],
            location_id=row[6],
            patient_zone=row[7],
            language=row[8],
        )
        for row in rows
    ]


def _is_upcoming(row: Any, start_after: datetime, start_before: datetime) -> bool:
    """`_IN_WINDOW`'s test, for a row read by key."""
    return (
        row.status in UPCOMING
        and row.start_at is not None
        and start_after < row.start_at <= start_before
        and not row.deceased
        and row.active
        and row.replaced_by is None
    )


def _specialties(session: Session) -> dict[str, str | None]:
    """Each practitioner's specialty, from their first role by id (a few dozen rows)."""
    found: dict[str, str | None] = {}
    for practitioner_id, specialty in session.execute(_ROLES):
        if practitioner_id is not None:
            found.setdefault(practitioner_id, specialty)
    return found


_CONTACT_DIGESTS = select(LookupIndex.kind, LookupIndex.digest).where(
    LookupIndex.resource_type == "Patient",
    LookupIndex.fhir_id.in_(bindparam("ids", expanding=True)),
    LookupIndex.kind.in_(_CONTACT_KINDS),
)
_SHARING = select(LookupIndex.resource_type, LookupIndex.fhir_id).where(
    LookupIndex.kind == bindparam("kind"),
    LookupIndex.digest.in_(bindparam("digests", expanding=True)),
)
_BODIES = select(FhirResource.fhir_id, FhirResource.body).where(
    FhirResource.resource_type == bindparam("resource_type"),
    FhirResource.fhir_id.in_(bindparam("ids", expanding=True)),
)


def sharing_contacts(session: Session, patient_ids: Collection[str]) -> set[str]:
    """These patients and every patient who shares a phone number or e-mail with one of them
    (a family on one phone), from the replica's blind-index lookups."""
    wanted = sorted(set(patient_ids))
    digests: set[tuple[str, str]] = set()
    for first in range(0, len(wanted), CHUNK):
        digests.update(
            (row[0], row[1])
            for row in session.execute(_CONTACT_DIGESTS, {"ids": wanted[first : first + CHUNK]})
        )
    found = set(wanted)
    for kind in _CONTACT_KINDS:
        mine = sorted(d for k, d in digests if k == kind)
        for first in range(0, len(mine), CHUNK):
            # Filtered on the type here, not in SQL: given `resource_type = 'Patient'`, SQLite
            # without statistics walks every patient's lookups instead of (kind, digest).
            rows = session.execute(_SHARING, {"kind": kind, "digests": mine[first : first + CHUNK]})
            found.update(row.fhir_id for row in rows if row.resource_type == "Patient")
    return found


def _bodies(
    session: Session, cipher: PhiCipher, resource_type: str, ids: Iterable[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), CHUNK):
        rows = session.execute(
            _BODIES, {"resource_type": resource_type, "ids": wanted[start : start + CHUNK]}
        )
        for fhir_id, body in rows:
            yield fhir_id, open_body(cipher, body, resource_type, fhir_id)


def contacts(session: Session, cipher: PhiCipher, patient_ids: Iterable[str]) -> dict[str, Contact]:
    """Each patient's contact details, read from the stored Patient resources."""
    return {
        pid: contact_of(pid, body) for pid, body in _bodies(session, cipher, "Patient", patient_ids)
    }


def contact_of(patient_id: str, patient: dict[str, Any]) -> Contact:
    """A patient's contact details (pure): the best-ranked mobile and e-mail in `telecom`."""
    telecoms = [t for t in patient.get("telecom") or () if isinstance(t, dict) and t.get("value")]
    telecoms = [t for t in telecoms if (t.get("period") or {}).get("end") is None]
    ranked = sorted(telecoms, key=lambda t: int(t.get("rank") or 1_000_000))
    mobile = next(
        (
            str(t["value"])
            for t in ranked
            if t.get("system") == "sms" or (t.get("system") == "phone" and t.get("use") == "mobile")
        ),
        None,
    )
    email = next((str(t["value"]) for t in ranked if t.get("system") == "email"), None)
    prefers = None
    if ranked:
        first = ranked[0]
        prefers = (
            "email"
            if first.get("system") == "email"
            else "sms"
            if (first.get("system") == "sms" or first.get("use") == "mobile")
            else "phone"
        )
    return Contact(patient_id, _first_name(patient), mobile, email, prefers)


def _first_name(patient: dict[str, Any]) -> str | None:
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    official = [n for n in names if n.get("use") in ("usual", "official")] or names
    for name in official:
        given = name.get("given") or []
        if given:
            return str(given[0])
    return None


def place_names(session: Session, cipher: PhiCipher, ids: Sequence[str]) -> dict[str, str]:
    """Location names with their first address line ("Main St Clinic, 12 Main St")."""
    names: dict[str, str] = {}
    for fhir_id, body in _bodies(session, cipher, "Location", ids):
        line = ((body.get("address") or {}).get("line") or [None])[0]
        parts = [str(p) for p in (body.get("name"), line) if p]
        names[fhir_id] = ", ".join(parts) or f"Location/{fhir_id}"
    return names


def person_names(session: Session, cipher: PhiCipher, ids: Sequence[str]) -> dict[str, str]:
    """Practitioners' display names ("Dr. Ana Ortiz")."""
    return {
        fhir_id: display_name(body) or f"Practitioner/{fhir_id}"
        for fhir_id, body in _bodies(session, cipher, "Practitioner", ids)
    }
