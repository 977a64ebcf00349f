"""Which events a change to the replica raises (pure): what automations care about, nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

# Deleted in the EHR, or marked entered-in-error: the visit never was. Messages about it that have
# not gone out are voided. (Not on a cancellation: "your visit is cancelled" is about it too.)
APPOINTMENT_REMOVED = "appointment.removed"

# Changes to visits longer ago than this are history being loaded, not news to act on.
EVENT_HORIZON = timedelta(days=7)
MESSAGE_HORIZON = timedelta(days=30)
_ACTIVE = frozenset({"proposed", "pending", "booked", "arrived", "checked-in"})
_HELD = frozenset({"pending", "booked", "arrived", "checked-in"})  # a place on the calendar


def _is_current(row: Mapping[str, Any], now: datetime) -> bool:
    start = row.get("start_at")
    return start is None or start >= now - EVENT_HORIZON


def appointment_events(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], now: datetime
) -> list[str]:
    """Event types for an Appointment going from `old` (None: first seen) to `new`."""
    if not _is_current(new, now):
        return []
    status = new.get("status")
    if old is None:
        booked_at = new.get("booked_at")
        if booked_at is not None and booked_at < now - EVENT_HORIZON:
            return []  # booked long ago: an import of existing schedules, not news
        if status in ("booked", "pending"):
            return ["appointment.booked"]
        return ["appointment.waitlisted"] if status == "waitlist" else []
    before = old.get("status")
    events: list[str] = []
    if status != before:
        if status == "cancelled":
            events.append("appointment.cancelled")
        elif status == "entered-in-error":
            events.append(APPOINTMENT_REMOVED)  # it never was: as if deleted
        elif status == "noshow":
            events.append("appointment.noshow")
        elif status in ("booked", "pending") and before not in _HELD:
            events.append("appointment.booked")  # includes proposed -> booked
    if status in _ACTIVE and before in _ACTIVE and new.get("start_at") != old.get("start_at"):
        events.append("appointment.rescheduled")
    confirmed = new.get("patient_status") == "accepted" and old.get("patient_status") != "accepted"
    if confirmed and status in _ACTIVE:
        events.append("appointment.confirmed")
    return events


def communication_events(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], now: datetime
) -> list[str]:
    """`message.received` for a new message from a patient that is recent enough to act on."""
    if old is not None or not new.get("from_patient"):
        return []
    sent = new.get("sent_at") or new.get("received_at")
    if sent is not None and sent < now - MESSAGE_HORIZON:
        return []
    return ["message.received"]


def events_for(
    resource_type: str, old: Mapping[str, Any] | None, new: Mapping[str, Any], now: datetime
) -> list[str]:
    """Event types raised when a resource of `resource_type` changes from `old` to `new`."""
    if resource_type == "Appointment":
        return appointment_events(old, new, now)
    if resource_type == "Communication":
        return communication_events(old, new, now)
    return []


def event_payload(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """What an event carries: statuses and times, never names or contact details."""
    payload: dict[str, Any] = {"status": new.get("status")}
    if old is not None and old.get("status") != new.get("status"):
        payload["previous_status"] = old.get("status")
    for key in ("start_at", "patient_id", "practitioner_id", "slot_id"):
        value = new.get(key)
        if value is not None:
            payload[key] = value.isoformat() if isinstance(value, datetime) else value
    if old is not None and old.get("start_at") != new.get("start_at") and old.get("start_at"):
        payload["previous_start_at"] = old["start_at"].isoformat()
    return payload
