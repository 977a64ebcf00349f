"""Which slot an appointment's change frees, if any, and what filling it is worth (pure).

A cancellation frees the time the visit held; a reschedule frees the time it held before
(the event's `previous_start_at`). Either frees a slot only if the visit held one: it was booked
(not a waitlist request, not a proposal), names the practitioner and place, and starts later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from clinicflow.automations.waitlist.entries import FreedSlot

CANCELLED = "appointment.cancelled"
RESCHEDULED = "appointment.rescheduled"
# Statuses that held a place on the calendar (FHIR R4 Appointment.status).
HELD = frozenset({"booked", "pending", "arrived", "checked-in"})
DEFAULT_VISIT_TYPE = "ROUTINE"


@dataclass(frozen=True, slots=True)
class ChangedVisit:
    """What the replica's typed row says of the visit that changed (no PHI)."""

    fhir_id: str
    status: str
    start_at: datetime | None
    minutes: int | None
    practitioner_id: str | None
    location_id: str | None
    service_type: str | None
    appointment_type: str | None
    slot_id: str | None


def freed_slot(
    visit: ChangedVisit,
    event_type: str,
    payload: Mapping[str, object],
    *,
    zone: ZoneInfo,
    now: datetime,
) -> FreedSlot | None:
    """The slot this change frees, or None (nothing held, nothing to fill, already past)."""
    if event_type == CANCELLED:
        if payload.get("previous_status") not in HELD:
            return None  # a waitlist request or a proposal withdrawn: no time was held
        start = visit.start_at
        slot_id = visit.slot_id
    elif event_type == RESCHEDULED:
        before = payload.get("previous_start_at")
        start = datetime.fromisoformat(before) if isinstance(before, str) else None
        slot_id = None  # the Appointment now names its new slot, if any
    else:
        return None
    if start is None or start <= now or not visit.practitioner_id or not visit.location_id:
        return None
    if not visit.service_type or not visit.minutes or visit.minutes <= 0:
        return None
    return FreedSlot(
        start_at=start,
        minutes=visit.minutes,
        practitioner_id=visit.practitioner_id,
        specialty=visit.service_type,
        location_id=visit.location_id,
        visit_type=visit.appointment_type,
        zone=zone,
        slot_id=slot_id,
    )


def visit_value_cents(visit_type: str | None, values: Mapping[str, float]) -> int:
    """What a visit of this type earns, in cents (`values` in dollars; unknown types: ROUTINE)."""
    dollars = values.get(visit_type or DEFAULT_VISIT_TYPE, values.get(DEFAULT_VISIT_TYPE, 0.0))
    return round(dollars * 100)


def offer_deadline(slot: FreedSlot, min_lead: timedelta) -> datetime:
    """The last moment an offer of `slot` can be taken: its start less the lead time."""
    return slot.start_at - min_lead
