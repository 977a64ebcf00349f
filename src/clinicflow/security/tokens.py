"""Personal access tokens for the REST API: scoped, expiring, shown once, stored as a digest.

A token never grants more than its owner's role: its scopes are checked against the role when it
is made and again on every use, so a user moved to another role loses what the role no longer has.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clinicflow.errors import InputError
from clinicflow.security.accounts import StaffIdentity, identity_of
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.permissions import ROLE_PERMISSIONS, Permission
from clinicflow.security.sessions import token_digest
from clinicflow.store.staff import AccessToken, StaffUser

__all__ = [
    "TOKEN_PREFIX",
    "TokenGrant",
    "TokenInfo",
    "create_token",
    "list_tokens",
    "revoke_token",
    "token_grant",
    "touch_token",
]

TOKEN_PREFIX = "cfpat_"  # noqa: S105  (a prefix to spot a leaked token, not a secret)
MAX_DAYS = 366
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a presented token may do now."""

    user: StaffIdentity
    scopes: frozenset[Permission]
    token_id: int
    touch: bool = False  # last_used_at is due for a refresh (see touch_token)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as its owner sees it later (never the secret)."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked: bool


def create_token(
    session: Session,
    user: StaffIdentity,
    *,
    name: str,
    scopes: Sequence[str],
    days: int,
    now: datetime,
) -> str:
    """A new token for `user`; returns the secret, which is shown once and kept nowhere."""
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"A token lasts 1 to {MAX_DAYS} days.", where="days", code="token.days")
    label = name.strip()
    if not 1 <= len(label) <= 100:
        raise InputError(
            "Give the token a name of 1 to 100 characters (what uses it).",
            where="name",
            code="token.name",
        )
    allowed = ROLE_PERMISSIONS[user.role]
    wanted: set[Permission] = set()
    for scope in scopes:
        try:
            permission = Permission(scope)
        except ValueError:
            raise InputError(
                f"There is no scope {scope!r}.", where="scopes", code="token.scope"
            ) from None
        if permission not in allowed:
            raise InputError(
                f"Your role ({user.role}) does not have {scope!r}.",
                where="scopes",
                code="token.scope",
            )
        wanted.add(permission)
    if not wanted:
        raise InputError("Choose at least one scope.", where="scopes", code="token.scope")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        AccessToken(
            user_id=user.id,
            name=label,
            token_digest=token_digest(secret),
            scopes=sorted(wanted),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    record_access(
        session,
        Actor.user(user.username),
        "token-add",
        [],
        at=now,
        detail={"name": label, "scopes": sorted(wanted), "days": days},
    )
    return secret


def token_grant(session: Session, secret: str, *, now: datetime) -> TokenGrant | None:
    """What the presented secret grants now; None for an unknown, revoked or expired token.

    Only reads: a read transaction will do; `touch_token` records the use when `touch` says so."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        return None
    row = session.execute(
        select(AccessToken, StaffUser)
        .join(StaffUser, StaffUser.id == AccessToken.user_id)
        .where(AccessToken.token_digest == token_digest(secret), AccessToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    token, user = row
    if now >= token.expires_at or user.disabled_at is not None:
        return None
    identity = identity_of(user)
    touch = token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY
    scopes = frozenset(Permission(s) for s in token.scopes) & ROLE_PERMISSIONS[identity.role]
    return TokenGrant(user=identity, scopes=scopes, token_id=token.id, touch=touch)


def touch_token(session: Session, token_id: int, *, now: datetime) -> None:
    """Record that a token was used (at most once a minute: reads need no write lock)."""
    session.execute(
        update(AccessToken)
        .where(AccessToken.id == token_id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def list_tokens(session: Session, user: StaffIdentity) -> list[TokenInfo]:
    """The user's tokens, newest first."""
    rows = session.scalars(
        select(AccessToken).where(AccessToken.user_id == user.id).order_by(AccessToken.id.desc())
    )
    return [
        TokenInfo(
            t.id,
            t.name,
            tuple(t.scopes),
            t.created_at,
            t.expires_at,
            t.last_used_at,
            t.revoked_at is not None,
        )
        for t in rows
    ]


def revoke_token(session: Session, user: StaffIdentity, token_id: int, *, now: datetime) -> None:
    """Revoke one of the user's own tokens."""
    session.execute(
        update(AccessToken)
        .where(
            AccessToken.id == token_id,
            AccessToken.user_id == user.id,
            AccessToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    record_access(
        session, Actor.user(user.username), "token-revoke", [], at=now, detail={"token": token_id}
    )
