"""Signing in: password then TOTP, enrolment at the first sign-in, throttling, sessions, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.web.staff_support import Person, add_person, csrf_of, sign_in, staff_settings

from clinicflow.clock import FakeClock
from clinicflow.security.permissions import Role
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import AuditLog
from clinicflow.store.staff import StaffSession
from clinicflow.web import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def client(db: Database, clock: FakeClock, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def desk(db: Database, settings: Settings, clock: FakeClock) -> Person:
    return add_person(db, settings, clock, "dana", Role.FRONT_DESK)


def _audit_actions(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return [
            (r.actor, r.action)
            for r in session.execute(
                sa.select(AuditLog.actor, AuditLog.action).order_by(AuditLog.seq)
            )
        ]


def _password_step(client: TestClient, username: str, password: str) -> httpx.Response:
    form = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )


def test_a_page_without_a_session_sends_the_browser_to_sign_in(client: TestClient) -> None:
    answer = client.get("/today?day=2026-11-23", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Ftoday%3Fday%3D2026-11-23"


def test_the_api_without_credentials_answers_401_not_a_redirect(client: TestClient) -> None:
    answer = client.get("/api/v1/appointments")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_password_and_totp_sign_a_person_in_and_land_them_on_today(
    client: TestClient, desk: Person, clock: FakeClock, db: Database
) -> None:
    sign_in(client, desk, clock)
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>Today" in page.text
    assert ("dana", "sign-in") in _audit_actions(db)
    cookie = client.cookies.get("cf_session")
    assert cookie
    with db.transaction() as session:
        stored = list(session.scalars(sa.select(StaffSession.token_digest)))
    assert cookie not in stored  # only the digest is kept


def test_the_session_cookie_is_httponly_and_samesite_strict(
    client: TestClient, desk: Person
) -> None:
    answer = _password_step(client, desk.username, desk.password)
    cookie = answer.headers["set-cookie"]
    assert "cf_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()


def test_a_wrong_password_is_refused_with_the_same_words_as_an_unknown_user(
    client: TestClient, desk: Person, db: Database
) -> None:
    wrong = _password_step(client, desk.username, "not the password at all")
    unknown = _password_step(client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    message = "That username and password do not match"
    assert message in wrong.text
    assert message in unknown.text
    assert ("dana", "sign-in-failed") in _audit_actions(db)
    assert ("nobody", "sign-in-failed") in _audit_actions(db)


def test_after_the_password_only_the_mfa_step_is_reachable(
    client: TestClient, desk: Person
) -> None:
    assert _password_step(client, desk.username, desk.password).status_code == 303
    answer = client.get("/today", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in/mfa"


def test_a_wrong_totp_code_is_refused(client: TestClient, desk: Person, clock: FakeClock) -> None:
    _password_step(client, desk.username, desk.password)
    mfa = client.get("/sign-in/mfa")
    good = desk.code(clock)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    answer = client.post("/sign-in/mfa", data={"code": wrong, "csrf_token": csrf_of(mfa.text)})
    assert answer.status_code == 401
    assert "does not match" in answer.text
    assert client.get("/today", follow_redirects=False).status_code == 303


def test_a_totp_code_that_was_used_once_is_refused_the_second_time(
    client: TestClient,
    desk: Person,
    clock: FakeClock,
    db: Database,
    settings: Settings,
) -> None:
    sign_in(client, desk, clock)
    assert desk.totp is not None
    used = desk.totp.at(clock.now())  # the code that just signed in
    with TestClient(create_app(settings, db=db, clock=clock)) as other:
        _password_step(other, desk.username, desk.password)
        mfa = other.get("/sign-in/mfa")
        answer = other.post("/sign-in/mfa", data={"code": used, "csrf_token": csrf_of(mfa.text)})
        assert answer.status_code == 401
        assert "already used" in answer.text


def test_a_recovery_code_signs_in_once(
    client: TestClient, db: Database, settings: Settings, clock: FakeClock
) -> None:
    person = add_person(db, settings, clock, "rosa", Role.NURSE, enrolled=False)
    _password_step(client, person.username, person.password)
    enrol_page = client.get("/mfa/enrol")
    secret = enrol_page.text.split('id="totp-secret">')[1].split("<")[0]
    codes_page = client.post(
        "/mfa/enrol",
        data={"code": pyotp.TOTP(secret).at(clock.now()), "csrf_token": csrf_of(enrol_page.text)},
    )
    assert codes_page.status_code == 200
    codes = [c.split("</code>")[0] for c in codes_page.text.split("<li><code>")[1:]]
    assert len(codes) == 10
    client.post("/sign-out", data={"csrf_token": csrf_of(client.get("/today").text)})
    for attempt, expected in ((1, 303), (2, 401)):
        clock.advance(timedelta(minutes=1))
        _password_step(client, person.username, person.password)
        mfa = client.get("/sign-in/mfa")
        answer = client.post(
            "/sign-in/mfa",
            data={"code": codes[0], "csrf_token": csrf_of(mfa.text)},
            follow_redirects=False,
        )
        assert answer.status_code == expected, attempt
        if expected == 303:
            client.post("/sign-out", data={"csrf_token": csrf_of(client.get("/today").text)})


def test_first_sign_in_enrols_mfa_with_a_qr_code_and_the_secret(
    client: TestClient, db: Database, settings: Settings, clock: FakeClock
) -> None:
    person = add_person(db, settings, clock, "rosa", Role.NURSE, enrolled=False)
    answer = _password_step(client, person.username, person.password)
    assert answer.headers["location"].startswith("/mfa/enrol")
    page = client.get("/mfa/enrol")
    assert "<svg" in page.text
    assert "data:" not in page.text
    again = client.get("/mfa/enrol")
    assert again.text.split('id="totp-secret">')[1] == page.text.split('id="totp-secret">')[1]
    assert ("rosa", "mfa-enrol") not in _audit_actions(db)


def test_five_wrong_passwords_lock_the_account_for_a_while(
    client: TestClient, desk: Person, clock: FakeClock
) -> None:
    for _ in range(5):
        assert _password_step(client, desk.username, "wrong wrong wrong").status_code == 401
    locked = _password_step(client, desk.username, desk.password)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in locked.text
    clock.advance(timedelta(minutes=2))
    assert _password_step(client, desk.username, desk.password).status_code == 303


def test_a_session_idle_for_15_minutes_is_logged_off(
    client: TestClient, desk: Person, clock: FakeClock, db: Database
) -> None:
    sign_in(client, desk, clock)
    clock.advance(timedelta(minutes=14))
    assert client.get("/today", follow_redirects=False).status_code == 200
    clock.advance(timedelta(minutes=15, seconds=1))
    answer = client.get("/today", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in")
    with db.transaction() as session:
        reasons = list(session.scalars(sa.select(StaffSession.ended_reason)))
    assert "idle" in reasons


def test_a_session_ends_after_its_absolute_lifetime_even_when_active(
    client: TestClient, desk: Person, clock: FakeClock
) -> None:
    sign_in(client, desk, clock)
    for _ in range(12 * 6):  # every 10 minutes for 12 hours
        clock.advance(timedelta(minutes=10))
        answer = client.get("/today", follow_redirects=False)
        if answer.status_code != 200:
            break
    assert answer.status_code == 303


def test_a_form_post_without_the_csrf_token_is_refused(
    client: TestClient, desk: Person, clock: FakeClock
) -> None:
    sign_in(client, desk, clock)
    assert client.post("/sign-out", data={}).status_code == 403
    assert client.post("/sign-out", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/today", follow_redirects=False).status_code == 200  # still signed in


def test_the_sign_in_form_itself_needs_its_csrf_cookie(client: TestClient, desk: Person) -> None:
    answer = client.post(
        "/sign-in",
        data={"username": desk.username, "password": desk.password, "csrf_token": "made-up"},
    )
    assert answer.status_code == 403


def test_sign_out_ends_the_session_for_good(
    client: TestClient, desk: Person, clock: FakeClock
) -> None:
    sign_in(client, desk, clock)
    cookie = client.cookies.get("cf_session")
    client.post("/sign-out", data={"csrf_token": csrf_of(client.get("/today").text)})
    client.cookies.set("cf_session", cookie or "")
    assert client.get("/today", follow_redirects=False).status_code == 303


def test_next_never_redirects_off_the_site(
    client: TestClient, desk: Person, clock: FakeClock
) -> None:
    form = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={
            "username": desk.username,
            "password": desk.password,
            "csrf_token": csrf_of(form.text),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    mfa = client.get(answer.headers["location"])
    done = client.post(
        "/sign-in/mfa",
        data={"code": desk.code(clock), "next": "//evil.example/", "csrf_token": csrf_of(mfa.text)},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/today"


def test_behind_tls_the_cookie_is_secure_and_hsts_is_sent(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    settings = staff_settings(tmp_path, public_url="https://clinic.example.org")
    desk = add_person(db, settings, clock, "dana", Role.FRONT_DESK)
    with TestClient(
        create_app(settings, db=db, clock=clock), base_url="https://clinic.example.org"
    ) as client:
        answer = _password_step(client, desk.username, desk.password)
        assert "Secure" in answer.headers["set-cookie"]
        assert answer.headers["strict-transport-security"].startswith("max-age=")
    with TestClient(create_app(staff_settings(tmp_path / "plain"), db=db, clock=clock)) as plain:
        assert "strict-transport-security" not in plain.get("/sign-in").headers
