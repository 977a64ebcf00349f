"""waitlist-backfill and waitlist-waves end to end, on SQLite and PostgreSQL.

A patient cancels by texting X to their reminder; the freed time goes to the waitlist in waves;
the first "Y" books it in the EHR (the replica, with no EHR connected) and everyone else offered
is told. The clock stands at 14:00 in New York on Monday 23 November 2026.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from tests.automations.reminder_practice import Practice, Resource, build_practice, patient, visit

from clinicflow.automations.waitlist.automation import AUTOMATION, WAVES
from clinicflow.automations.waitlist.stats import backfill_stats
from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.clock import FakeClock
from clinicflow.engine import MessageChannel, list_open, run_now
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.replica import Appointment
from clinicflow.store.waitlist import FreedSlotRecord, WaitlistOffer
from clinicflow.web import create_app

NOW = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 14:00 in New York
IN_TWO_DAYS = NOW + timedelta(days=2)
BOOKED = NOW - timedelta(days=20)
MOBILE = "+15551230001"
FAMILY_MEDICINE = {"coding": [{"system": "http://example.org/service", "code": "124"}]}


@pytest.fixture
def practice(db: Database, clock: FakeClock, tmp_path: Path) -> Practice:
    return build_practice(db, clock, tmp_path, now=NOW, extra=[AUTOMATION, WAVES])


def booked_visit(aid: str, pid: str, start: datetime) -> Resource:
    """A booked family-medicine visit with Dr. Ruiz at the clinic."""
    return visit(aid, pid, start, booked=BOOKED) | {
        "serviceType": [FAMILY_MEDICINE],
        "minutesDuration": 20,
    }


def waiting(
    wid: str, pid: str, *, priority: int = 0, listed_days_ago: int = 10, doctor: bool = True
) -> Resource:
    """A waitlist request for family medicine (with Dr. Ruiz, or anyone), any day this month."""
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{pid}"}, "status": "needs-action"}
    ]
    if doctor:
        participants.append({"actor": {"reference": "Practitioner/dr1"}, "status": "needs-action"})
    created = NOW - timedelta(days=listed_days_ago)
    return {
        "resourceType": "Appointment",
        "id": wid,
        "meta": {"lastUpdated": created.isoformat()},
        "status": "waitlist",
        "serviceType": [FAMILY_MEDICINE],
        "appointmentType": {"coding": [{"code": "ROUTINE"}]},
        "minutesDuration": 20,
        "created": created.isoformat(),
        "priority": priority,
        "participant": participants,
        "requestedPeriod": [{"start": "2026-11-23", "end": "2026-12-20"}],
    }


def phone(n: int) -> str:
    return f"+1555123{n:04d}"


def _with_waitlist(practice: Practice, waiting_patients: int = 5) -> None:
    """Maria's visit in two days, and patients w1..wN waiting (w1 most urgent)."""
    resources = [patient("p1", "Maria", mobile=MOBILE), booked_visit("a1", "p1", IN_TWO_DAYS)]
    for n in range(1, waiting_patients + 1):
        resources.append(patient(f"w{n}", f"Wait{n}", mobile=phone(100 + n)))
        resources.append(waiting(f"e{n}", f"w{n}", priority=n, listed_days_ago=30 - n))
    practice.sync(*resources)


def _offers_sent(practice: Practice) -> dict[str, str]:
    """Each phone that got an offer, and the offer's text."""
    return {m.to: m.body for m in practice.outbox() if "earlier appointment opened" in m.body}


def _cancel_by_text(practice: Practice) -> None:
    practice.remind()
    practice.clock.advance(timedelta(minutes=10))
    practice.receive_text("X", "SM-cancel", MOBILE)


def test_cancel_by_text_offers_the_slot_a_y_books_it_and_the_others_are_told(
    practice: Practice,
) -> None:
    _with_waitlist(practice)
    _cancel_by_text(practice)

    offers = _offers_sent(practice)
    assert sorted(offers) == [phone(101), phone(102), phone(103)]  # priority 1, 2, 3 first
    body = offers[phone(102)]
    for expected in ("Wait2", "Wed, Nov 25 at 2:00 PM", "Dr. Ana Ruiz", "Reply Y", "/claim/"):
        assert expected in body
    assert "HIV" not in body

    practice.clock.advance(timedelta(minutes=4))
    practice.receive_text("Y", "SM-claim-2", phone(102))
    with practice.rt.db.transaction() as session:
        entry = session.get_one(Appointment, "e2")
        assert entry.status == "booked"
        assert entry.start_at == IN_TWO_DAYS
        assert (entry.practitioner_id, entry.location_id) == ("dr1", "loc1")
        record = session.scalars(select(FreedSlotRecord)).one()
        assert (record.state, record.booked_entry_id, record.value_cents) == ("booked", "e2", 15000)

    practice.clock.advance(timedelta(minutes=1))
    practice.receive_text("Y", "SM-claim-1", phone(101))  # a moment too late
    by_phone: dict[str, list[str]] = {}
    for message in practice.outbox():
        by_phone.setdefault(message.to, []).append(message.body)
    assert "it is yours. Booked" in by_phone[phone(102)][-1]
    assert "just taken" in by_phone[phone(101)][-1]
    assert "has been filled" in by_phone[phone(103)][-1]
    assert phone(104) not in by_phone  # the second wave never went out

    practice.clock.advance(timedelta(minutes=20))
    waves = run_now(practice.rt, "waitlist-waves", requested_by="test")
    assert waves.units.get("offer_sent", 0) == 0
    with practice.rt.db.transaction() as session:
        states = {o.entry_id: o.state for o in session.scalars(select(WaitlistOffer))}
    assert states == {"e1": "taken", "e2": "booked", "e3": "closed"}


def test_waves_go_out_a_gap_apart_and_an_unfilled_slot_goes_to_the_front_desk(
    practice: Practice,
) -> None:
    _with_waitlist(practice, waiting_patients=7)
    _cancel_by_text(practice)
    assert len(_offers_sent(practice)) == 3

    practice.clock.advance(timedelta(minutes=5))
    run_now(practice.rt, "waitlist-waves", requested_by="test")
    assert len(_offers_sent(practice)) == 3  # the next wave is not due yet

    practice.clock.advance(timedelta(minutes=11))
    run_now(practice.rt, "waitlist-waves", requested_by="test")
    assert len(_offers_sent(practice)) == 6

    for _ in range(4):
        practice.clock.advance(timedelta(minutes=15))
        run_now(practice.rt, "waitlist-waves", requested_by="test")
    assert len(_offers_sent(practice)) == 7  # everyone who fits was offered it, once
    with practice.rt.db.transaction() as session:
        record = session.scalars(select(FreedSlotRecord)).one()
        assert record.state == "unfilled"
        items = list_open(
            session, practice.cipher, reader="test", now=practice.clock.now(), pool="front-desk"
        )
    (item,) = [i for i in items if "freed" in i.description]
    assert "still open" in item.description
    assert "Dr. Ana Ruiz" in item.description


def test_the_patient_who_cancelled_and_those_opted_out_or_just_offered_are_skipped(
    practice: Practice,
) -> None:
    practice.sync(
        patient("p1", "Maria", mobile=MOBILE),
        booked_visit("a1", "p1", IN_TWO_DAYS),
        waiting("e0", "p1", priority=1),  # Maria is on the list for an earlier visit too
        patient("w1", "Optedout", mobile=phone(101)),
        waiting("e1", "w1", priority=1),
        patient("w2", "Email", mobile=phone(102), email="w2@example.org"),
        waiting("e2", "w2", priority=2),
        patient("w3", "Plain", mobile=phone(103)),
        waiting("e3", "w3", priority=9),
    )
    with practice.rt.db.transaction() as session:
        for number in (phone(101), phone(102)):
            record_consent(
                session,
                channel=MessageChannel.SMS,
                contact_digest=practice.cipher.blind_index("phone", number),
                opted_out=True,
                keyword="STOP",
                source=ConsentSource.SMS,
                now=NOW,
            )
    _cancel_by_text(practice)
    got = {(m.channel, m.to) for m in practice.outbox() if "earlier appointment" in m.body}
    # w1 has no other way to be reached; w2 opted out of texts, so e-mail; Maria freed it.
    assert got == {("email", "w2@example.org"), ("sms", phone(103))}


def test_a_rescheduled_visit_frees_its_old_time(practice: Practice) -> None:
    _with_waitlist(practice, waiting_patients=1)
    practice.clock.advance(timedelta(minutes=10))
    moved = booked_visit("a1", "p1", IN_TWO_DAYS + timedelta(days=1))
    moved["meta"] = {"lastUpdated": practice.clock.now().isoformat()}
    practice.sync(moved)
    practice.settle()
    (offer,) = _offers_sent(practice).values()
    assert "Wed, Nov 25 at 2:00 PM" in offer


def test_a_slot_rebooked_in_the_ehr_gets_no_more_offers(practice: Practice) -> None:
    _with_waitlist(practice, waiting_patients=6)
    _cancel_by_text(practice)
    assert len(_offers_sent(practice)) == 3
    practice.sync(patient("p9", "Phone", mobile=phone(999)), booked_visit("a9", "p9", IN_TWO_DAYS))
    practice.clock.advance(timedelta(minutes=16))
    run_now(practice.rt, "waitlist-waves", requested_by="test")
    assert len(_offers_sent(practice)) == 3
    with practice.rt.db.transaction() as session:
        record = session.scalars(select(FreedSlotRecord)).one()
    assert (record.state, record.closed_why) == ("closed", "the time was booked in the EHR")


def test_n_passes_and_leaves_the_patient_on_the_list_with_no_work_item(
    practice: Practice,
) -> None:
    _with_waitlist(practice, waiting_patients=3)
    _cancel_by_text(practice)
    practice.receive_text("no", "SM-no", phone(101))
    with practice.rt.db.transaction() as session:
        offer = session.scalars(select(WaitlistOffer).where(WaitlistOffer.entry_id == "e1")).one()
        assert offer.state == "declined"
        assert session.get_one(Appointment, "e1").status == "waitlist"
        items = list_open(session, practice.cipher, reader="test", now=practice.clock.now())
    assert not [i for i in items if "did not act on" in i.description]


def _claim_paths(practice: Practice) -> dict[str, str]:
    """Each offered phone's claim link, as a path on the public site."""
    found = {}
    for to, body in _offers_sent(practice).items():
        match = re.search(r"https?://[^/\s]+(/claim/\S+)", body)
        assert match, body
        found[to] = match.group(1)
    return found


def _web(practice: Practice) -> TestClient:
    ring = practice.cipher.ring
    settings = Settings(
        data_dir=practice.folder,
        timezone="America/New_York",
        phi_key=SecretStr(base64.b64encode(ring.active).decode()),
        phi_index_key=SecretStr(base64.b64encode(ring.index_key).decode()),
    )
    return TestClient(create_app(settings, db=practice.rt.db, clock=practice.clock))


def test_the_claim_page_books_the_first_to_press_and_tells_the_next_it_was_taken(
    practice: Practice,
) -> None:
    _with_waitlist(practice, waiting_patients=3)
    _cancel_by_text(practice)
    links = _claim_paths(practice)
    with _web(practice) as web:
        page = web.get(links[phone(102)])
        assert page.status_code == 200
        assert "Take this appointment" in page.text
        assert "Dr. Ana Ruiz" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert practice.outbox()[-1].to != phone(102)  # opening the page changed nothing

        taken = web.post(links[phone(102)], data={"action": "claim"})
        assert "It is yours" in taken.text
        again = web.post(links[phone(102)], data={"action": "claim"})  # a second tap
        assert "It is yours" in again.text
        late = web.post(links[phone(103)], data={"action": "claim"})
        assert "just taken" in late.text
        assert "just taken" in web.get(links[phone(101)]).text
        assert web.get(links[phone(101)][:-3] + "abc").status_code == 404

    practice.settle()
    with practice.rt.db.transaction() as session:
        assert session.get_one(Appointment, "e2").status == "booked"
        assert session.get_one(Appointment, "e3").status == "waitlist"
    booked = [m for m in practice.outbox() if m.to == phone(102)]
    assert [("it is yours" in m.body) for m in booked] == [False, True]  # the offer, then one


def test_an_offer_ends_at_the_lead_time_before_the_slot(practice: Practice) -> None:
    _with_waitlist(practice, waiting_patients=1)
    _cancel_by_text(practice)
    (link,) = _claim_paths(practice).values()
    practice.clock.set(IN_TWO_DAYS - timedelta(minutes=119))
    with _web(practice) as web:
        assert "This offer has ended" in web.get(link).text
        assert "This offer has ended" in web.post(link, data={"action": "claim"}).text
    practice.settle()
    with practice.rt.db.transaction() as session:
        assert session.get_one(Appointment, "e1").status == "waitlist"


def test_the_backfill_stats_count_freed_offered_booked_and_the_revenue(
    practice: Practice,
) -> None:
    _with_waitlist(practice, waiting_patients=3)
    _cancel_by_text(practice)
    practice.clock.advance(timedelta(minutes=6))
    practice.receive_text("Y", "SM-claim-3", phone(103))
    with practice.rt.db.transaction() as session:
        stats = backfill_stats(session, now=practice.clock.now())
    assert stats.to_json() == {
        "days": 30,
        "freed": 1,
        "offered": 1,
        "booked": 1,
        "unfilled": 0,
        "open": 0,
        "fill_rate": 1.0,
        "median_fill_min": 6.0,
        "revenue_recovered": 150.0,
    }


def test_a_booking_the_ehr_refuses_becomes_an_urgent_work_item(practice: Practice) -> None:
    _with_waitlist(practice, waiting_patients=1)
    _cancel_by_text(practice)
    gone = waiting("e1", "w1", priority=1, listed_days_ago=29) | {
        "status": "cancelled",
        "meta": {"lastUpdated": practice.clock.now().isoformat()},
    }
    practice.sync(gone)  # the front desk took the patient off the list in the EHR meanwhile
    practice.settle()
    practice.receive_text("Y", "SM-late", phone(101))
    run_now(practice.rt, "waitlist-waves", requested_by="test")
    with practice.rt.db.transaction() as session:
        assert session.get_one(Appointment, "e1").status == "cancelled"
        items = list_open(
            session, practice.cipher, reader="test", now=practice.clock.now(), pool="front-desk"
        )
    (item,) = [i for i in items if "does not show the booking" in i.description]
    assert item.priority == "urgent"
    again = run_now(practice.rt, "waitlist-waves", requested_by="test")
    assert again.units.get("booking_refused", 0) == 0  # seen again, asked once
    with practice.rt.db.transaction() as session:
        items = list_open(session, practice.cipher, reader="test", now=practice.clock.now())
    assert len([i for i in items if "does not show the booking" in i.description]) == 1
