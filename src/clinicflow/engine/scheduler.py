"""The tick: every few seconds each worker evaluates schedules, dispatches events, reconciles
the ledgers and calls the daily hooks, then enqueues what became due.

Every worker ticks; nothing is done twice because each run has a unique (automation, trigger key),
each event is marked dispatched with its runs, each daily hook is recorded once per day, and
every effect is claimed with a compare-and-set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from clinicflow.engine.automation import Automation, Schedule
from clinicflow.engine.cron import due_instants
from clinicflow.engine.events import dispatch_events, has_undispatched_events
from clinicflow.engine.keys import cron_trigger_key
from clinicflow.engine.reconcile import reconcile
from clinicflow.engine.runner import Enqueuer
from clinicflow.engine.runs import create_run
from clinicflow.engine.runtime import DailyHookContext, EngineRuntime
from clinicflow.engine.states import EffectId, RunId, TriggerKind
from clinicflow.engine.switches import switch_for
from clinicflow.engine.upsert import insert_if_absent
from clinicflow.store.engine import DailyHookRun, ScheduleCursor

logger = logging.getLogger(__name__)

FIRST_LOOK_BACK = timedelta(minutes=1)  # a schedule seen for the first time looks back this far


@dataclass
class TickReport:
    """What one tick created and enqueued."""

    runs: list[RunId] = field(default_factory=list)
    effects: list[EffectId] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)


def _schedule_one(
    rt: EngineRuntime, automation: Automation, spec: Schedule, now: datetime
) -> RunId | None:
    with rt.db.transaction() as session:
        cursor = session.get(ScheduleCursor, automation.name, populate_existing=True)
        after = cursor.evaluated_until if cursor is not None else now - FIRST_LOOK_BACK
        after = max(after, now - timedelta(seconds=rt.policy.max_catch_up_s))
        if after >= now:
            return None
        due = due_instants(spec.spec, rt.zone, after, now)
        run_id = None
        if due and switch_for(session, automation.name).enabled:
            if len(due) > 1:  # after downtime: one run for the latest instant, not a burst
                logger.warning(
                    "missed schedule instants coalesced",
                    extra={"automation": automation.name, "missed": len(due) - 1},
                )
            run_id = create_run(
                session,
                automation=automation.name,
                trigger_kind=TriggerKind.CRON,
                trigger_key=cron_trigger_key(due[-1]),
                scheduled_for=due[-1],
                requested_by="schedule",
                now=now,
            )
        # The cursor only moves forward, whichever of two racing ticks commits last.
        values = {"automation": automation.name, "evaluated_until": now}
        if not insert_if_absent(session, ScheduleCursor, values, ["automation"]):
            session.execute(
                update(ScheduleCursor)
                .where(
                    ScheduleCursor.automation == automation.name,
                    ScheduleCursor.evaluated_until < now,
                )
                .values(evaluated_until=now),
                execution_options={"synchronize_session": False},
            )
        return run_id


def schedule_cron_runs(rt: EngineRuntime, now: datetime) -> list[RunId]:
    """Create runs for the schedule instants that fell due since the last tick."""
    created: list[RunId] = []
    for automation in rt.registry.automations():
        if isinstance(automation.trigger, Schedule):
            run_id = _schedule_one(rt, automation, automation.trigger, now)
            if run_id is not None:
                created.append(run_id)
    return created


def run_daily_hooks(rt: EngineRuntime, now: datetime) -> list[str]:
    """Call each daily hook once per practice-local day; the names that ran now."""
    day_on = now.astimezone(rt.zone).date()
    ran: list[str] = []
    hooks = rt.hooks()
    # Read first, in a snapshot that takes no write lock: on all but one tick a day every hook
    # has run already, and then this writes nothing.
    with rt.db.read() as session:
        done = set(
            session.scalars(
                select(DailyHookRun.hook).where(
                    DailyHookRun.day_on == day_on, DailyHookRun.hook.in_(sorted(hooks))
                )
            )
        )
    for name, hook in sorted(hooks.items()):
        if name in done:
            continue
        try:
            with rt.db.transaction() as session:
                values = {"hook": name, "day_on": day_on, "ran_at": now}
                if not insert_if_absent(session, DailyHookRun, values, ["hook", "day_on"]):
                    continue
                hook(DailyHookContext(session, day_on, now, rt.settings, rt.cipher))
            ran.append(name)
        except Exception:
            logger.exception("daily hook failed", extra={"hook": name})
    return ran


def dispatch_due_events(rt: EngineRuntime, enqueuer: Enqueuer) -> int:
    """Start the runs for events not yet dispatched (the worker's fast loop); how many."""
    runs = _dispatch(rt, rt.clock.now())
    for run_id in runs:
        enqueuer.enqueue_run(run_id)
    return len(runs)


def _dispatch(rt: EngineRuntime, now: datetime) -> list[RunId]:
    # The events loop looks twice a second and nearly always finds nothing: it looks in a read
    # snapshot first, so an idle worker does not take SQLite's write lock twice a second.
    with rt.db.read() as session:
        if not has_undispatched_events(session):
            return []
    with rt.db.transaction() as session:
        return dispatch_events(session, registry=rt.registry, now=now, limit=rt.policy.batch_size)


def tick(rt: EngineRuntime, enqueuer: Enqueuer) -> TickReport:
    """One tick: schedules, events, reconciliation, daily hooks; then enqueue what is due."""
    now = rt.clock.now()
    report = TickReport()
    report.runs += schedule_cron_runs(rt, now)
    report.runs += _dispatch(rt, now)
    found = reconcile(rt, now=now)
    report.runs += found.runs
    report.effects += found.effects
    report.hooks = run_daily_hooks(rt, now)
    for run_id in report.runs:
        enqueuer.enqueue_run(run_id)
    for effect_id in report.effects:
        enqueuer.enqueue_effect(effect_id)
    return report
