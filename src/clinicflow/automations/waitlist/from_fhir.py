"""A waitlist entry from its FHIR R4 Appointment (status `waitlist`), pure.

What the Appointment says: the patient and the practitioner asked for (`participant`), the kind of
care (`serviceType`, else `specialty`) and of visit (`appointmentType`), how long
(`minutesDuration`), the dates the patient can come (`requestedPeriod`), `priority` and `created`
(time on the list). What it cannot say (the channel, opt-out, the last offer sent) the shell adds
from the patient's contact preferences and the offers table.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from clinicflow.automations.waitlist.entries import EntryId, PatientId, WaitlistEntry
from clinicflow.engine import MessageChannel
from clinicflow.errors import InputError

__all__ = ["entry_from_appointment", "with_contact"]

DEFAULT_MINUTES = 20  # the practice's usual slot, when the request does not say


def _first_code(concepts: Any) -> str | None:
    items = concepts if isinstance(concepts, list) else [concepts] if concepts else []
    for concept in items:
        for coding in (concept or {}).get("coding") or []:
            if coding.get("code"):
                return str(coding["code"])
    return None


def _actor(resource: dict[str, Any], kind: str) -> str | None:
    for participant in resource.get("participant") or []:
        reference = ((participant or {}).get("actor") or {}).get("reference") or ""
        if reference.startswith(f"{kind}/"):
            return str(reference.split("/", 1)[1])
    return None


def _local_date(text: str | None, zone: ZoneInfo) -> date | None:
    if not text:
        return None
    if len(text) == 10:
        return date.fromisoformat(text)
    instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (instant.astimezone(zone) if instant.tzinfo else instant).date()


def entry_from_appointment(resource: dict[str, Any], *, zone: ZoneInfo) -> WaitlistEntry:
    """The entry a `waitlist` Appointment asks for; InputError saying what is missing."""
    where = f"Appointment/{resource.get('id')}"
    if resource.get("status") != "waitlist":
        raise InputError(
            "This Appointment is not a waitlist entry.", where=where, code="waitlist.not_waitlist"
        )
    patient = _actor(resource, "Patient")
    if patient is None:
        raise InputError(
            "A waitlist entry names no patient.", where=where, code="waitlist.no_patient"
        )
    specialty = _first_code(resource.get("serviceType")) or _first_code(resource.get("specialty"))
    if specialty is None:
        raise InputError(
            "A waitlist entry says neither serviceType nor specialty.",
            where=where,
            code="waitlist.no_service",
        )
    created = resource.get("created") or (resource.get("meta") or {}).get("lastUpdated")
    if not created:
        raise InputError(
            "A waitlist entry has no `created` date (time on the list).",
            where=where,
            code="waitlist.no_created",
        )
    period = (resource.get("requestedPeriod") or [{}])[0] or {}
    try:
        return WaitlistEntry(
            id=EntryId(str(resource["id"])),
            patient_id=PatientId(patient),
            practitioner_id=_actor(resource, "Practitioner"),
            specialty=specialty,
            visit_type=_first_code(resource.get("appointmentType")) or "ROUTINE",
            minutes=int(resource.get("minutesDuration") or DEFAULT_MINUTES),
            location_id=_actor(resource, "Location"),
            earliest_on=_local_date(period.get("start"), zone),
            latest_on=_local_date(period.get("end"), zone),
            listed_at=datetime.fromisoformat(str(created).replace("Z", "+00:00")),
            priority=int(resource.get("priority") or 0),
        )
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"A waitlist entry has a value that cannot be read: {exc}",
            where=where,
            code="waitlist.bad_value",
        ) from exc


def with_contact(
    entry: WaitlistEntry,
    *,
    channel: MessageChannel,
    opted_out: bool,
    last_contacted_at: datetime | None,
) -> WaitlistEntry:
    """The entry with what the shell knows of reaching the patient."""
    return replace(entry, channel=channel, opted_out=opted_out, last_contacted_at=last_contacted_at)
