"""A waitlist entry from its FHIR R4 Appointment (status `waitlist`), pure.

What the Appointment says: the patient and the practitioner asked for (`participant`), the kind of
care (`serviceType`, else `specialty`) and of visit (`appointmentType`), how long
(`minutesDuration`), the dates the patient can come (`requestedPeriod`), `priority` and `created`
(time on the list). FHIR has no element for the days and times a patient can come, nor for how
they want to hear about an opening; clinicflow reads (and its waitlist page writes) two
extensions for them, `AVAILABILITY_URL` ("mon 08:00-12:00", one per window) and `CONTACT_URL`
(sms | email). The rest (opt-out, the last offer sent) the shell adds from consent and the offers
table.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from clinicflow.automations.waitlist.entries import (
    Availability,
    EntryId,
    PatientId,
    WaitlistEntry,
)
from clinicflow.engine import MessageChannel
from clinicflow.errors import InputError

__all__ = [
    "AVAILABILITY_URL",
    "CONTACT_URL",
    "availability_text",
    "entry_from_appointment",
    "parse_availability",
    "with_contact",
]

DEFAULT_MINUTES = 20  # the practice's usual slot, when the request does not say
AVAILABILITY_URL = "https://clinicflow.org/fhir/StructureDefinition/waitlist-availability"
CONTACT_URL = "https://clinicflow.org/fhir/StructureDefinition/waitlist-contact"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_availability(text: str) -> Availability:
    """A window from "mon 08:00-12:00"; ValueError saying what is wrong."""
    try:
        day, hours = text.strip().lower().split()
        starts, ends = (time.fromisoformat(part) for part in hours.split("-"))
    except ValueError:
        raise ValueError(f"{text!r} is not a window like 'mon 08:00-12:00'") from None
    if day not in WEEKDAYS:
        raise ValueError(f"{text!r}: the day must be one of {', '.join(WEEKDAYS)}")
    if ends <= starts:
        raise ValueError(f"{text!r}: the window must end after it starts")
    return Availability(WEEKDAYS.index(day), starts, ends)


def availability_text(window: Availability) -> str:
    """The extension's text for a window: "mon 08:00-12:00"."""
    return f"{WEEKDAYS[window.weekday]} {window.starts_local:%H:%M}-{window.ends_local:%H:%M}"


def _extensions(resource: dict[str, Any], url: str) -> list[str]:
    return [
        str(e["valueString"] if "valueString" in e else e.get("valueCode"))
        for e in resource.get("extension") or []
        if isinstance(e, dict) and e.get("url") == url and ("valueString" in e or "valueCode" in e)
    ]


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
    contact = _extensions(resource, CONTACT_URL)
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
            availability=tuple(
                parse_availability(text) for text in _extensions(resource, AVAILABILITY_URL)
            ),
            channel=MessageChannel(contact[0]) if contact else MessageChannel.SMS,
            contact_chosen=bool(contact),
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
    """The entry with what the shell knows of reaching the patient (a channel the entry chose
    itself stands)."""
    return replace(
        entry,
        channel=entry.channel if entry.contact_chosen else channel,
        opted_out=opted_out,
        last_contacted_at=last_contacted_at,
    )
