"""Shifts of the on-call rota: add, remove, list, and who is on call at an instant.

A shift covers [starts_at, ends_at). Shifts may overlap (a hand-over half hour, a second person
on a busy night): everyone on call at an instant is told. A gap is allowed but visible: the rota
page shows it, and triage then alerts every nurse (`automations/triage/escalation.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.staff import OnCallShift, StaffUser

ON_CALL_POOL = "urgent-messages"
LONGEST_SHIFT = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift as the rota shows it."""

    id: int
    pool: str
    username: str
    display_name: str
    starts_at: datetime
    ends_at: datetime
    note: str


def check_shift(starts_at: datetime, ends_at: datetime, *, now: datetime) -> None:
    """A shift must end after it starts, last at most a week, and not be wholly in the past."""
    if ends_at <= starts_at:
        raise InputError("A shift must end after it starts.", where="ends", code="oncall.order")
    if ends_at - starts_at > LONGEST_SHIFT:
        raise InputError(
            "A shift lasts at most 7 days; add the next week as its own shift.",
            where="ends",
            code="oncall.too_long",
        )
    if ends_at <= now:
        raise InputError(
            "That shift is already over; the rota is for now and later.",
            where="ends",
            code="oncall.past",
        )


def add_shift(
    session: Session,
    *,
    username: str,
    starts_at: datetime,
    ends_at: datetime,
    note: str,
    by: str,
    now: datetime,
    pool: str = ON_CALL_POOL,
) -> int:
    """Put a clinician on call; returns the shift's id."""
    check_shift(starts_at, ends_at, now=now)
    user = session.scalar(
        select(StaffUser).where(
            StaffUser.username == username.lower(), StaffUser.disabled_at.is_(None)
        )
    )
    if user is None:
        raise InputError(
            f"There is no active user {username!r}.", where="person", code="oncall.user"
        )
    shift = OnCallShift(
        pool=pool,
        username=user.username,
        starts_at=starts_at,
        ends_at=ends_at,
        note=note.strip()[:200],
        created_by=by,
        created_at=now,
    )
    session.add(shift)
    session.flush()
    record_access(
        session,
        Actor.user(by),
        "oncall-add",
        [],
        at=now,
        detail={"shift": shift.id, "user": user.username},
    )
    return shift.id


def remove_shift(session: Session, shift_id: int, *, by: str, now: datetime) -> None:
    """Take a shift off the rota."""
    session.execute(delete(OnCallShift).where(OnCallShift.id == shift_id))
    record_access(session, Actor.user(by), "oncall-remove", [], at=now, detail={"shift": shift_id})


def shifts_between(
    session: Session, start: datetime, end: datetime, *, pool: str = ON_CALL_POOL
) -> list[Shift]:
    """Shifts overlapping [start, end), in order."""
    rows = session.execute(
        select(OnCallShift, StaffUser.display_name)
        .join(StaffUser, StaffUser.username == OnCallShift.username)
        .where(OnCallShift.pool == pool, OnCallShift.ends_at > start, OnCallShift.starts_at < end)
        .order_by(OnCallShift.starts_at, OnCallShift.id)
    ).all()
    return [
        Shift(s.id, s.pool, s.username, name, s.starts_at, s.ends_at, s.note) for s, name in rows
    ]


def on_call_at(session: Session, at: datetime, *, pool: str = ON_CALL_POOL) -> list[Shift]:
    """Everyone on call at `at` (empty: a gap in the rota)."""
    return shifts_between(session, at, at + timedelta(microseconds=1), pool=pool)
