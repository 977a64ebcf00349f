"""What staff do with triaged messages: move them to another pool, acknowledge urgent ones.

A move is kept as a correction beside the decision (who, when, from, to, the model that
decided), so `clinicflow triage evaluate --corrections` can say, week by week, how often staff
agreed with triage. A message nobody moved counts as agreed: the person who answered it saw
it in that pool and left it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.automations.triage.escalation import stop_ladder
from clinicflow.automations.triage.pools import POOLS, URGENT
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.triage import TriageCorrection, TriageMessage


def message_of_work_item(session: Session, work_item_key: str) -> TriageMessage | None:
    """The triaged message a work item is about, if it is one."""
    return session.scalar(select(TriageMessage).where(TriageMessage.work_item_key == work_item_key))


def record_move(
    session: Session, message: TriageMessage, *, to_pool: str, by: str, now: datetime
) -> bool:
    """Keep a person's move of `message` to `to_pool`; False when it was already there."""
    if to_pool not in POOLS:
        raise InputError(f"{to_pool!r} is not a message pool", where="pool", code="triage.pool")
    current = message.corrected_pool or message.pool
    if current is None or current == to_pool:
        return False
    session.add(
        TriageCorrection(
            message_id=message.id,
            from_pool=current,
            to_pool=to_pool,
            decided_pool=message.pool or current,
            model=str((message.decision or {}).get("model", "")),
            corrected_by=by,
            corrected_at=now,
        )
    )
    message.corrected_pool = to_pool
    if to_pool != URGENT and message.urgent and message.acknowledged_at is None:
        stop_ladder(message, by=by, at=now)  # moved out of urgent: that person has seen it
    record_access(
        session,
        Actor.user(by),
        "triage-move",
        [f"TriageMessage/{message.id}"],
        at=now,
        detail={"from": current, "to": to_pool},
    )
    return True


def acknowledge(session: Session, message_id: int, *, by: str, now: datetime) -> bool:
    """A person has seen the urgent message: the ladder stops. False if already acknowledged."""
    message = session.get(TriageMessage, message_id)
    if message is None or not message.urgent:
        raise InputError("There is no such urgent message.", code="triage.not_urgent")
    if message.acknowledged_at is not None:
        return False
    stop_ladder(message, by=by, at=now)
    record_access(
        session, Actor.user(by), "triage-acknowledge", [f"TriageMessage/{message.id}"], at=now
    )
    return True


@dataclass(frozen=True, slots=True)
class WeekAgreement:
    """One week of triaged messages and how many staff moved."""

    week_of: date
    messages: int
    corrected: int

    @property
    def agreement(self) -> float | None:
        """The share of the week's messages left where triage put them."""
        return (self.messages - self.corrected) / self.messages if self.messages else None

    def to_json(self) -> dict[str, object]:
        """As `triage evaluate --corrections --json` prints it."""
        return {
            "week_of": self.week_of.isoformat(),
            "messages": self.messages,
            "corrected": self.corrected,
            "agreement": round(self.agreement, 4) if self.agreement is not None else None,
        }


def weekly_agreement(session: Session, *, now: datetime, since: datetime) -> list[WeekAgreement]:
    """Per week (Monday, UTC) since `since`: messages triaged and how many a person moved."""
    rows = session.execute(
        select(TriageMessage.triaged_at, TriageMessage.corrected_pool, TriageMessage.pool).where(
            TriageMessage.triaged_at >= since, TriageMessage.triaged_at <= now
        )
    ).all()
    weeks: dict[date, list[int]] = {}
    for triaged_at, corrected, pool in rows:
        if triaged_at is None:
            continue
        day = triaged_at.date()
        monday = day - timedelta(days=day.weekday())
        counts = weeks.setdefault(monday, [0, 0])
        counts[0] += 1
        counts[1] += int(corrected is not None and corrected != pool)
    return [WeekAgreement(w, n, c) for w, (n, c) in sorted(weeks.items())]
