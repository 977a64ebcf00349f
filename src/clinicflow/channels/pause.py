"""The practice-wide "pause all patient messages" switch.

A practice pauses messages when something is wrong (a wrong clinic address in a template, a
snowstorm closing the office). Paused messages are not lost: each is held and looked at again
every few minutes, and goes out once messages resume, unless it has stopped being useful by then
(its visit passed or moved). Checked by the channel at send time, so it also stops what was
already queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from clinicflow.security.audit import Actor, record_access
from clinicflow.store.messaging import PracticeFlag

MESSAGES_PAUSED = "messages_paused"
# How long a held message waits before it checks the switch again.
PAUSE_RECHECK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Pause:
    """Who paused messages, when and why."""

    by: str
    since: datetime
    reason: str | None


def messages_pause(session: Session) -> Pause | None:
    """The pause in force, or None when messages flow."""
    row = session.get(PracticeFlag, MESSAGES_PAUSED)
    if row is None or not row.enabled:
        return None
    return Pause(row.updated_by, row.updated_at, row.reason)


def set_messages_paused(
    session: Session, *, paused: bool, actor: Actor, now: datetime, reason: str | None = None
) -> None:
    """Pause or resume every patient message; the change is audited with its reason."""
    row = session.get(PracticeFlag, MESSAGES_PAUSED, with_for_update=True)
    if row is None:
        row = PracticeFlag(name=MESSAGES_PAUSED, enabled=paused, updated_by=actor.name)
        session.add(row)
    row.enabled = paused
    row.reason = reason if paused else None
    row.updated_by = actor.name
    row.updated_at = now
    record_access(
        session,
        actor,
        "pause-messages" if paused else "resume-messages",
        [],
        at=now,
        detail={"reason": reason} if reason else None,
    )
    session.flush()
