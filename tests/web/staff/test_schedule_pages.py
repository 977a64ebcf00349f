"""Today's scheduling parts and the waitlist page: no-show risk, overbooking answers, backfilled
visits, putting patients on the waitlist and taking them off."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.web.staff_practice import DAY, page_text, person
from tests.web.staff_support import csrf_of, sign_in

from clinicflow.clock import FakeClock
from clinicflow.security.permissions import Role
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.generations import bump_generations
from clinicflow.store.noshow import NoShowScore
from clinicflow.store.overbooking import OverbookDecision
from clinicflow.store.replica import Appointment
from clinicflow.store.waitlist import FreedSlotRecord


def test_today_shows_each_scored_visits_risk_and_the_sessions_expected_no_shows(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    mine = _score_one_provider(sqlite_db, clock, 0.5)
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    page = app_client.get(f"/today?day={DAY}").text
    assert "No-show risk" in page
    assert page.count('class="risk-high">50%</span>') == len(mine)
    assert "2 missed visits before" in page
    expected = 0.5 * len(mine)
    assert f"Expected no-shows: about {expected:.1f}" in page_text(page)
    if expected >= 1:
        assert f"room to overbook {int(expected)} visit" in page


def _score_one_provider(sqlite_db: Database, clock: FakeClock, probability: float) -> list[str]:
    """Score every booked visit of the first provider on DAY; the scored visits' ids."""
    start = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    with sqlite_db.transaction() as session:
        visits = list(
            session.scalars(
                sa.select(Appointment).where(
                    Appointment.start_at >= start,
                    Appointment.start_at < start + timedelta(days=1),
                    Appointment.status == "booked",
                )
            )
        )
        provider = visits[0].practitioner_id
        mine = [v for v in visits if v.practitioner_id == provider]
        for visit in mine:
            session.add(
                NoShowScore(
                    appointment_id=visit.fhir_id,
                    probability=probability,
                    reasons=["2 missed visits before"],
                    model_trained_at=clock.now(),
                    scored_at=clock.now(),
                )
            )
        bump_generations(session, ["NoShowScore"])
    return [v.fhir_id for v in mine]


def _provider_of(sqlite_db: Database, appointment_id: str) -> str:
    with sqlite_db.transaction() as session:
        provider = session.get_one(Appointment, appointment_id).practitioner_id
    assert provider is not None
    return provider


def test_a_scheduler_accepts_or_dismisses_a_providers_overbooking_suggestion(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    provider = _provider_of(sqlite_db, _score_one_provider(sqlite_db, clock, 0.9)[0])
    sign_in(app_client, person(sqlite_db, settings, clock, Role.SCHEDULER), clock)
    page = app_client.get(f"/today?day={DAY}")
    assert 'id="overbooking"' in page.text
    token = csrf_of(page.text)
    form = {"csrf_token": token, "practitioner": provider, "day": DAY}
    accepted = app_client.post("/today/overbooking", data={**form, "decision": "accepted"})
    assert accepted.status_code == 200  # followed the redirect back to the board
    assert "Accepted by" in accepted.text
    assert ": book up to" in accepted.text
    dismissed = app_client.post("/today/overbooking", data={**form, "decision": "dismissed"})
    assert "Dismissed by" in dismissed.text
    with sqlite_db.transaction() as session:
        (decision,) = session.scalars(sa.select(OverbookDecision))
        assert (decision.practitioner_id, decision.decision) == (provider, "dismissed")
        assert decision.room >= 1
    nobody = app_client.post(
        "/today/overbooking", data={**form, "practitioner": "nobody", "decision": "accepted"}
    )
    assert nobody.status_code == 409


def test_only_people_who_schedule_may_decide_on_overbooking(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    provider = _provider_of(sqlite_db, _score_one_provider(sqlite_db, clock, 0.9)[0])
    sign_in(app_client, person(sqlite_db, settings, clock, Role.NURSE), clock)
    page = app_client.get(f"/today?day={DAY}")
    assert 'id="overbooking"' in page.text
    assert 'action="/today/overbooking"' not in page.text
    form = {"csrf_token": csrf_of(page.text), "practitioner": provider, "day": DAY}
    refused = app_client.post("/today/overbooking", data={**form, "decision": "accepted"})
    assert refused.status_code == 403


def test_today_marks_a_visit_the_waitlist_backfilled(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    start = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    with sqlite_db.transaction() as session:
        visit = session.scalars(
            sa.select(Appointment).where(
                Appointment.start_at >= start,
                Appointment.start_at < start + timedelta(days=1),
                Appointment.status == "booked",
            )
        ).first()
        assert visit is not None
        assert visit.start_at is not None
        session.add(
            FreedSlotRecord(
                slot_key=f"Practitioner/{visit.practitioner_id}@{visit.start_at}#gone",
                freed_by="gone",
                practitioner_id=visit.practitioner_id or "",
                location_id=visit.location_id or "",
                specialty="any",
                start_at=visit.start_at,
                minutes=visit.minutes or 20,
                freed_at=clock.now(),
                state="booked",
                waves_sent=1,
                booked_entry_id=visit.fhir_id,
                value_cents=15000,
            )
        )
        bump_generations(session, ["Appointment"])
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    page = app_client.get(f"/today?day={DAY}").text
    assert page.count(">backfilled</span>") == 1


def test_the_front_desk_puts_a_patient_on_the_waitlist_and_takes_them_off(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    with sqlite_db.transaction() as session:
        patient_id = session.scalars(sa.select(Appointment.patient_id).limit(1)).one()
        before = session.scalar(
            sa.select(sa.func.count())
            .select_from(Appointment)
            .where(Appointment.status == "waitlist")
        )
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    page = app_client.get("/waitlist")
    assert page.status_code == 200
    assert page.text.count('class="entry"') == before
    provider = re.search(r'<option value="(practitioner:[^"]+)"', page.text)
    assert provider is not None
    form = {
        "csrf_token": csrf_of(page.text),
        "patient": patient_id,
        "wanted": provider.group(1),
        "visit_type": "FOLLOWUP",
        "earliest": "2026-11-24",
        "latest": "2026-12-20",
        "priority": "2",
        "windows": "tue 08:00-12:00, thu 13:00-17:00",
        "contact": "email",
    }
    bad = app_client.post("/waitlist", data={**form, "windows": "someday"})
    assert bad.status_code == 422
    assert "is not a window like" in bad.text
    added = app_client.post("/waitlist", data=form)
    assert added.status_code == 200  # back on the waitlist page
    assert added.text.count('class="entry"') == before + 1
    assert "tue 08:00-12:00, thu 13:00-17:00" in added.text
    assert ">here</span>" in added.text
    with sqlite_db.transaction() as session:
        entry = session.scalars(
            sa.select(Appointment).where(Appointment.fhir_id.like("wl-%"))
        ).one()
        assert (entry.status, entry.patient_id, entry.appointment_type) == (
            "waitlist",
            patient_id,
            "FOLLOWUP",
        )
        assert entry.requested_end_on == date(2026, 12, 20)
    removed = app_client.post(
        f"/waitlist/{entry.fhir_id}/remove", data={"csrf_token": csrf_of(added.text)}
    )
    assert removed.text.count('class="entry"') == before
    with sqlite_db.transaction() as session:
        assert session.get_one(Appointment, entry.fhir_id).status == "cancelled"


def test_a_nurse_sees_the_waitlist_but_may_not_change_it(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.NURSE), clock)
    page = app_client.get("/waitlist")
    assert page.status_code == 200
    assert 'id="add-to-waitlist"' not in page.text
    refused = app_client.post("/waitlist/x/remove", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
