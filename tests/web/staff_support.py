"""Staff accounts for web tests: users of each role, their authenticator, and a real sign-in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyotp
from fastapi.testclient import TestClient

from clinicflow.clock import FakeClock
from clinicflow.security.accounts import create_user, enrol_mfa, pending_totp_secret
from clinicflow.security.passwords import hashing_for
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database

PASSWORD = "correct horse battery staple 7"


def staff_settings(data_dir: Path, **extra: object) -> Settings:
    """An embedded install in `data_dir` with cheap password hashing, its PHI key made."""
    settings = Settings(
        data_dir=data_dir,
        redis_url=None,
        timezone="America/New_York",
        password_hashing="test",
        **extra,  # type: ignore[arg-type]
    )
    keyring_from_settings(settings, create=True)
    return settings


@dataclass
class Person:
    """A user the test made, with the authenticator app on their phone."""

    username: str
    role: Role
    password: str
    totp: pyotp.TOTP | None

    def code(self, clock: FakeClock) -> str:
        """What the app shows now (the clock is moved a step on, so no code is a replay)."""
        assert self.totp is not None
        clock.advance(timedelta(seconds=30))
        return self.totp.at(clock.now())


def add_person(
    db: Database,
    settings: Settings,
    clock: FakeClock,
    username: str,
    role: Role,
    *,
    enrolled: bool = True,
    password: str = PASSWORD,
) -> Person:
    """A user of `role`; with `enrolled`, MFA set up as a first sign-in would."""
    cipher = PhiCipher(keyring_from_settings(settings, create=False))
    with db.transaction() as session:
        user = create_user(
            session,
            hashing_for("test"),
            username=username,
            display_name=username.title(),
            role=role,
            password=password,
            now=clock.now(),
            created_by="test-admin",
        )
        if not enrolled:
            return Person(username, role, password, None)
        secret = pending_totp_secret(session, cipher, user_id=user.id)
        code = pyotp.TOTP(secret).at(clock.now())
        enrol_mfa(session, cipher, user_id=user.id, code=code, address="test", now=clock.now())
    return Person(username, role, password, pyotp.TOTP(secret))


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, person: Person, clock: FakeClock) -> None:
    """Sign in through the pages: password, then the TOTP code."""
    form = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={
            "username": person.username,
            "password": person.password,
            "csrf_token": csrf_of(form.text),
            "next": "/",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    mfa = client.get(answer.headers["location"])
    done = client.post(
        "/sign-in/mfa",
        data={"code": person.code(clock), "csrf_token": csrf_of(mfa.text), "next": "/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
