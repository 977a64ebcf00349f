"""The staff pages as their users work them: Today, the review queue, messages, on-call, audit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.web.staff_practice import DAY, page_text, person
from tests.web.staff_support import csrf_of, sign_in

from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import Priority, open_work_item
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import WorkItem, WorkItemNote
from clinicflow.store.replica import Appointment
from clinicflow.store.staff import StaffUser


def test_today_lists_the_days_visits_by_provider_with_confirmation(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    page = app_client.get(f"/today?day={DAY}")
    assert page.status_code == 200
    start = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    with sqlite_db.transaction() as session:
        expected = session.scalar(
            sa.select(sa.func.count())
            .select_from(Appointment)
            .where(
                Appointment.start_at >= start,
                Appointment.start_at < start + timedelta(days=1),
                Appointment.status != "cancelled",
                Appointment.status != "waitlist",
                Appointment.status != "entered-in-error",
            )
        )
    rows = re.findall(r'<tr class="visit status-', page.text)
    assert expected
    assert len(rows) == expected
    assert f"{expected} visit" in page_text(page.text)
    assert "Dr." in page.text or "MD" in page.text  # providers by name, not id
    confirmed = app_client.get(f"/today?day={DAY}&confirmation=confirmed")
    assert all(
        "confirmation-confirmed" in row
        for row in re.findall(r'<tr class="visit.*?</tr>', confirmed.text, flags=re.DOTALL)
    )
    provider = re.search(r'<option value="([^"]+)">', page.text.split('name="provider"')[1])
    assert provider
    narrowed = app_client.get(f"/today?day={DAY}&provider={provider.group(1)}")
    assert 0 < len(re.findall(r'<tr class="visit', narrowed.text)) < expected


def test_a_patient_link_on_today_opens_the_patient_with_visits(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    link = re.search(
        r'href="(/patients/[^"]+)">([^<]+)</a>', app_client.get(f"/today?day={DAY}").text
    )
    assert link
    page = app_client.get(link.group(1))
    assert page.status_code == 200
    assert f"<h1>{link.group(2)}</h1>" in page.text
    assert "Visits" in page.text
    assert "no-store" in page.headers["cache-control"]
    assert app_client.get("/patients/no-such-patient").status_code == 404


def _work_item(
    db: Database,
    cipher: PhiCipher,
    clock: FakeClock,
    key: str,
    priority: Priority = Priority.ROUTINE,
    pool: str = "front-desk",
) -> int:
    with db.transaction() as session:
        opened = open_work_item(
            session,
            cipher,
            key=key,
            pool=pool,
            priority=priority,
            description=f"Call back about {key}",
            actor="test",
            now=clock.now(),
        )
    return int(opened.id)


def test_front_desk_claims_notes_and_resolves_a_work_item(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    cipher: PhiCipher,
) -> None:
    item = _work_item(sqlite_db, cipher, clock, "call-1")
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    queue = app_client.get("/review")
    assert f'href="/review/{item}"' in queue.text
    page = app_client.get(f"/review/{item}")
    token = csrf_of(page.text)
    assert app_client.post(f"/review/{item}/claim", data={"csrf_token": token}).status_code == 200
    app_client.post(f"/review/{item}/note", data={"csrf_token": token, "text": "Left a voicemail"})
    assert "Left a voicemail" in app_client.get(f"/review/{item}").text
    app_client.post(f"/review/{item}/resolve", data={"csrf_token": token, "text": "Rebooked"})
    assert f'href="/review/{item}"' not in app_client.get("/review").text
    with sqlite_db.transaction() as session:
        row = session.get(WorkItem, item)
        assert row is not None
        assert (row.status, row.owner_user) == ("completed", "frontdesk")
        notes = session.scalar(sa.select(sa.func.count()).select_from(WorkItemNote))
        body = session.scalars(sa.select(WorkItemNote.body_enc)).first()
    assert notes == 2
    assert body is not None
    assert b"voicemail" not in body  # notes are encrypted at rest


def test_a_work_item_handed_to_billing_leaves_the_front_desk_queue(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    cipher: PhiCipher,
) -> None:
    item = _work_item(sqlite_db, cipher, clock, "copay")
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    token = csrf_of(app_client.get(f"/review/{item}").text)
    app_client.post(f"/review/{item}/hand-over", data={"csrf_token": token, "pool": "billing"})
    assert f'href="/review/{item}"' not in app_client.get("/review").text
    assert f'href="/review/{item}"' in app_client.get("/review?pool=billing").text
    bad = app_client.post(f"/review/{item}/hand-over", data={"csrf_token": token, "pool": "moon"})
    assert "Choose the pool" in bad.text


def test_urgent_items_come_first_with_an_alarm_on_every_page(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    cipher: PhiCipher,
) -> None:
    routine = _work_item(sqlite_db, cipher, clock, "routine")
    urgent = _work_item(sqlite_db, cipher, clock, "chest-pain", Priority.URGENT, pool="nurses")
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    queue = app_client.get("/review?pool=all").text
    assert queue.index(f'href="/review/{urgent}"') < queue.index(f'href="/review/{routine}"')
    for path in ("/today", "/review", "/on-call"):
        assert 'id="urgent-alarm"' in app_client.get(path).text, path


def test_the_on_call_rota_takes_shifts_and_says_who_is_on_now(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
) -> None:
    nurse = person(sqlite_db, settings, clock, Role.NURSE)
    sign_in(app_client, nurse, clock)
    page = app_client.get("/on-call")
    assert "Nobody is on call right now" in page.text
    token = csrf_of(page.text)
    added = app_client.post(
        "/on-call",
        data={
            "csrf_token": token,
            "person": "nurse",
            "starts": "2026-11-23T08:00",
            "ends": "2026-11-23T20:00",
            "note": "day shift",
        },
    )
    assert added.status_code == 200
    assert "On call now: Nurse" in page_text(added.text)
    # Without an alert phone the rota says the urgent texts cannot reach her; with one, where.
    assert "no alert phone: on-screen alarm only" in page_text(added.text)
    bad = app_client.post(
        "/on-call/alert-phone", data={"csrf_token": token, "person": "nurse", "phone": "12345"}
    )
    assert bad.status_code == 422
    assert "not a phone number in international form" in bad.text
    saved = app_client.post(
        "/on-call/alert-phone",
        data={"csrf_token": token, "person": "nurse", "phone": "+1 555 777 0042"},
    )
    assert saved.status_code == 200
    assert "to \u20260042" in page_text(saved.text)
    with sqlite_db.transaction() as session:
        stored = session.scalars(
            sa.select(StaffUser.notify_phone).where(StaffUser.username == "nurse")
        ).one()
    assert stored == "+15557770042"
    wrong = app_client.post(
        "/on-call",
        data={
            "csrf_token": token,
            "person": "nurse",
            "starts": "2026-11-23T20:00",
            "ends": "2026-11-23T08:00",
        },
    )
    assert wrong.status_code == 422
    assert "must end after it starts" in wrong.text


def test_front_desk_sees_the_rota_but_cannot_change_it(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    page = app_client.get("/on-call")
    assert page.status_code == 200
    assert 'action="/on-call"' not in page.text
    refused = app_client.post(
        "/on-call",
        data={
            "csrf_token": csrf_of(page.text),
            "person": "x",
            "starts": "2026-11-23T08:00",
            "ends": "2026-11-23T09:00",
        },
    )
    assert refused.status_code == 403


def test_compliance_finds_who_looked_at_a_patient(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
) -> None:
    desk = person(sqlite_db, settings, clock, Role.FRONT_DESK)
    officer = person(sqlite_db, settings, clock, Role.COMPLIANCE)
    sign_in(app_client, desk, clock)
    link = re.search(r'href="/patients/([^"]+)"', app_client.get(f"/today?day={DAY}").text)
    assert link
    app_client.get(f"/patients/{link.group(1)}")
    app_client.post("/sign-out", data={"csrf_token": csrf_of(app_client.get("/today").text)})
    sign_in(app_client, officer, clock)
    found = app_client.get(f"/audit?patient={link.group(1)}&user=frontdesk")
    rows = re.findall(r"<tr><td>\d+</td>.*?</tr>", found.text, flags=re.DOTALL)
    views = [page_text(r) for r in rows]
    assert any(" on patient " in v for v in views)
    assert any(" on today " in v for v in views)
    assert all("frontdesk" in v for v in views)
    assert app_client.get("/today").status_code == 403  # compliance sees no patient data


def test_the_messages_page_shows_the_outbox(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.NURSE), clock)
    page = app_client.get("/messages")
    assert page.status_code == 200
    assert "The outbox is empty." in page.text
    assert "No messages from patients yet." in page.text


def test_an_engineer_switches_an_automation_to_dry_run_and_queues_a_run(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.AUTOMATION_ENGINEER), clock)
    page = app_client.get("/automations")
    token = csrf_of(page.text)
    switched = app_client.post(
        "/automations/daily-digest/switch", data={"csrf_token": token, "mode": "dry-run"}
    )
    assert "daily-digest is now dry-run" in switched.text
    row = next(
        r
        for r in re.findall(r"<tr>.*?</tr>", switched.text, flags=re.DOTALL)
        if "<td>daily-digest</td>" in r
    )
    assert 'class="mode-dry-run">dry-run<' in row
    queued = app_client.post("/automations/daily-digest/run", data={"csrf_token": token})
    assert re.search(r"Run \d+ of daily-digest queued", queued.text)
    runs = app_client.get("/api/v1/runs?automation=daily-digest").json()
    assert runs[0]["dry_run"] is True
    assert runs[0]["requested_by"] == "automationengineer"
    assert (
        app_client.post(
            "/automations/daily-digest/switch", data={"csrf_token": token, "mode": "sideways"}
        ).status_code
        == 422
    )


def test_the_board_shows_a_change_to_the_replica_at_the_next_view(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
    practice: Path,
    cipher: PhiCipher,
    tmp_path: Path,
) -> None:
    sign_in(app_client, person(sqlite_db, settings, clock, Role.FRONT_DESK), clock)
    before = app_client.get(f"/today?day={DAY}").text
    assert app_client.get(f"/today?day={DAY}").text == before  # served again, unchanged
    shown = re.findall(r'<tr class="visit status-booked', before)
    visit = next(
        v
        for v in map(json.loads, (practice / "Appointment.ndjson").read_text().splitlines())
        if v["status"] == "booked" and v.get("start", "").startswith(str(DAY))
    )
    visit["status"] = "cancelled"
    visit["meta"] = {"lastUpdated": "2026-11-23T15:00:00Z"}
    change = tmp_path / "change"
    change.mkdir()
    (change / "Appointment.ndjson").write_text(json.dumps(visit) + "\n")
    sync_folder(sqlite_db, cipher, clock, change)
    after = app_client.get(f"/today?day={DAY}").text
    assert len(re.findall(r'<tr class="visit status-booked', after)) == len(shown) - 1


def test_an_admin_adds_a_person_who_then_enrols_mfa_and_disables_a_leaver(
    app_client: TestClient,
    sqlite_db: Database,
    settings: Settings,
    clock: FakeClock,
) -> None:
    admin = person(sqlite_db, settings, clock, Role.ADMIN)
    leaver = person(sqlite_db, settings, clock, Role.BILLING)
    sign_in(app_client, admin, clock)
    page = app_client.get("/users")
    token = csrf_of(page.text)
    weak = app_client.post(
        "/users",
        data={
            "csrf_token": token,
            "username": "maria",
            "display_name": "Maria",
            "role": "nurse",
            "password": "password123456",
        },
    )
    assert weak.status_code == 422
    assert "common" in weak.text or "guess" in weak.text
    added = app_client.post(
        "/users",
        data={
            "csrf_token": token,
            "username": "maria",
            "display_name": "Maria Lopez",
            "role": "nurse",
            "password": "amber orchard falcon river",
        },
    )
    assert "Added maria" in added.text
    app_client.post(f"/users/{leaver.username}/disable", data={"csrf_token": token})
    assert app_client.post("/users/nobody/disable", data={"csrf_token": token}).status_code == 404
    with TestClient(app_client.app) as other:
        # the leaver can no longer sign in; the new person goes on to set up MFA
        form = other.get("/sign-in")
        refused = other.post(
            "/sign-in",
            data={
                "username": leaver.username,
                "password": leaver.password,
                "csrf_token": csrf_of(form.text),
            },
        )
        assert refused.status_code == 401
        form = other.get("/sign-in")
        first = other.post(
            "/sign-in",
            data={
                "username": "maria",
                "password": "amber orchard falcon river",
                "csrf_token": csrf_of(form.text),
            },
            follow_redirects=False,
        )
        assert first.headers["location"].startswith("/mfa/enrol")
