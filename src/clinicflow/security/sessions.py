"""Server-side staff sessions: open at sign-in, look up per request, end on idle or sign-out.

The browser holds a random 256-bit token; the database holds its SHA-256, so reading the database
gives no one a live session. Each session carries its own CSRF token (synchronizer token pattern)
and is replaced by a new one when MFA passes, so a token fixed before sign-in is worthless after.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clinicflow.security.accounts import StaffIdentity, identity_of
from clinicflow.store.staff import StaffSession, StaffUser

__all__ = [
    "ActiveSession",
    "SessionCheck",
    "SessionPolicy",
    "apply_session_check",
    "check_session",
    "end_session",
    "open_session",
    "token_digest",
]

# Refresh last_seen at most this often: a page that loads five files writes once, not five times.
TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives: idle logoff (15 minutes by default) and an absolute limit."""

    idle: timedelta
    lifetime: timedelta


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A session that is valid now, with its user."""

    token_digest: str
    user: StaffIdentity
    mfa_passed: bool
    csrf_token: str
    expires_at: datetime
    idle_until: datetime


def token_digest(token: str) -> str:
    """What the database keeps of a session or API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session,
    user: StaffIdentity,
    *,
    mfa_passed: bool,
    address: str,
    user_agent: str,
    policy: SessionPolicy,
    now: datetime,
) -> str:
    """A new session for `user`; returns the token for the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_digest=token_digest(token),
            user_id=user.id,
            mfa_passed=mfa_passed,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.lifetime,
            address=address[:64],
            user_agent=user_agent[:256],
        )
    )
    return token


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """What a read-only look at a session found, and the write it calls for, if any."""

    active: ActiveSession | None
    digest: str | None = None
    end_reason: str | None = None  # disabled user, expired, idle: end the row
    touch: bool = False  # refresh last_seen_at

    @property
    def needs_write(self) -> bool:
        return self.end_reason is not None or self.touch


def check_session(
    session: Session, token: str | None, *, policy: SessionPolicy, now: datetime
) -> SessionCheck:
    """Look at the session behind `token` without writing (a read transaction will do)."""
    if not token or len(token) > 128:
        return SessionCheck(None)
    digest = token_digest(token)
    row = session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(StaffSession.token_digest == digest, StaffSession.ended_at.is_(None))
    ).first()
    if row is None:
        return SessionCheck(None)
    stored, user = row
    if user.disabled_at is not None:
        return SessionCheck(None, digest, end_reason="user-disabled")
    if now >= stored.expires_at:
        return SessionCheck(None, digest, end_reason="expired")
    if now - stored.last_seen_at >= policy.idle:
        return SessionCheck(None, digest, end_reason="idle")
    touch = now - stored.last_seen_at >= TOUCH_EVERY
    seen = now if touch else stored.last_seen_at
    active = ActiveSession(
        token_digest=digest,
        user=identity_of(user),
        mfa_passed=stored.mfa_passed,
        csrf_token=stored.csrf_token,
        expires_at=stored.expires_at,
        idle_until=seen + policy.idle,
    )
    return SessionCheck(active, digest, touch=touch)


def apply_session_check(session: Session, check: SessionCheck, *, now: datetime) -> None:
    """Write what `check` called for: end the session, or refresh when it was last seen."""
    if check.digest is None:
        return
    if check.end_reason is not None:
        end_session(session, check.digest, reason=check.end_reason, now=now)
    elif check.touch:
        session.execute(
            update(StaffSession)
            .where(StaffSession.token_digest == check.digest, StaffSession.ended_at.is_(None))
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )


def end_session(session: Session, digest: str, *, reason: str, now: datetime) -> None:
    """End a session (sign-out, idle, expiry, MFA step done); ending twice changes nothing."""
    session.execute(
        update(StaffSession)
        .where(StaffSession.token_digest == digest, StaffSession.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
        .execution_options(synchronize_session=False)
    )
