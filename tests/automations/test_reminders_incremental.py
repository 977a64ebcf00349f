"""appointment-reminders plans incrementally (`reminders.marks`) and still misses nothing.

A run plans only visits whose next touchpoint came due, visits new or moved since the replica
last changed, and those listed with a visit that went away. These tests hold it to what planning
every visit on every run would send, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.automations.reminder_practice import Practice, build_practice, patient, visit

import clinicflow.automations.reminders as reminders
from clinicflow.automations.reminders.policy import plan
from clinicflow.channels.pause import set_messages_paused
from clinicflow.clock import FakeClock
from clinicflow.engine import EffectState, run_now
from clinicflow.security.audit import Actor
from clinicflow.store import Database
from clinicflow.store.engine import Effect
from clinicflow.store.generations import generation_of
from clinicflow.store.messaging import ReminderMark

NOW = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 14:00 in New York
IN_TWO_DAYS = NOW + timedelta(days=2)
BOOKED = NOW - timedelta(days=20)
FAMILY_PHONE = "+15551230001"


@pytest.fixture
def practice(db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    return build_practice(db, clock, tmp_path, now=NOW)


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The appointment ids each run planned, in order."""
    seen: list[str] = []

    def counting(visit, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(visit.appointment_id)
        return plan(visit, *args, **kwargs)

    monkeypatch.setattr(reminders, "plan", counting)
    return seen


def _family(practice: Practice) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE), patient("p2", "Lucas", mobile=FAMILY_PHONE)
    )


def _pause(practice: Practice, paused: bool) -> None:
    with practice.rt.db.transaction() as session:
        set_messages_paused(
            session, paused=paused, actor=Actor.user("boss"), now=practice.clock.now()
        )


def _states(practice: Practice) -> list[str]:
    with practice.rt.db.transaction() as session:
        rows = session.scalars(
            select(Effect.state).where(Effect.kind == "message.send").order_by(Effect.id)
        )
        return [str(EffectState(s).value) for s in rows]


def test_a_run_with_nothing_changed_and_nothing_due_plans_no_visit(
    practice: Practice, planned: list[str]
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE),
        visit("a1", "p1", NOW + timedelta(days=5), booked=BOOKED),
        visit("a2", "p1", NOW + timedelta(days=9), booked=BOOKED),
    )
    practice.remind()
    assert sorted(planned) == ["a1", "a2"]
    with practice.rt.db.transaction() as session:
        query = select(ReminderMark.appointment_id, ReminderMark.next_check_at)
        marks = {row[0]: row[1] for row in session.execute(query)}
    assert marks == {"a1": NOW + timedelta(days=3), "a2": NOW + timedelta(days=2)}

    planned.clear()
    practice.clock.advance(timedelta(minutes=5))
    practice.remind()
    assert planned == []

    practice.clock.advance(timedelta(minutes=5))
    practice.sync(visit("a3", "p1", NOW + timedelta(days=12), booked=practice.clock.now()))
    practice.remind()
    assert planned == ["a3"]  # the new booking, and nothing else
    assert practice.outbox() == []


def test_a_touchpoint_is_sent_when_its_mark_comes_due(practice: Practice) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE),
        visit("a1", "p1", NOW + timedelta(days=5), booked=BOOKED),
    )
    practice.remind()
    practice.clock.set(NOW + timedelta(days=3) - timedelta(minutes=5))
    practice.remind()
    assert practice.outbox() == []
    practice.clock.set(NOW + timedelta(days=3))
    practice.remind()
    (sms,) = practice.outbox()
    assert sms.effect_key.startswith("reminder:Appointment/a1:sms-2d@")


def test_a_visit_due_hours_later_rides_along_in_its_family_message_due_now(
    practice: Practice, planned: list[str]
) -> None:
    _family(practice)
    first = NOW + timedelta(days=3)
    later = first + timedelta(hours=3)
    practice.sync(visit("a1", "p1", first, booked=BOOKED), visit("a2", "p2", later, booked=BOOKED))
    practice.remind()  # plans both; nothing due yet
    planned.clear()
    practice.clock.set(first - timedelta(days=2))
    practice.remind()
    assert planned == ["a1", "a2"]  # a1 came due; a2 was found through the shared phone
    (sms,) = practice.outbox()
    for expected in ("Maria", "Lucas", "2:00 PM", "5:00 PM"):
        assert expected in sms.body
    practice.clock.set(later - timedelta(days=2))
    practice.remind()
    assert len(practice.outbox()) == 1


def test_a_family_visit_with_nothing_due_for_days_is_not_planned_again_to_ride_along(
    practice: Practice, planned: list[str]
) -> None:
    _family(practice)
    first = NOW + timedelta(days=3)
    later = first + timedelta(days=3)
    practice.sync(visit("a1", "p1", first, booked=BOOKED), visit("a2", "p2", later, booked=BOOKED))
    practice.remind()  # plans both; nothing due yet
    planned.clear()
    practice.clock.set(first - timedelta(days=2))
    practice.remind()
    # a2's mark says its next text is three days off: it cannot ride along, so it is not planned.
    assert planned == ["a1"]
    (sms,) = practice.outbox()
    assert "Maria" in sms.body
    assert "Lucas" not in sms.body
    practice.clock.set(later - timedelta(days=2))
    practice.remind()
    assert [m.effect_key.split(":")[1] for m in practice.outbox()] == [
        "Appointment/a1",
        "Appointment/a2",
    ]


def test_a_cancelled_visit_voids_its_family_message_and_the_other_visit_is_reminded_alone(
    practice: Practice,
) -> None:
    _family(practice)
    practice.sync(
        visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED),
        visit("a2", "p2", IN_TWO_DAYS + timedelta(minutes=20), booked=BOOKED),
    )
    _pause(practice, True)
    practice.remind()  # the message listing both waits for the pause to end
    assert _states(practice) == ["pending"]

    practice.clock.advance(timedelta(minutes=10))
    practice.sync(
        visit(
            "a1", "p1", IN_TWO_DAYS, booked=BOOKED, status="cancelled", updated=practice.clock.now()
        )
    )
    _pause(practice, False)
    practice.remind()  # voids the message listing both; a2 is due on its own 20 minutes later
    assert _states(practice) == ["voided"]
    practice.clock.set(NOW + timedelta(minutes=20))
    practice.remind()
    assert _states(practice) == ["voided", "done"]
    (sms,) = practice.outbox()
    assert "Lucas" in sms.body
    assert "Maria" not in sms.body
    assert sms.effect_key.startswith("reminder:Appointment/a2:sms-2d@")


def test_a_rescheduled_visit_is_planned_at_its_new_time_and_its_old_message_voided(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    _pause(practice, True)
    practice.remind()
    moved = IN_TWO_DAYS + timedelta(days=1)
    practice.clock.advance(timedelta(minutes=10))
    practice.sync(visit("a1", "p1", moved, booked=BOOKED, updated=practice.clock.now()))
    _pause(practice, False)
    practice.remind()
    assert _states(practice) == ["voided"]  # nothing due for the new time yet
    practice.clock.set(moved - timedelta(days=2))
    practice.remind()
    (sms,) = practice.outbox()
    assert "Thursday" in sms.body or "Thu" in sms.body


def test_a_dry_run_claims_nothing_so_the_live_run_still_sends(practice: Practice) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    rehearsal = run_now(practice.rt, "appointment-reminders", requested_by="test", dry_run=True)
    assert rehearsal.units["reminder_sent"] == 1
    assert practice.outbox() == []
    live = practice.remind()
    assert live.units["reminder_sent"] == 1
    assert len(practice.outbox()) == 1


def test_every_replica_write_moves_the_generation(practice: Practice) -> None:
    with practice.rt.db.transaction() as session:
        before = generation_of(session, ["Appointment", "Patient"])
    practice.sync(patient("p1", "Maria", mobile=FAMILY_PHONE))
    practice.sync(visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED))
    practice.sync(visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED))  # the same again: no change
    with practice.rt.db.transaction() as session:
        assert generation_of(session, ["Appointment", "Patient"]) == before + 2
        assert generation_of(session, ["Appointment"]) == 1


def test_a_visit_that_comes_into_the_planning_window_with_no_replica_change_gets_its_email(
    practice: Practice,
) -> None:
    # Booked long ago, 20 days out: beyond the window (longest lead 7 days + 7 days of closure
    # slack). Nothing in the replica changes afterwards (a quiet EHR, or a sync that is down).
    start = NOW + timedelta(days=20)
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE, email="maria@example.org"),
        visit("a1", "p1", start, booked=BOOKED),
    )
    practice.remind()
    assert practice.outbox() == []
    # Hourly runs (as the 5-minute cron would) until the e-mail is due 7 days before.
    practice.clock.set(NOW + timedelta(days=1))
    while practice.clock.now() < start - timedelta(days=7):
        practice.clock.advance(timedelta(hours=1))
        practice.remind()
    (email,) = practice.outbox()
    assert email.channel == "email"
    assert email.effect_key.startswith("reminder:Appointment/a1:email-7d@")


def test_a_dry_run_after_a_policy_change_reports_what_the_live_run_then_sends(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=FAMILY_PHONE),
        visit("a1", "p1", NOW + timedelta(days=3), booked=BOOKED),
    )
    practice.remind()  # planned under the default policy: its next text is in a day
    sent_before = len(practice.outbox())
    policy = practice.rt.settings.data_dir / "reminders.toml"
    policy.write_text(
        '[[touchpoint]]\nname = "sms-3d"\nchannel = "sms"\nlead_hours = 72\nasks_reply = true\n'
        '[[touchpoint]]\nname = "sms-2d"\nchannel = "sms"\nlead_hours = 48\nasks_reply = true\n',
        encoding="utf-8",
    )
    practice.clock.advance(timedelta(minutes=5))
    rehearsal = run_now(practice.rt, "appointment-reminders", requested_by="test", dry_run=True)
    live = practice.remind()
    assert live.units["reminder_sent"] == 1  # the new 3-day text, due now
    assert rehearsal.units.get("reminder_sent", 0) == live.units["reminder_sent"]
    assert len(practice.outbox()) == sent_before + 1
