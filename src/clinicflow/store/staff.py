"""Tables of the people who sign in: staff accounts, MFA, sessions, tokens, the on-call rota.

Staff accounts hold no patient data. What would let someone sign in as a user is never stored in
clear: passwords are argon2id hashes, session and API tokens are stored as SHA-256 digests of
random tokens (a stolen database yields no live session), recovery codes as salted digests, and the
TOTP secret (which must be read back to check a code) is encrypted with the practice's data key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.security.registry import register_encrypted_column
from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.engine import IdType


class StaffUser(Base):
    """A person who signs in to the web app, with one role."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # lower case
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(256))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Encrypted with the data key, AAD `staff_users/{id}/totp`; None until MFA is enrolled.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovery_salt: Mapped[bytes | None] = mapped_column(LargeBinary)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    # Where an urgent-message alert reaches this person when on call (E.164); staff's own
    # number, not a patient's, so not encrypted.
    notify_phone: Mapped[str | None] = mapped_column(String(32))


register_encrypted_column(
    StaffUser.__table__, "totp_secret_enc", lambda row: f"staff_users/{row.id}/totp".encode()
)


class RecoveryCode(Base):
    """One single-use MFA recovery code of a user, as a salted digest."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A signed-in browser: the cookie holds the token, this row its digest.

    `mfa_passed` stays false between the password step and the TOTP step; such a session can reach
    only the MFA pages. Idle logoff compares `last_seen_at` with the idle limit on every request.
    """

    __tablename__ = "staff_sessions"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    mfa_passed: Mapped[bool] = mapped_column(Boolean)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    address: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(256))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(32))


class SignInAttempt(Base):
    """One password or MFA attempt, kept for throttling (per account and per address)."""

    __tablename__ = "staff_sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_username_at", "username", "at"),
        Index("ix_sign_in_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    username: Mapped[str] = mapped_column(String(64))  # as typed, lower case; may not exist
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    step: Mapped[str] = mapped_column(String(16))  # password | totp | recovery


class AccessToken(Base):
    """A personal access token for the REST API, with scopes; the secret is shown once."""

    __tablename__ = "staff_access_tokens"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OnCallShift(Base):
    """Who answers urgent patient messages from `starts_at` until `ends_at` (the triage rota)."""

    __tablename__ = "on_call_shifts"
    __table_args__ = (Index("ix_on_call_shifts_pool_starts", "pool", "starts_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    pool: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
