"""The planner's incremental plan: which visits a run must plan (`reminder_marks`, I/O).

Each planned visit keeps a mark: the start it was planned for and when to look at it again (its
next touchpoint, `policy.next_look`). A run plans only
- visits whose mark has come due;
- when the replica changed since the last run (`replica_generations`): visits with no mark or
  whose start moved (new bookings, reschedules), found by one join over the planning window,
  and the visits listed together with a visit that went away (see `claims.release_gone`);
- visits with no mark in the slice of the window that time has added since the last run
  (between its horizon and this one's): a visit booked weeks ahead comes into the window with
  no change to the replica, and must still get its first touchpoint;
- once a day, visits whose message was voided at send time (`claims.sweep_voided`);
- everything again when the policy changed.
A run that finds nothing changed and nothing due costs a few indexed lookups, not a plan of
every visit of the next two weeks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, Table, and_, delete, or_, select, text, update
from sqlalchemy.orm import Session

from clinicflow.automations.reminders.visits import UPCOMING
from clinicflow.engine.upsert import NO_SYNC
from clinicflow.store.bulk import bulk_insert_ignoring
from clinicflow.store.messaging import ReminderMark, ReminderPlanState
from clinicflow.store.replica import Appointment

CHUNK = 500
_MARKS: Table = ReminderMark.__table__  # type: ignore[assignment]
_STATE: Table = ReminderPlanState.__table__  # type: ignore[assignment]
# What the planner reads its change counter from: visits and the patients they are for.
WATCHED_TYPES = ("Appointment", "Patient")
PLAN_LOCK_KEY = 0x726D6E64  # "rmnd": the PostgreSQL advisory lock for a run's plan writes


@dataclass(frozen=True, slots=True)
class PlanState:
    """What the planner saw last: the replica's generation, the policy, the last sweep's day."""

    generation: int | None = None
    policy: str | None = None
    swept_on: date | None = None
    horizon: datetime | None = None  # the far end of the window the last run planned


def lock_plan(session: Session) -> None:
    """Be the one run writing the plan until the transaction ends.

    Two runs racing on PostgreSQL would each lock some marks (dropping passed visits) and the
    plan state, in different orders as their plans differ, and deadlock. Taken first in a
    run's writes (SQLite's write lock does the same), this lock lets one write its plan, then
    the other, whose claims then lose to the first's where they overlap.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAN_LOCK_KEY})


def load_state(session: Session) -> PlanState:
    """The state the last run left (empty on the first run)."""
    values = dict(session.execute(select(ReminderPlanState.name, ReminderPlanState.value)).all())
    generation = values.get("generation")
    swept_on = values.get("swept_on")
    horizon = values.get("horizon")
    return PlanState(
        generation=int(generation) if generation is not None else None,
        policy=values.get("policy"),
        swept_on=date.fromisoformat(swept_on) if swept_on else None,
        horizon=datetime.fromisoformat(horizon) if horizon else None,
    )


def save_state(session: Session, state: PlanState) -> None:
    """Keep what this run saw, for the next."""
    values = {
        "generation": "" if state.generation is None else str(state.generation),
        "policy": state.policy or "",
        "swept_on": state.swept_on.isoformat() if state.swept_on else "",
        "horizon": state.horizon.isoformat() if state.horizon else "",
    }
    rows = [{"name": k, "value": v} for k, v in sorted(values.items())]
    bulk_insert_ignoring(session, _STATE, rows, conflict_on=["name"], update=["value"])


def _upcoming_in(start_after: datetime, start_before: datetime) -> Select[str]:
    """The ids of booked or pending visits starting in (start_after, start_before]."""
    return select(Appointment.fhir_id).where(
        Appointment.status.in_(UPCOMING),
        Appointment.start_at > start_after,
        Appointment.start_at <= start_before,
    )


def unplanned(session: Session, start_after: datetime, start_before: datetime) -> set[str]:
    """Upcoming visits in the window that have no mark, or a mark for another start."""
    query = (
        _upcoming_in(start_after, start_before)
        .outerjoin(ReminderMark, ReminderMark.appointment_id == Appointment.fhir_id)
        .where(
            (ReminderMark.appointment_id.is_(None))
            | (ReminderMark.start_at != Appointment.start_at)
        )
    )
    return set(session.scalars(query))


def in_window(session: Session, start_after: datetime, start_before: datetime) -> set[str]:
    """Every upcoming visit in the window, marked or not (what a new policy plans afresh)."""
    return set(session.scalars(_upcoming_in(start_after, start_before)))


def gone(session: Session) -> dict[str, datetime]:
    """Marked visits that are no longer upcoming at the start they were planned for (cancelled,
    moved, removed), with that start."""
    still = and_(
        Appointment.fhir_id == ReminderMark.appointment_id,
        Appointment.start_at == ReminderMark.start_at,
        Appointment.status.in_(UPCOMING),
    )
    query = (
        select(ReminderMark.appointment_id, ReminderMark.start_at)
        .outerjoin(Appointment, still)
        .where(Appointment.fhir_id.is_(None))
    )
    return {row.appointment_id: row.start_at for row in session.execute(query)}


def due(session: Session, now: datetime) -> set[str]:
    """Visits whose next touchpoint has come due."""
    return set(
        session.scalars(
            select(ReminderMark.appointment_id).where(ReminderMark.next_check_at <= now)
        )
    )


def save(session: Session, marks: Mapping[str, tuple[datetime, datetime | None]]) -> None:
    """Mark each visit: the start it was planned for and when to look again."""
    rows = [
        {"appointment_id": appointment_id, "start_at": start, "next_check_at": next_check}
        for appointment_id, (start, next_check) in sorted(marks.items())
    ]
    bulk_insert_ignoring(
        session,
        _MARKS,
        rows,
        conflict_on=["appointment_id"],
        update=["start_at", "next_check_at"],
    )


def look_again(session: Session, appointment_ids: Iterable[str], at: datetime) -> None:
    """Have the next run plan these visits again by `at` (their plan changed: a new score)."""
    wanted = sorted(set(appointment_ids))
    for first in range(0, len(wanted), CHUNK):
        session.execute(
            update(ReminderMark)
            .where(
                ReminderMark.appointment_id.in_(wanted[first : first + CHUNK]),
                or_(ReminderMark.next_check_at.is_(None), ReminderMark.next_check_at > at),
            )
            .values(next_check_at=at),
            execution_options=NO_SYNC,
        )


def drop(session: Session, appointment_ids: Iterable[str]) -> None:
    """Forget these visits' marks."""
    wanted = sorted(set(appointment_ids))
    for first in range(0, len(wanted), CHUNK):
        session.execute(
            delete(ReminderMark).where(
                ReminderMark.appointment_id.in_(wanted[first : first + CHUNK])
            ),
            execution_options=NO_SYNC,
        )


def drop_passed(session: Session, start_before: datetime) -> None:
    """Forget visits too near or past for any reminder."""
    session.execute(
        delete(ReminderMark).where(ReminderMark.start_at <= start_before),
        execution_options=NO_SYNC,
    )


def drop_all(session: Session) -> None:
    """Forget every mark: the next plan covers every upcoming visit."""
    session.execute(delete(ReminderMark), execution_options=NO_SYNC)
