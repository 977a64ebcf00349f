"""appointment-reminders and reminder-replies end to end, on SQLite and PostgreSQL.

The clock stands at 14:00 in New York on Monday 23 November 2026; a visit two days later at the
same time is due its "sms-2d" touchpoint now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from tests.automations.reminder_practice import Practice, build_practice, patient, visit

from clinicflow.automations.reminders.marks import look_again
from clinicflow.automations.reminders.stats import confirmation_rates
from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.channels.pause import set_messages_paused
from clinicflow.clock import FakeClock
from clinicflow.engine import (
    EffectState,
    InlineEnqueuer,
    MessageChannel,
    list_open,
)
from clinicflow.engine.reconcile import stale_pending
from clinicflow.security.audit import Actor, catch_up_audit_index
from clinicflow.security.audit_search import AuditQuery, search_audit
from clinicflow.store import Database
from clinicflow.store.engine import Effect, Event
from clinicflow.store.noshow import NoShowScore
from clinicflow.store.replica import Appointment

NOW = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 14:00 in New York
IN_TWO_DAYS = NOW + timedelta(days=2)
BOOKED = NOW - timedelta(days=20)
MOBILE = "+15551230001"


@pytest.fixture
def practice(db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    return build_practice(db, clock, tmp_path, now=NOW)


def _effects(practice: Practice, state: EffectState) -> int:
    with practice.rt.db.transaction() as session:
        query = select(func.count()).select_from(Effect).where(Effect.state == state)
        return int(session.scalar(query.where(Effect.kind == "message.send")) or 0)


def _reply(practice: Practice, body: str, sid: str, sender: str = MOBILE) -> None:
    practice.receive_text(body, sid, sender)


def test_a_visit_in_two_days_gets_one_text_naming_time_doctor_and_place_never_the_reason(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    outcome = practice.remind()
    assert outcome.units["reminder_sent"] == 1
    (sms,) = practice.outbox()
    assert (sms.channel, sms.to) == ("sms", MOBILE)
    for expected in ("Maria", "Dr. Ana Ruiz", "Main St Clinic", "2:00 PM", "Reply C"):
        assert expected in sms.body
    assert "HIV" not in sms.body
    assert sms.effect_key == "reminder:Appointment/a1:sms-2d@2026-11-25T19%3A00Z"

    practice.clock.advance(timedelta(minutes=5))
    again = practice.remind()
    assert again.units.get("reminder_sent", 0) == 0
    assert len(practice.outbox()) == 1


def test_two_visits_for_one_family_phone_go_out_as_one_message_listing_both(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE),
        patient("p2", "Lucas", mobile=MOBILE),
        visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED),
        visit("a2", "p2", IN_TWO_DAYS + timedelta(minutes=20), booked=BOOKED),
    )
    practice.remind()
    (sms,) = practice.outbox()
    for expected in ("Maria", "Lucas", "2:00 PM", "2:20 PM"):
        assert expected in sms.body


def test_spanish_speakers_get_the_spanish_text(practice: Practice) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE, language="es-MX"),
        visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED),
    )
    practice.remind()
    (sms,) = practice.outbox()
    assert "responda" in sms.body.lower()


def test_a_pause_holds_reminders_and_a_visit_moved_meanwhile_is_reminded_once_at_its_new_time(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    with practice.rt.db.transaction() as session:
        set_messages_paused(session, paused=True, actor=Actor.user("boss"), now=NOW, reason="storm")
    practice.remind()
    assert practice.outbox() == []
    assert _effects(practice, EffectState.PENDING) == 1

    moved = IN_TWO_DAYS + timedelta(hours=2)
    practice.clock.advance(timedelta(minutes=10))
    practice.sync(visit("a1", "p1", moved, booked=BOOKED, updated=practice.clock.now()))
    with practice.rt.db.transaction() as session:
        set_messages_paused(
            session, paused=False, actor=Actor.user("boss"), now=practice.clock.now()
        )
    practice.clock.advance(timedelta(hours=2))
    practice.remind()  # plans the new time; the held message for the old time is voided
    with practice.rt.db.transaction() as session:
        due = stale_pending(
            session, now=practice.clock.now(), older_than=practice.clock.now(), limit=50
        )
    for effect_id in due:
        InlineEnqueuer(practice.rt).enqueue_effect(effect_id)
    (sms,) = practice.outbox()
    assert "4:00" in sms.body
    assert _effects(practice, EffectState.VOIDED) == 1


def test_a_stop_moves_reminders_to_email_and_a_contact_with_neither_gets_nothing(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE, email="maria@example.org"),
        patient("p2", "Lucas", mobile="+15551230002"),
        visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED),
        visit("a2", "p2", IN_TWO_DAYS, booked=BOOKED),
    )
    with practice.rt.db.transaction() as session:
        for number in (MOBILE, "+15551230002"):
            record_consent(
                session,
                channel=MessageChannel.SMS,
                contact_digest=practice.cipher.blind_index("phone", number),
                opted_out=True,
                keyword="STOP",
                source=ConsentSource.SMS,
                now=NOW,
            )
    outcome = practice.remind()
    (email,) = practice.outbox()
    assert (email.channel, email.to) == ("email", "maria@example.org")
    assert outcome.units["no_contact"] == 1


def test_quiet_hours_hold_a_text_until_eight_in_the_morning(practice: Practice) -> None:
    evening = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # 21:30 in New York
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE),
        visit("a1", "p1", evening + timedelta(days=2), booked=BOOKED),
    )
    practice.clock.set(evening)
    practice.remind()  # sms-2d falls due at 21:30: planned for 8:00 the next morning
    assert practice.outbox() == []
    practice.clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # 8:00 in New York
    practice.remind()
    (sms,) = practice.outbox()
    assert sms.sent_at == practice.clock.now()


def test_a_c_reply_confirms_the_visit_in_the_ehr_and_thanks_the_patient(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    practice.remind()
    practice.clock.advance(timedelta(minutes=30))
    _reply(practice, "c", "SM1")
    _reply(practice, "c", "SM1")  # Twilio redelivered the webhook
    with practice.rt.db.transaction() as session:
        row = session.get_one(Appointment, "a1")
        assert row.patient_status == "accepted"
    thanks = practice.outbox()[1:]
    assert [(m.to, "Confirmed" in m.body) for m in thanks] == [(MOBILE, True)]


def test_an_x_reply_cancels_in_the_ehr_raises_appointment_cancelled_and_confirms_to_the_patient(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    practice.remind()
    _reply(practice, "X", "SM2")
    with practice.rt.db.transaction() as session:
        assert session.get_one(Appointment, "a1").status == "cancelled"
        types = set(session.scalars(select(Event.type)))
    assert "appointment.cancelled" in types
    assert "canceled" in practice.outbox()[-1].body


def test_free_text_goes_to_triage_with_the_visits_it_answers_never_acted_on_by_a_guess(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    practice.remind()
    _reply(practice, "I have chest pain, should I still come?", "SM3")
    with practice.rt.db.transaction() as session:
        items = list_open(session, practice.cipher, reader="test", now=practice.clock.now())
        received = session.scalars(select(Event).where(Event.type == "message.received")).one()
        status = session.get_one(Appointment, "a1").status
    assert received.resource_type == "InboundMessage"
    assert received.payload == {"channel": "sms", "patient_id": "p1", "appointments": ["a1"]}
    # message-triage is not installed in this practice, so a person reads it at the desk.
    (item,) = items
    assert item.pool == "front-desk"
    assert "chest pain" in item.description
    assert status == "booked"
    assert len(practice.outbox()) == 1  # reminder-replies sent nothing back


def test_the_confirmation_rate_counts_reminded_visits_per_day_and_provider(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE),
        patient("p2", "Lucas", mobile="+15551230002"),
        visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED),
        visit("a2", "p2", IN_TWO_DAYS, booked=BOOKED),
    )
    practice.remind()
    _reply(practice, "YES", "SM4")
    with practice.rt.db.transaction() as session:
        rates = confirmation_rates(
            session, practice.cipher, zone=ZoneInfo("America/New_York"), now=practice.clock.now()
        )
    assert [r.to_json() for r in rates.by_day] == [
        {"label": "2026-11-25", "reminded": 2, "confirmed": 1, "rate": 0.5}
    ]
    assert [(r.label, r.reminded, r.confirmed) for r in rates.by_provider] == [
        ("Dr. Ana Ruiz", 2, 1)
    ]


@pytest.mark.parametrize("risk", [None, 0.1, 0.3])
def test_a_visit_scored_likely_to_be_missed_gets_an_extra_reminder_the_day_before(
    practice: Practice, risk: float | None
) -> None:
    in_three_days = NOW + timedelta(days=3)
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", in_three_days, booked=BOOKED)
    )
    practice.remind()  # plans the visit: nothing is due yet
    if risk is not None:
        with practice.rt.db.transaction() as session:
            session.add(
                NoShowScore(
                    appointment_id="a1",
                    probability=risk,
                    reasons=["booked 20 days ahead"],
                    model_trained_at=NOW,
                    scored_at=NOW,
                )
            )
            look_again(session, ["a1"], NOW)
    for _ in range(2):
        practice.clock.advance(timedelta(days=1))
        practice.remind()
    sent = [m.effect_key.split(":")[2].split("@")[0] for m in practice.outbox()]
    assert sent == (["sms-2d", "sms-1d-risk"] if risk == 0.3 else ["sms-2d"])
    assert all("Reply C" in m.body for m in practice.outbox())


def test_a_patient_audit_search_finds_the_reminder_run_reading_her_contacts_and_the_send(
    practice: Practice,
) -> None:
    # Both rows are indexed by patient in batches (the worker's audit-index job); a search by
    # patient catches up first, as the audit page does, so it misses neither.
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE), visit("a1", "p1", IN_TWO_DAYS, booked=BOOKED)
    )
    practice.remind()
    assert len(practice.outbox()) == 1
    with practice.rt.db.transaction() as session:
        catch_up_audit_index(session)
        found = {(e.actor, e.action) for e in search_audit(session, AuditQuery(patient_id="p1"))}
    assert {("appointment-reminders", "read"), ("appointment-reminders", "send")} <= found
