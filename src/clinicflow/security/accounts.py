"""Staff accounts: create them, check a password (throttled), enrol and check MFA, reset it.

Services take a Session and never commit. Every sign-in, failed sign-in and MFA change is written
to the audit chain, with the address it came from; none of them names a patient.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from clinicflow.errors import InputError, SecurityError
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.passwords import check_new_password
from clinicflow.security.permissions import Role
from clinicflow.security.phi import PhiCipher
from clinicflow.security.throttle import Throttle, throttle_decision
from clinicflow.security.totp import (
    hash_recovery_code,
    match_recovery_code,
    new_recovery_codes,
    new_salt,
    new_totp_secret,
    verify_totp,
)
from clinicflow.store.staff import RecoveryCode, SignInAttempt, StaffUser

__all__ = [
    "PasswordHashing",
    "SignInRefused",
    "StaffIdentity",
    "check_password",
    "check_second_factor",
    "create_user",
    "disable_user",
    "enrol_mfa",
    "find_user",
    "identity_of",
    "pending_totp_secret",
    "reset_mfa",
    "totp_aad",
]

USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")
# Throttling looks back this far; older attempts cannot matter to any decision.
THROTTLE_LOOKBACK = timedelta(hours=1)


class PasswordHashing(Protocol):
    """What accounts need of the password hasher (security.passwords builds it per profile)."""

    def hash(self, password: str) -> str: ...

    def verify(self, stored_hash: str | None, password: str) -> bool: ...

    def needs_rehash(self, stored_hash: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class StaffIdentity:
    """Who a signed-in person is: never a secret of theirs."""

    id: int
    username: str
    display_name: str
    role: Role
    mfa_enrolled: bool


class SignInRefused(SecurityError):  # noqa: N818  (reads as what happened: "sign-in refused")
    """A sign-in step failed; the message never says whether the username exists."""

    code = "auth.refused"

    def __init__(self, message: str, *, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def totp_aad(user_id: int) -> bytes:
    """The AAD that binds a TOTP secret's ciphertext to its user row."""
    return f"staff_users/{user_id}/totp".encode()


def identity_of(user: StaffUser) -> StaffIdentity:
    """The identity of a loaded user row."""
    return StaffIdentity(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        mfa_enrolled=user.mfa_enrolled_at is not None,
    )


def find_user(session: Session, username: str) -> StaffUser | None:
    """The active user with this username (any case), or None."""
    return session.scalar(
        select(StaffUser).where(
            StaffUser.username == username.strip().lower(), StaffUser.disabled_at.is_(None)
        )
    )


def create_user(
    session: Session,
    hashing: PasswordHashing,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
    now: datetime,
    created_by: str,
    context: Sequence[str] = (),
) -> StaffIdentity:
    """Add a user (MFA is enrolled at their first sign-in); the password must pass the rules."""
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InputError(
            "A username is 2 to 64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter.",
            where="username",
            code="user.username",
        )
    if session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        raise InputError(f"There is already a user {name!r}.", where="username", code="user.exists")
    check_new_password(password, username=name, context=context)
    user = StaffUser(
        username=name,
        display_name=display_name.strip() or name,
        role=role.value,
        password_hash=hashing.hash(password),
        password_changed_at=now,
        created_at=now,
        created_by=created_by,
    )
    session.add(user)
    session.flush()
    record_access(
        session,
        Actor.user(created_by),
        "user-add",
        [],
        at=now,
        detail={"user": name, "role": role.value},
    )
    return identity_of(user)


def _account_failures(session: Session, username: str, now: datetime) -> list[datetime]:
    """An account's failed attempts since its last success (within the lookback)."""
    rows = session.execute(
        select(SignInAttempt.at, SignInAttempt.succeeded)
        .where(SignInAttempt.username == username, SignInAttempt.at >= now - THROTTLE_LOOKBACK)
        .order_by(SignInAttempt.at)
    ).all()
    failures: list[datetime] = []
    for at, succeeded in rows:
        failures = [] if succeeded else [*failures, at]
    return failures


def _address_failures(session: Session, address: str, now: datetime) -> list[datetime]:
    """Every failure from an address in the lookback, successes or not: signing in now and then
    with one account of one's own must not reset the count while guessing at others."""
    return list(
        session.scalars(
            select(SignInAttempt.at).where(
                SignInAttempt.address == address,
                SignInAttempt.succeeded.is_(False),
                SignInAttempt.at >= now - THROTTLE_LOOKBACK,
            )
        )
    )


def throttle_for(session: Session, *, username: str, address: str, now: datetime) -> Throttle:
    """Whether another attempt for this account from this address may be checked now."""
    return throttle_decision(
        _account_failures(session, username, now),
        _address_failures(session, address, now),
        now=now,
    )


def _attempt(
    session: Session, *, username: str, address: str, succeeded: bool, step: str, now: datetime
) -> None:
    session.add(
        SignInAttempt(at=now, username=username, address=address, succeeded=succeeded, step=step)
    )
    action = "sign-in" if succeeded else "sign-in-failed"
    if step != "password" or not succeeded:
        record_access(
            session,
            Actor.user(username or "(none)"),
            action,
            [],
            at=now,
            detail={"step": step, "address": address},
        )


def _refuse_if_throttled(throttle: Throttle) -> None:
    if not throttle.allowed:
        minutes = max(1, -(-throttle.retry_after_s // 60))
        raise SignInRefused(
            f"Too many failed sign-ins. Wait {minutes} minute{'s' if minutes > 1 else ''} and "
            "try again, or ask an administrator.",
            retry_after_s=throttle.retry_after_s,
        )


def check_password(
    session: Session,
    hashing: PasswordHashing,
    *,
    username: str,
    password: str,
    address: str,
    now: datetime,
) -> StaffIdentity:
    """The user whose password this is, or SignInRefused (throttled, unknown or wrong alike)."""
    name = username.strip().lower()[:64]
    _refuse_if_throttled(throttle_for(session, username=name, address=address, now=now))
    user = find_user(session, name) if name else None
    if not hashing.verify(user.password_hash if user else None, password) or user is None:
        _attempt(session, username=name, address=address, succeeded=False, step="password", now=now)
        raise SignInRefused("That username and password do not match. Check both and try again.")
    if hashing.needs_rehash(user.password_hash):
        user.password_hash = hashing.hash(password)
    _attempt(session, username=name, address=address, succeeded=True, step="password", now=now)
    return identity_of(user)


def pending_totp_secret(session: Session, cipher: PhiCipher, *, user_id: int) -> str:
    """The TOTP secret a user is enrolling (made on first ask, the same on a reload).

    It is kept encrypted in the user's row until a code confirms it, so it never travels in a
    form field; a user who has finished enrolment gets no secret here (reset first).
    """
    user = session.get(StaffUser, user_id)
    if user is None or user.mfa_enrolled_at is not None:
        raise SignInRefused(
            "MFA is already set up for this account. An administrator can reset it."
        )
    if user.totp_secret_enc is not None:
        return cipher.decrypt(user.totp_secret_enc, totp_aad(user.id)).decode()
    secret = new_totp_secret()
    user.totp_secret_enc = cipher.encrypt(secret.encode(), totp_aad(user.id))
    user.totp_last_step = None
    return secret


def enrol_mfa(
    session: Session,
    cipher: PhiCipher,
    *,
    user_id: int,
    code: str,
    address: str,
    now: datetime,
) -> list[str]:
    """Confirm the pending TOTP secret with a code from the app; returns recovery codes, once."""
    user = session.get(StaffUser, user_id)
    if user is None or user.totp_secret_enc is None or user.mfa_enrolled_at is not None:
        raise SignInRefused("Start MFA set-up again from the sign-in page.")
    secret = cipher.decrypt(user.totp_secret_enc, totp_aad(user.id)).decode()
    step = verify_totp(secret, code, now=now, last_step=None)
    if step is None:
        _attempt(
            session, username=user.username, address=address, succeeded=False, step="enrol", now=now
        )
        raise SignInRefused(
            "That code does not match. Check the time on your phone, and type the code your "
            "authenticator app shows now."
        )
    salt = new_salt()
    codes = new_recovery_codes()
    user.totp_last_step = step
    user.mfa_enrolled_at = now
    user.recovery_salt = salt
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hash_recovery_code(c, salt=salt)) for c in codes
    )
    session.add(
        SignInAttempt(at=now, username=user.username, address=address, succeeded=True, step="enrol")
    )
    record_access(
        session, Actor.user(user.username), "mfa-enrol", [], at=now, detail={"address": address}
    )
    return codes


def check_second_factor(
    session: Session,
    cipher: PhiCipher,
    *,
    user_id: int,
    code: str,
    address: str,
    now: datetime,
) -> str:
    """Accept a TOTP code (each step once) or an unused recovery code; returns which it was."""
    user = session.get(StaffUser, user_id)
    if user is None or user.totp_secret_enc is None or user.mfa_enrolled_at is None:
        raise SignInRefused("Your session has ended. Sign in again.")
    _refuse_if_throttled(throttle_for(session, username=user.username, address=address, now=now))
    secret = cipher.decrypt(user.totp_secret_enc, totp_aad(user.id)).decode()
    step = verify_totp(secret, code, now=now, last_step=user.totp_last_step)
    if step is not None:
        # Conditional update: two requests racing with one code cannot both pass.
        moved = session.execute(
            update(StaffUser)
            .where(
                StaffUser.id == user.id,
                (StaffUser.totp_last_step.is_(None)) | (StaffUser.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:  # type: ignore[attr-defined]
            _attempt(
                session,
                username=user.username,
                address=address,
                succeeded=True,
                step="totp",
                now=now,
            )
            return "totp"
    if _use_recovery_code(session, user, code, now):
        _attempt(
            session,
            username=user.username,
            address=address,
            succeeded=True,
            step="recovery",
            now=now,
        )
        return "recovery"
    _attempt(
        session, username=user.username, address=address, succeeded=False, step="totp", now=now
    )
    raise SignInRefused(
        "That code does not match, or it was already used. Type the code your authenticator app "
        "shows now (each code works once), or one of your recovery codes."
    )


def _use_recovery_code(session: Session, user: StaffUser, code: str, now: datetime) -> bool:
    if user.recovery_salt is None or len(code.replace("-", "").replace(" ", "")) < 12:
        return False
    unused = session.execute(
        select(RecoveryCode.id, RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    matched = match_recovery_code(
        code, salt=user.recovery_salt, unused_hashes=[row.code_hash for row in unused]
    )
    if matched is None:
        return False
    code_id = next(row.id for row in unused if row.code_hash == matched)
    used = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(used.rowcount == 1)  # type: ignore[attr-defined]


def disable_user(session: Session, *, username: str, by: str, now: datetime) -> StaffIdentity:
    """Disable an account: its sessions and tokens stop working at the next request."""
    user = find_user(session, username)
    if user is None:
        raise InputError(
            f"There is no active user {username!r}.", where="username", code="user.not_found"
        )
    user.disabled_at = now
    record_access(
        session, Actor.user(by), "user-disable", [], at=now, detail={"user": user.username}
    )
    return identity_of(user)


def reset_mfa(session: Session, *, username: str, by: str, now: datetime) -> StaffIdentity:
    """Forget a user's MFA (lost phone): they enrol again at their next sign-in."""
    user = find_user(session, username)
    if user is None:
        raise InputError(
            f"There is no active user {username!r}.", where="username", code="user.not_found"
        )
    user.totp_secret_enc = None
    user.totp_last_step = None
    user.mfa_enrolled_at = None
    user.recovery_salt = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    record_access(session, Actor.user(by), "mfa-reset", [], at=now, detail={"user": user.username})
    return identity_of(user)


_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def set_alert_phone(
    session: Session, *, username: str, phone: str | None, by: str, now: datetime
) -> StaffIdentity:
    """Where urgent-message alerts reach this person when on call (E.164), or none."""
    user = find_user(session, username)
    if user is None:
        raise InputError(f"There is no user {username!r}.", where="username", code="user.unknown")
    cleaned = re.sub(r"[\s().-]", "", phone) if phone else None
    if cleaned is not None and not _E164.match(cleaned):
        raise InputError(
            f"{phone!r} is not a phone number in international form, e.g. +15555550123.",
            where="phone",
            code="user.phone",
        )
    user.notify_phone = cleaned
    record_access(
        session,
        Actor.user(by),
        "user-alert-phone",
        [],
        at=now,
        detail={"user": user.username, "set": cleaned is not None},
    )
    return identity_of(user)
