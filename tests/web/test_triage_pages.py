"""Triage in the web app: a message posted to the API, the alarm a nurse's screen polls, the
acknowledgement that stops the ladder, and a move between pools kept as a correction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.web.staff_support import Person, add_person, csrf_of, sign_in, staff_settings

from clinicflow.automations.triage import AUTOMATION as TRIAGE
from clinicflow.automations.triage.corrections import weekly_agreement
from clinicflow.clock import FakeClock
from clinicflow.engine import EngineRuntime, InlineEnqueuer, Registry, dispatch_events
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import WorkItem
from clinicflow.store.staff import StaffSession
from clinicflow.store.triage import TriageCorrection, TriageMessage
from clinicflow.web import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def web(sqlite_db: Database, clock: FakeClock, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=sqlite_db, clock=clock)) as client:
        yield client


def _triage(db: Database, settings: Settings, clock: FakeClock) -> None:
    """What the worker does next: dispatch message.received and run message-triage."""
    rt = EngineRuntime.build(
        db=db,
        settings=settings,
        clock=clock,
        cipher=PhiCipher(keyring_from_settings(settings, create=False)),
        registry=Registry([TRIAGE]),
    )
    with db.transaction() as session:
        runs = dispatch_events(session, registry=rt.registry, now=clock.now())
    for run_id in runs:
        InlineEnqueuer(rt).enqueue_run(run_id)


def _post(web: TestClient, text: str) -> int:
    token = csrf_of(web.get("/review").text)
    answer = web.post("/api/v1/messages", json={"text": text}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 202, answer.text
    return int(answer.json()["id"])


def _signed_in(
    web: TestClient, db: Database, settings: Settings, clock: FakeClock, name: str, role: Role
) -> Person:
    person = add_person(db, settings, clock, name, role)
    sign_in(web, person, clock)
    return person


def test_an_urgent_message_posted_shows_on_the_alarm_until_a_nurse_acknowledges_it(
    web: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    _signed_in(web, sqlite_db, settings, clock, "nina", Role.NURSE)
    page = web.get("/review")
    assert "data-alarms" in page.text  # a nurse's screens poll the alarm
    assert web.get("/alarms").json() == {"urgent": []}

    message_id = _post(web, "my dad's face is drooping and he can't talk right")
    with sqlite_db.transaction() as session:
        stored = session.get_one(TriageMessage, message_id)
        assert stored.pool is None  # stored first; the decision comes from the worker
    _triage(sqlite_db, settings, clock)
    clock.advance(timedelta(minutes=3))
    (waiting,) = web.get("/alarms").json()["urgent"]
    assert waiting["id"] == message_id
    assert waiting["waiting_minutes"] == 3
    assert "drooping" not in web.get("/alarms").text  # no PHI in the alarm

    token = csrf_of(web.get("/review").text)
    done = web.post(
        f"/triage/{message_id}/acknowledge", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/review/")
    assert web.get("/alarms").json() == {"urgent": []}
    with sqlite_db.transaction() as session:
        acknowledged = session.get_one(TriageMessage, message_id)
        assert acknowledged.acknowledged_by == "nina"
        assert acknowledged.next_escalation_at is None


def test_the_alarm_poll_does_not_keep_an_idle_screen_signed_in(
    web: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    _signed_in(web, sqlite_db, settings, clock, "nina", Role.NURSE)
    with sqlite_db.transaction() as session:
        before = list(session.scalars(select(StaffSession.last_seen_at)))
    for _ in range(4):
        clock.advance(timedelta(minutes=1))
        assert web.get("/alarms").status_code == 200
    with sqlite_db.transaction() as session:
        assert list(session.scalars(select(StaffSession.last_seen_at))) == before


def test_a_front_desk_move_to_another_pool_is_kept_and_counted_as_a_correction(
    web: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    _signed_in(web, sqlite_db, settings, clock, "fran", Role.FRONT_DESK)
    message_id = _post(web, "Can you send my vaccine records to my new school?")
    _triage(sqlite_db, settings, clock)
    with sqlite_db.transaction() as session:
        message = session.get_one(TriageMessage, message_id)
        item = session.scalars(select(WorkItem).where(WorkItem.key == message.work_item_key)).one()
    assert message.pool == "records-forms"
    token = csrf_of(web.get(f"/review/{item.id}").text)
    moved = web.post(
        f"/review/{item.id}/hand-over",
        data={"csrf_token": token, "pool": "results"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    with sqlite_db.transaction() as session:
        (correction,) = session.scalars(select(TriageCorrection)).all()
        weeks = weekly_agreement(session, now=clock.now(), since=clock.now() - timedelta(days=7))
    assert (correction.from_pool, correction.to_pool, correction.corrected_by) == (
        "records-forms",
        "results",
        "fran",
    )
    assert [(w.messages, w.corrected, w.agreement) for w in weeks] == [(1, 1, 0.0)]


def test_a_posted_message_without_text_or_for_an_unknown_patient_is_refused_and_says_why(
    web: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    _signed_in(web, sqlite_db, settings, clock, "fran", Role.FRONT_DESK)
    token = csrf_of(web.get("/review").text)
    headers = {"X-CSRF-Token": token}
    blank = web.post("/api/v1/messages", json={"text": "   "}, headers=headers)
    assert blank.status_code == 422
    assert "the message has no text" in blank.text
    unknown = web.post(
        "/api/v1/messages", json={"text": "hello", "patient_id": "nobody"}, headers=headers
    )
    assert unknown.status_code == 422
    assert "no Patient/nobody" in unknown.text
    with sqlite_db.transaction() as session:
        assert session.scalars(select(TriageMessage)).all() == []


def test_leadership_may_not_post_patient_messages(
    web: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    _signed_in(web, sqlite_db, settings, clock, "lee", Role.LEADERSHIP)
    token = csrf_of(web.get("/impact").text)
    answer = web.post("/api/v1/messages", json={"text": "hello"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 403
