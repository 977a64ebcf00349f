"""The demo's staff: one user per role, MFA already set up, so a newcomer can sign in at once.

Only the demo makes these (`created_by` is "demo"); their TOTP secrets are printed for the demo's
sake, and `clinicflow users demo-code` shows a demo user's current code. A real practice adds its
users with `clinicflow users add`, and each sets up MFA at their first sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.security.accounts import (
    PasswordHashing,
    create_user,
    enrol_mfa,
    pending_totp_secret,
    totp_aad,
)
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher
from clinicflow.store.staff import StaffUser

DEMO_CREATOR = "demo"
DEMO_PASSWORD = "sunrise-demo-visit-2026"  # noqa: S105  (printed for the demo; never production)
# Fictional 555 numbers: urgent-message alerts for the demo's clinicians land in the outbox.
DEMO_ALERT_PHONES = {"nurse": "+15555550142", "physician": "+15555550143"}
DEMO_PEOPLE = (
    ("frontdesk", "Dana Front", Role.FRONT_DESK),
    ("scheduler", "Sam Slots", Role.SCHEDULER),
    ("nurse", "Nora Triage", Role.NURSE),
    ("physician", "Dr. Paz Reyes", Role.PHYSICIAN),
    ("billing", "Bea Claims", Role.BILLING),
    ("engineer", "Eli Automate", Role.AUTOMATION_ENGINEER),
    ("leadership", "Lee Director", Role.LEADERSHIP),
    ("compliance", "Cora Audit", Role.COMPLIANCE),
    ("admin", "Ada Admin", Role.ADMIN),
)


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo account as the demo prints it."""

    username: str
    role: Role
    password: str
    totp_secret: str


def ensure_demo_users(
    session: Session, cipher: PhiCipher, hashing: PasswordHashing, *, now: datetime
) -> list[DemoUser]:
    """Create the demo users that are missing (MFA enrolled); all of them, with their secrets."""
    users: list[DemoUser] = []
    for username, name, role in DEMO_PEOPLE:
        row = session.scalar(select(StaffUser).where(StaffUser.username == username))
        if row is None:
            identity = create_user(
                session,
                hashing,
                username=username,
                display_name=name,
                role=role,
                password=DEMO_PASSWORD,
                now=now,
                created_by=DEMO_CREATOR,
            )
            secret = pending_totp_secret(session, cipher, user_id=identity.id)
            enrol_mfa(
                session,
                cipher,
                user_id=identity.id,
                code=pyotp.TOTP(secret).at(now),
                address="demo",
                now=now,
            )
            # The enrolment code must not block the newcomer's first sign-in in the same step.
            row = session.get(StaffUser, identity.id)
            assert row is not None  # noqa: S101
            row.totp_last_step = None
            row.notify_phone = DEMO_ALERT_PHONES.get(username)
        if row.created_by != DEMO_CREATOR or row.totp_secret_enc is None:
            continue  # a real user with a demo name: never print their secret
        secret = cipher.decrypt(row.totp_secret_enc, totp_aad(row.id)).decode()
        users.append(DemoUser(username, role, DEMO_PASSWORD, secret))
    return users


def demo_code(session: Session, cipher: PhiCipher, username: str, *, now: datetime) -> str | None:
    """A demo user's current TOTP code (None for anyone the demo did not create)."""
    row = session.scalar(select(StaffUser).where(StaffUser.username == username.lower()))
    if row is None or row.created_by != DEMO_CREATOR or row.totp_secret_enc is None:
        return None
    secret = cipher.decrypt(row.totp_secret_enc, totp_aad(row.id)).decode()
    return pyotp.TOTP(secret).at(now)
