"""The REST API with personal access tokens: scopes, expiry, revocation, audit, CSRF."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.web.staff_support import add_person, csrf_of, sign_in, staff_settings

from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import open_work_item
from clinicflow.security.accounts import find_user, identity_of
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.security.tokens import create_token
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import AuditLog
from clinicflow.synth import write_practice
from clinicflow.web import create_app

DAY = date(2026, 11, 23)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def client(sqlite_db: Database, clock: FakeClock, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=sqlite_db, clock=clock)) as test_client:
        yield test_client


def _token(db: Database, username: str, scopes: list[str], clock: FakeClock, days: int = 30) -> str:
    with db.transaction() as session:
        user = find_user(session, username)
        assert user is not None
        return create_token(
            session, identity_of(user), name="script", scopes=scopes, days=days, now=clock.now()
        )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_reads_appointments_and_the_read_is_audited_once(
    client: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    folder = tmp_path / "practice"
    write_practice(folder, seed=5, patients=60, anchor_on=DAY, timezone="America/New_York")
    sync_folder(sqlite_db, PhiCipher(keyring_from_settings(settings, create=False)), clock, folder)
    add_person(sqlite_db, settings, clock, "dana", Role.FRONT_DESK)
    token = _token(sqlite_db, "dana", ["today:view", "patients:view"], clock)
    answer = client.get(f"/api/v1/appointments?day={DAY}", headers=_bearer(token))
    assert answer.status_code == 200
    visits = answer.json()
    assert visits
    assert {"id", "start", "patient", "practitioner", "confirmation"} <= set(visits[0])
    patient = client.get(f"/api/v1/patients/{visits[0]['patient_id']}", headers=_bearer(token))
    assert patient.json()["name"] == visits[0]["patient"]
    with sqlite_db.transaction() as session:
        rows = list(
            session.scalars(
                sa.select(AuditLog).where(AuditLog.actor == "dana", AuditLog.action == "read")
            )
        )
    assert [r.detail["view"] for r in rows] == ["api-appointments", "api-patient"]
    assert rows[0].detail["via"] == "token"


def test_a_token_does_only_what_its_scopes_say(
    client: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    add_person(sqlite_db, settings, clock, "dana", Role.FRONT_DESK)
    token = _token(sqlite_db, "dana", ["work:view"], clock)
    assert client.get("/api/v1/work-items", headers=_bearer(token)).status_code == 200
    assert client.get("/api/v1/appointments", headers=_bearer(token)).status_code == 403
    assert client.post("/api/v1/work-items/1/claim", headers=_bearer(token)).status_code == 403


def test_a_token_cannot_be_made_beyond_the_role(
    sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    add_person(sqlite_db, settings, clock, "eli", Role.AUTOMATION_ENGINEER)
    with pytest.raises(Exception, match="does not have 'today:view'"):
        _token(sqlite_db, "eli", ["today:view"], clock)


def test_an_expired_or_revoked_or_unknown_token_is_401(
    client: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    add_person(sqlite_db, settings, clock, "eli", Role.AUTOMATION_ENGINEER)
    token = _token(sqlite_db, "eli", ["automations:view"], clock, days=1)
    assert client.get("/api/v1/automations", headers=_bearer(token)).status_code == 200
    clock.advance(timedelta(days=1, seconds=1))
    assert client.get("/api/v1/automations", headers=_bearer(token)).status_code == 401
    assert client.get("/api/v1/automations", headers=_bearer("cfpat_made-up")).status_code == 401


def test_an_engineer_makes_and_revokes_a_token_on_the_tokens_page(
    client: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    engineer = add_person(sqlite_db, settings, clock, "eli", Role.AUTOMATION_ENGINEER)
    sign_in(client, engineer, clock)
    page = client.get("/account/tokens")
    assert 'value="today:view"' not in page.text  # only the role's own scopes are offered
    made = client.post(
        "/account/tokens",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "nightly",
            "scopes": "automations:view",
            "days": "30",
        },
    )
    secret = re.search(r'id="new-token">Your new token: <code class="secret">([^<]+)<', made.text)
    assert secret
    headers = _bearer(secret.group(1))
    assert client.get("/api/v1/me", headers=headers).json()["via"] == "token"
    assert secret.group(1) not in client.get("/account/tokens").text  # shown once
    token_id = re.search(r'action="/account/tokens/(\d+)/revoke"', made.text)
    assert token_id
    client.post(
        f"/account/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf_of(page.text)}
    )
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_session_caller_of_the_api_needs_the_csrf_header_to_change_things(
    client: TestClient, sqlite_db: Database, settings: Settings, clock: FakeClock
) -> None:
    desk = add_person(sqlite_db, settings, clock, "dana", Role.FRONT_DESK)
    cipher = PhiCipher(keyring_from_settings(settings, create=False))
    with sqlite_db.transaction() as session:
        item = open_work_item(
            session,
            cipher,
            key="k",
            pool="front-desk",
            description="Call",
            actor="test",
            now=clock.now(),
        )
    sign_in(client, desk, clock)
    assert client.post(f"/api/v1/work-items/{item.id}/claim").status_code == 403
    token = csrf_of(client.get("/today").text)
    claimed = client.post(f"/api/v1/work-items/{item.id}/claim", headers={"X-CSRF-Token": token})
    assert claimed.status_code == 204
    again = client.post(f"/api/v1/work-items/{item.id}/claim", headers={"X-CSRF-Token": token})
    assert again.status_code == 409
    assert "cannot be claimed" in again.json()["detail"]
    assert (
        client.get(
            "/api/v1/work-items/999",
        ).status_code
        == 404
    )


def test_the_openapi_schema_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/appointments",
        "/api/v1/patients/{patient_id}",
        "/api/v1/work-items",
        "/api/v1/automations",
        "/api/v1/runs",
        "/api/v1/outbox",
    ):
        assert path in paths
