"""What the waitlist rules decide about: a freed slot and the patients waiting for one (pure data).

Both are built by the shell from the replica: a `FreedSlot` from the cancelled Appointment and its
Slot/Schedule, a `WaitlistEntry` from an Appointment with status `waitlist` (its
`requestedPeriod`, `priority`, `serviceType`/`specialty`, `participant`, `created`) and the
patient's contact preferences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NewType
from zoneinfo import ZoneInfo

from clinicflow.engine import MessageChannel

EntryId = NewType("EntryId", str)
PatientId = NewType("PatientId", str)

# FHIR R4 Appointment.priority follows iCal: 1 is the highest, 9 the lowest, 0 is "not set".
HIGHEST_PRIORITY = 1
LOWEST_PRIORITY = 9
UNSET_PRIORITY = 0


@dataclass(frozen=True, slots=True)
class FreedSlot:
    """A bookable time that just became free: who, where, when, how long, for what kind of visit."""

    start_at: datetime  # aware UTC
    minutes: int
    practitioner_id: str
    specialty: str  # the schedule's service type or specialty code, as the entries spell it
    location_id: str
    visit_type: str | None  # v2-0276 type of the visit that freed it; None holds any type
    zone: ZoneInfo  # the practice's zone, in which patients' day-and-time windows are read
    slot_id: str | None = None

    @property
    def end_at(self) -> datetime:
        """When the slot ends (aware UTC)."""
        return self.start_at + timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class Availability:
    """A weekly window the patient can come in: weekday (0 is Monday) and local wall-clock times."""

    weekday: int
    starts_local: time
    ends_local: time


@dataclass(frozen=True, slots=True)
class WaitlistEntry:
    """A patient waiting for an opening: what they need, where, and when they can come."""

    id: EntryId
    patient_id: PatientId
    practitioner_id: str | None  # None: anyone in `specialty`
    specialty: str
    visit_type: str
    minutes: int
    location_id: str | None  # the site they prefer; None: no preference
    earliest_on: date | None  # practice-local dates, both ends included; None: open
    latest_on: date | None
    listed_at: datetime  # aware UTC; FHIR Appointment.created
    availability: tuple[Availability, ...] = ()  # empty: any day and time the practice is open
    other_locations_ok: bool = True  # False: only `location_id` will do
    priority: int = UNSET_PRIORITY  # FHIR/iCal: 1 highest ... 9 lowest, 0 not set
    channel: MessageChannel = MessageChannel.SMS
    contact_chosen: bool = False  # the entry itself says how to reach the patient (`channel`)
    last_contacted_at: datetime | None = None  # the last waitlist offer sent to this patient
    opted_out: bool = False  # no longer wants offers (replied STOP, or asked the front desk)
