"""Which changes free a slot, what filling it is worth, and how a waitlist entry is booked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.automations.waitlist.freed import (
    CANCELLED,
    RESCHEDULED,
    ChangedVisit,
    freed_slot,
    visit_value_cents,
)
from clinicflow.ehr.remote_writeback import Verdict, decide_book
from clinicflow.ehr.writeback import book_entry, booking
from clinicflow.errors import InputError

NOW = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/New_York")
START = NOW + timedelta(days=2)


def _visit(**changes: object) -> ChangedVisit:
    values: dict[str, object] = {
        "fhir_id": "a1",
        "status": "cancelled",
        "start_at": START,
        "minutes": 20,
        "practitioner_id": "dr1",
        "location_id": "loc1",
        "service_type": "124",
        "appointment_type": "ROUTINE",
        "slot_id": "s1",
    }
    values.update(changes)
    return ChangedVisit(**values)  # type: ignore[arg-type]


def test_a_cancelled_booked_visit_frees_its_own_time_and_slot() -> None:
    slot = freed_slot(_visit(), CANCELLED, {"previous_status": "booked"}, zone=ZONE, now=NOW)
    assert slot is not None
    assert (slot.start_at, slot.minutes, slot.slot_id, slot.specialty) == (START, 20, "s1", "124")


def test_a_reschedule_frees_the_time_the_visit_held_before() -> None:
    before = START - timedelta(hours=3)
    slot = freed_slot(
        _visit(status="booked", start_at=START),
        RESCHEDULED,
        {"previous_start_at": before.isoformat()},
        zone=ZONE,
        now=NOW,
    )
    assert slot is not None
    assert (slot.start_at, slot.slot_id) == (before, None)


@pytest.mark.parametrize(
    ("visit", "payload"),
    [
        (_visit(), {"previous_status": "waitlist"}),  # a request withdrawn: nothing was held
        (_visit(), {"previous_status": "proposed"}),
        (_visit(start_at=NOW - timedelta(minutes=1)), {"previous_status": "booked"}),  # past
        (_visit(practitioner_id=None), {"previous_status": "booked"}),
        (_visit(location_id=None), {"previous_status": "booked"}),
        (_visit(service_type=None), {"previous_status": "booked"}),
        (_visit(minutes=0), {"previous_status": "booked"}),
    ],
)
def test_changes_that_free_nothing(visit: ChangedVisit, payload: dict[str, object]) -> None:
    assert freed_slot(visit, CANCELLED, payload, zone=ZONE, now=NOW) is None


@given(
    status=st.sampled_from(["booked", "pending", "arrived", "checked-in", "waitlist", "proposed"]),
    minutes_ahead=st.integers(min_value=-600, max_value=60 * 24 * 60),
)
def test_a_freed_slot_is_always_in_the_future_and_was_held(status: str, minutes_ahead: int) -> None:
    start = NOW + timedelta(minutes=minutes_ahead)
    slot = freed_slot(
        _visit(start_at=start), CANCELLED, {"previous_status": status}, zone=ZONE, now=NOW
    )
    held = status in ("booked", "pending", "arrived", "checked-in")
    assert (slot is not None) == (held and start > NOW)


def test_visit_values_are_in_cents_and_unknown_types_count_as_routine() -> None:
    values = {"ROUTINE": 150.0, "CHECKUP": 180.5}
    assert visit_value_cents("CHECKUP", values) == 18050
    assert visit_value_cents("WALKIN", values) == 15000
    assert visit_value_cents(None, values) == 15000


WAITING = {
    "resourceType": "Appointment",
    "id": "e1",
    "status": "waitlist",
    "participant": [
        {"actor": {"reference": "Patient/p1"}, "status": "needs-action"},
        {"actor": {"reference": "Practitioner/dr9"}, "status": "needs-action"},
    ],
}
FIELDS = booking(
    start=START,
    end=START + timedelta(minutes=20),
    practitioner_id="dr1",
    location_id="loc1",
    slot_id="s1",
)


def test_booking_a_waitlist_entry_gives_it_the_slots_time_people_and_place() -> None:
    booked = book_entry(dict(WAITING), FIELDS)
    assert booked["status"] == "booked"
    assert booked["start"] == START.isoformat()
    assert booked["minutesDuration"] == 20
    assert booked["slot"] == [{"reference": "Slot/s1"}]
    assert booked["participant"] == [
        {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
        {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
        {"actor": {"reference": "Location/loc1"}, "status": "accepted"},
    ]
    assert WAITING["status"] == "waitlist"  # the input is left alone


def test_an_entry_no_longer_waiting_is_not_booked() -> None:
    with pytest.raises(InputError, match="no longer on the waitlist"):
        book_entry(dict(WAITING, status="cancelled"), FIELDS)


def test_the_ehr_decides_a_booking_from_what_it_holds_now() -> None:
    start = START.isoformat()
    assert decide_book(WAITING, start).verdict is Verdict.APPLY
    already = {**WAITING, "status": "booked", "start": START.astimezone(ZONE).isoformat()}
    assert decide_book(already, start).verdict is Verdict.ALREADY
    elsewhere = {**WAITING, "status": "booked", "start": (START + timedelta(days=1)).isoformat()}
    assert decide_book(elsewhere, start).verdict is Verdict.STALE
    assert decide_book({**WAITING, "status": "cancelled"}, start).verdict is Verdict.STALE
