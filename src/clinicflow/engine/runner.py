"""Carrying out runs: claim, call the automation in one transaction, report the outcome.

A run's transaction holds everything the automation wrote and the effects it recorded, and the
run's `succeeded`; effects are executed only after it commits. `run_now` does it all in-process.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from clinicflow.clock import FakeClock
from clinicflow.engine.automation import Automation
from clinicflow.engine.context import EffectRecorder, RunContext, RunLogger, TriggerInfo
from clinicflow.engine.effects import effect_counts, pending_ids_of_run
from clinicflow.engine.events import load_event, load_events
from clinicflow.engine.execution import Execution, execute_effect
from clinicflow.engine.keys import manual_trigger_key
from clinicflow.engine.review import effective_owner
from clinicflow.engine.runs import RunRecord, claim_run, create_run, finish_run, get_run
from clinicflow.engine.runtime import EngineRuntime, lease_token
from clinicflow.engine.states import EffectId, RunId, RunState, TriggerKind
from clinicflow.engine.switches import switch_for
from clinicflow.errors import ClinicflowError, EngineError
from clinicflow.logs import run_id_var

logger = logging.getLogger(__name__)


class Enqueuer(Protocol):
    """Where runs and effects go once they are due: huey (`TaskQueue`) or this process."""

    def enqueue_run(self, run_id: RunId) -> None: ...

    def enqueue_effect(self, effect_id: EffectId, *, delay_s: float = 0.0) -> None: ...


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run did, for `clinicflow run` and the run page."""

    run_id: RunId
    automation: str
    state: RunState
    dry_run: bool
    units: dict[str, int]
    minutes_saved: float
    effects: dict[str, int]
    error_message: str | None

    def to_json(self) -> dict[str, object]:
        """Plain JSON for `--json`."""
        return {
            "run_id": self.run_id,
            "automation": self.automation,
            "state": self.state.value,
            "dry_run": self.dry_run,
            "units": self.units,
            "minutes_saved": self.minutes_saved,
            "effects": self.effects,
            "error": self.error_message,
        }


def request_run(rt: EngineRuntime, name: str, *, dry_run: bool, requested_by: str) -> RunId:
    """Queue a run a person asked for; EngineError if the automation is unknown or turned off."""
    rt.registry.get(name)
    now = rt.clock.now()
    with rt.db.transaction() as session:
        if not switch_for(session, name).enabled:
            raise EngineError(
                f"{name} is turned off; turn it on with `clinicflow automations enable {name}`.",
                code="automation.disabled",
            )
        run_id = create_run(
            session,
            automation=name,
            trigger_kind=TriggerKind.MANUAL,
            trigger_key=manual_trigger_key(uuid.uuid4().hex),
            scheduled_for=now,
            requested_by=requested_by,
            now=now,
            dry_run=dry_run,
        )
    if run_id is None:  # a fresh uuid never collides; this would be a bug
        raise EngineError("The run could not be recorded.", code="run.not_created")
    return run_id


def execute_run(rt: EngineRuntime, run_id: RunId) -> list[EffectId]:
    """Carry out a queued run (or one whose worker died); its pending effects, to enqueue."""
    owner = lease_token()
    now = rt.clock.now()
    with rt.db.transaction() as session:
        if not claim_run(session, run_id, owner=owner, now=now, lease_s=rt.policy.run_lease_s):
            return []
        run = get_run(session, run_id)
    token = run_id_var.set(str(run_id))
    try:
        error = _run_automation(rt, run, owner, now)
    finally:
        run_id_var.reset(token)
    if error is not None:
        code, message = error
        with rt.db.transaction() as session:
            finish_run(
                session,
                run_id,
                owner=owner,
                now=rt.clock.now(),
                state=RunState.FAILED,
                dry_run=run.dry_run,
                error_code=code,
                error_message=message,
            )
        return []
    with rt.db.transaction() as session:
        return pending_ids_of_run(session, run_id)


def _run_automation(
    rt: EngineRuntime, run: RunRecord, owner: str, now: datetime
) -> tuple[str, str] | None:
    """Call the automation in one transaction; (code, message) if it failed."""
    extra = {"run_id": run.id, "automation": run.automation}
    session = rt.db.sessions()
    try:
        automation = rt.registry.get(run.automation)
        # Nothing touches `session` before the automation does: on SQLite its first statement
        # takes the write lock, which an automation puts off by reading `ctx.reads` first.
        with rt.db.snapshot() as snapshot:
            reads = snapshot if snapshot is not None else session
            switch = switch_for(reads, run.automation)
            if not switch.enabled:
                return (
                    "automation.disabled",
                    f"{run.automation} was turned off before this run began.",
                )
            dry_run = run.dry_run or switch.dry_run
            ctx = _context(rt, run, session, snapshot, reads, now, dry_run, automation, extra)
            automation.run(ctx)
        # The switch was read before the automation wrote (on SQLite, before the write lock):
        # a person who turned it off or changed its dry run meanwhile is obeyed.
        switch = switch_for(session, run.automation)
        if not switch.enabled or (run.dry_run or switch.dry_run) != dry_run:
            session.rollback()
            return (
                "automation.switch_changed",
                f"{run.automation} was turned off, or put in or out of dry run, while this run "
                "was under way; nothing it did was kept, and the next run follows the switch.",
            )
        finished = finish_run(
            session,
            run.id,
            owner=owner,
            now=rt.clock.now(),
            state=RunState.SUCCEEDED,
            dry_run=dry_run,
            units=ctx.units,
        )
        if not finished:  # another worker took the run over: its transaction wins, ours goes
            session.rollback()
            logger.warning("run lease lost before commit", extra=extra)
            return None
        session.commit()
        logger.info("run succeeded", extra=extra)
        return None
    except ClinicflowError as exc:
        session.rollback()
        logger.warning("run failed", extra={**extra, "code": exc.code})
        return exc.code, exc.message
    except Exception:
        session.rollback()
        ref = f"R-{uuid.uuid4().hex[:6]}"
        logger.exception("run crashed", extra={**extra, "ref": ref})
        return "run.crashed", f"Something went wrong on our side (ref {ref})."
    finally:
        session.close()


def _context(
    rt: EngineRuntime,
    run: RunRecord,
    session: Session,
    snapshot: Session | None,
    reads: Session,
    now: datetime,
    dry_run: bool,
    automation: Automation,
    extra: dict[str, object],
) -> RunContext:
    """What the automation is handed: its write session, the snapshot to read from, the rest."""
    pool = effective_owner(reads, rt, run.automation)
    event = load_event(reads, run.event_id) if run.event_id is not None else None
    events = (
        load_events(reads, run.event_ids)
        if run.event_ids
        else ((event,) if event is not None else ())
    )
    return RunContext(
        session=session,
        now=now,
        clock=rt.clock,
        zone=rt.zone,
        settings=rt.settings,
        cipher=rt.cipher,
        logger=RunLogger(logging.getLogger(f"clinicflow.run.{run.automation}"), extra),
        effects=EffectRecorder(
            session,
            cipher=rt.cipher,
            handlers=rt.handlers,
            run_id=run.id,
            automation=run.automation,
            owner=pool,
            dry_run=dry_run,
            now=now,
        ),
        run_id=run.id,
        automation=automation,
        owner=pool,
        trigger=TriggerInfo(run.trigger_kind, run.trigger_key, run.scheduled_for, event, events),
        dry_run=dry_run,
        actor=f"automation:{run.automation}",
        loaded=frozenset(rt.registry.names()),
        snapshot=snapshot,
    )


def run_outcome(rt: EngineRuntime, run_id: RunId) -> RunOutcome:
    """The run's state, units and effects by state."""
    with rt.db.transaction() as session:
        run = get_run(session, run_id)
        counts = effect_counts(session, run_id)
    automation = rt.registry.find(run.automation)
    minutes = (
        automation.minutes_saved(run.units, rt.settings.unit_minutes)
        if automation is not None
        else 0.0
    )
    return RunOutcome(
        run_id=run.id,
        automation=run.automation,
        state=run.state,
        dry_run=run.dry_run,
        units=run.units,
        minutes_saved=minutes,
        effects=counts,
        error_message=run.error_message,
    )


@dataclass
class InlineEnqueuer:
    """Runs and effects carried out at once in this process (run_now, tests, `clinicflow run`).

    A retry with a delay is left pending in the ledger: a worker's tick picks it up when due.
    """

    rt: EngineRuntime
    executions: list[Execution] = field(default_factory=list)

    def enqueue_run(self, run_id: RunId) -> None:
        """Carry out the run, then its effects."""
        for effect_id in execute_run(self.rt, run_id):
            self.enqueue_effect(effect_id)

    def enqueue_effect(self, effect_id: EffectId, *, delay_s: float = 0.0) -> None:
        """Execute the effect now (a delayed retry waits for a worker)."""
        if delay_s <= 0:
            self.executions.append(execute_effect(self.rt, effect_id))


def run_now(
    rt: EngineRuntime,
    name: str,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    requested_by: str = "cli",
) -> RunOutcome:
    """Run an automation in this process, effects included, and return its outcome."""
    if now is not None:
        rt = rt.with_clock(FakeClock(now))
    run_id = request_run(rt, name, dry_run=dry_run, requested_by=requested_by)
    InlineEnqueuer(rt).enqueue_run(run_id)
    return run_outcome(rt, run_id)
