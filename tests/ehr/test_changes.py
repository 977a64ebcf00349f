"""Which replica changes raise events: news about current visits and messages, not history."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.ehr.changes import appointment_events, communication_events

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TOMORROW = NOW + timedelta(days=1)


def appt(status, start=TOMORROW, patient_status="needs-action"):
    return {"status": status, "start_at": start, "patient_status": patient_status}


def test_a_new_booking_raises_booked():
    assert appointment_events(None, appt("booked"), NOW) == ["appointment.booked"]


def test_a_cancellation_raises_cancelled():
    assert appointment_events(appt("booked"), appt("cancelled"), NOW) == ["appointment.cancelled"]


def test_a_moved_visit_raises_rescheduled():
    moved = appt("booked", start=TOMORROW + timedelta(hours=2))
    assert appointment_events(appt("booked"), moved, NOW) == ["appointment.rescheduled"]


def test_a_no_show_raises_noshow():
    past = NOW - timedelta(hours=3)
    assert appointment_events(appt("booked", past), appt("noshow", past), NOW) == [
        "appointment.noshow"
    ]


def test_a_patient_accepting_raises_confirmed():
    accepted = appt("booked", patient_status="accepted")
    assert appointment_events(appt("booked"), accepted, NOW) == ["appointment.confirmed"]


def test_loading_last_years_history_raises_nothing():
    old = NOW - timedelta(days=200)
    assert appointment_events(None, appt("fulfilled", old), NOW) == []
    assert appointment_events(None, appt("booked", old), NOW) == []
    assert appointment_events(appt("booked", old), appt("cancelled", old), NOW) == []


def test_a_recent_message_from_a_patient_raises_received_once():
    msg = {"from_patient": True, "sent_at": NOW - timedelta(hours=1)}
    assert communication_events(None, msg, NOW) == ["message.received"]
    assert communication_events(msg, msg, NOW) == []
    assert communication_events(None, {**msg, "from_patient": False}, NOW) == []


statuses = st.sampled_from(["booked", "pending", "cancelled", "noshow", "fulfilled", "waitlist"])


@given(status=statuses, hours=st.integers(-500, 500))
def test_an_unchanged_appointment_never_raises_an_event(status, hours):
    row = appt(status, NOW + timedelta(hours=hours))
    assert appointment_events(row, dict(row), NOW) == []


def test_a_proposed_visit_that_gets_booked_raises_booked():
    assert appointment_events(appt("proposed"), appt("booked"), NOW) == ["appointment.booked"]


def test_importing_a_visit_booked_long_ago_raises_nothing():
    old_booking = {**appt("booked"), "booked_at": NOW - timedelta(days=40)}
    assert appointment_events(None, old_booking, NOW) == []
    fresh = {**appt("booked"), "booked_at": NOW - timedelta(hours=2)}
    assert appointment_events(None, fresh, NOW) == ["appointment.booked"]
