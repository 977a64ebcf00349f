"""Who hears about an urgent message, in what order, until someone acknowledges it.

The ladder (pure, `ladder`): first everyone on call now (the on-call page's rota); then, one
step every `triage_escalate_minutes`, each next person on the rota in the order their shifts
start; then every nurse and physician not yet told. With no rota at all, the first step is
every nurse. Past the last step, each further step tells everyone on the ladder again: an
urgent message is never left to go quiet. Alerts say only that an urgent message is waiting
(no PHI in a text to a personal phone); the on-screen alarm shows it to signed-in nurses.

Acknowledged means a person took the work item (claimed, started, resolved or handed it on),
or pressed Acknowledge on the alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.automations.triage.pools import URGENT
from clinicflow.engine import (
    MessageChannel,
    OutgoingMessage,
    Purpose,
    RunContext,
    WorkItemStatus,
    message_key,
)
from clinicflow.oncall.rota import LONGEST_SHIFT, on_call_at, shifts_between
from clinicflow.security.permissions import CLINICAL_ROLES, Role
from clinicflow.store.engine import WorkItem
from clinicflow.store.staff import StaffUser
from clinicflow.store.triage import TriageMessage

ALERT_TEXT = "{practice}: an urgent patient message is waiting. Sign in to clinicflow to see it."


def ladder(
    on_call_now: Sequence[str], later_on_rota: Sequence[str], clinicians: Sequence[str]
) -> list[list[str]]:
    """The steps of the ladder, each a list of usernames (pure)."""
    steps: list[list[str]] = []
    told: set[str] = set()

    def step(names: Sequence[str]) -> None:
        fresh = [n for n in dict.fromkeys(names) if n not in told]
        if fresh:
            steps.append(fresh)
            told.update(fresh)

    step(on_call_now)
    for name in later_on_rota:
        step([name])
    step(clinicians)
    return steps


def step_at(steps: Sequence[Sequence[str]], level: int) -> list[str]:
    """Who is told at `level` (0 first): past the end, everyone on the ladder again."""
    if not steps:
        return []
    if level < len(steps):
        return list(steps[level])
    return [name for s in steps for name in s]


def practice_ladder(session: Session, now: datetime) -> list[list[str]]:
    """The ladder for an urgent message arriving at `now`."""
    on_call = [s.username for s in on_call_at(session, now)]
    later = [s.username for s in shifts_between(session, now, now + LONGEST_SHIFT)]
    active = session.execute(
        select(StaffUser.username, StaffUser.role)
        .where(StaffUser.role.in_(CLINICAL_ROLES), StaffUser.disabled_at.is_(None))
        .order_by(StaffUser.username)
    ).all()
    clinicians = [row.username for row in active]
    nurses = [row.username for row in active if row.role == Role.NURSE]
    if not on_call and not later:
        return ladder(nurses, [], clinicians)
    return ladder(on_call, later, clinicians)


def alert(
    ctx: RunContext, message: TriageMessage, level: int, steps: Sequence[Sequence[str]]
) -> list[str]:
    """Text step `level` of the ladder `steps` (`practice_ladder`, read once per run); returns
    who was told (with and without a phone)."""
    names = step_at(steps, level)
    rows = ctx.session.execute(
        select(StaffUser.username, StaffUser.notify_phone).where(StaffUser.username.in_(names))
    )
    phones = {row.username: row.notify_phone for row in rows}
    body = ALERT_TEXT.format(practice=ctx.settings.practice_name)
    for name in names:
        phone = phones.get(name)
        if not phone:
            ctx.logger.info("%s has no alert phone: the on-screen alarm only", name)
            continue
        ctx.effects.send(
            message_key("message-triage", f"TriageMessage/{message.id}", f"alert-{level}-{name}"),
            OutgoingMessage(
                channel=MessageChannel.SMS,
                to=phone,
                body=body,
                subject=None,
                purpose=Purpose.STAFF_ALERT,
            ),
        )
        ctx.count("urgent_alert")
    if not names:
        # Nobody to tell yet (no clinician has an account): the same step again in a minute,
        # so the first people who can be told are, and the ladder does not skip past them.
        message.next_escalation_at = ctx.now + timedelta(minutes=1)
        return names
    message.escalation_level = level + 1
    message.next_escalation_at = ctx.now + timedelta(minutes=ctx.settings.triage_escalate_minutes)
    return names


def stop_ladder(message: TriageMessage, *, by: str, at: datetime) -> None:
    """Someone has seen the urgent message: nobody else is texted about it."""
    message.acknowledged_at, message.acknowledged_by = at, by
    message.next_escalation_at = None


ACKNOWLEDGING = frozenset(
    {
        WorkItemStatus.ACCEPTED.value,
        WorkItemStatus.IN_PROGRESS.value,
        WorkItemStatus.COMPLETED.value,
        WorkItemStatus.CANCELLED.value,
    }
)


def taken(session: Session, message: TriageMessage) -> tuple[str, datetime] | None:
    """Who took the message's work item and when, if someone has (or it left the urgent pool)."""
    if message.work_item_key is None:
        return None
    item = session.scalar(select(WorkItem).where(WorkItem.key == message.work_item_key))
    if item is None:
        return None
    if item.status in ACKNOWLEDGING or item.pool != URGENT:
        return item.updated_by, item.updated_at
    return None
