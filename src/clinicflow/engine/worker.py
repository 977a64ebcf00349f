"""`clinicflow worker`: a huey consumer, a tick thread and a periodic-jobs thread, over one
database and one queue."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from clinicflow.clock import Clock
from clinicflow.engine.periodic import JobRun, Periodic, run_due
from clinicflow.engine.queue import TaskQueue
from clinicflow.engine.registry import EXTRA_AUTOMATIONS_ENV, Registry
from clinicflow.engine.runtime import (
    DailyHookContext,
    EngineRuntime,
    register_daily_hook,
    worker_identity,
)
from clinicflow.engine.scheduler import dispatch_due_events, tick
from clinicflow.engine.tasks import bind_tasks
from clinicflow.security.audit import anchor_dir_for, catch_up_audit_index, write_head_anchor
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database

logger = logging.getLogger(__name__)

DEFAULT_TICK_S = 5.0
# Events are picked up more often than the tick: an urgent message waits for event hops
# (reply stored -> reminder-replies -> message-triage), and each hop would otherwise wait for
# the next tick. One indexed query for undispatched events; it finds none most of the time.
EVENTS_S = 0.5


def _forever(step: Callable[[], object], what: str, stop: threading.Event, every_s: float) -> None:
    # Step at once on start-up: a restarted worker takes over what a dead one left straight away.
    while not stop.is_set():
        try:
            step()
        except Exception:
            logger.exception("%s failed", what)
        stop.wait(every_s)


def serve(
    rt: EngineRuntime,
    queue: TaskQueue,
    *,
    workers: int,
    processes: bool = False,
    tick_s: float = DEFAULT_TICK_S,
    periodic: Sequence[Periodic] = (),
) -> None:
    """Run a consumer until SIGINT/SIGTERM; a thread ticks every `tick_s` seconds.

    Periodic jobs (the EHR sync) get a thread of their own, so a sync that takes minutes never
    holds up the tick that starts runs and sends effects.
    """
    for failure in rt.registry.failures:
        logger.warning("automation not loaded", extra={"plugin": failure.name})
    bind_tasks(queue, rt)
    if processes:  # forked workers must not reuse the parent's pooled connections
        queue.on_worker_start(rt.db.forget_connections)
    consumer = queue.create_consumer(workers=workers, processes=processes)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_forever,
            args=(lambda: tick(rt, queue), "tick", stop, tick_s),
            name="clinicflow-tick",
            daemon=True,
        ),
        threading.Thread(
            target=_forever,
            args=(lambda: dispatch_due_events(rt, queue), "events", stop, min(EVENTS_S, tick_s)),
            name="clinicflow-events",
            daemon=True,
        ),
    ]
    if periodic:
        owner = worker_identity()
        threads.append(
            threading.Thread(
                target=_forever,
                args=(
                    lambda: run_due(rt.db, rt.clock, periodic, owner=owner),
                    "jobs",
                    stop,
                    tick_s,
                ),
                name="clinicflow-periodic",
                daemon=True,
            )
        )
    consumer.start()
    # After the consumer forks its processes (if any): a child must not inherit an open SQLite
    # connection. The writers' commits then leave checkpoints to this thread (store.checkpoints).
    checkpointer = rt.db.start_checkpointer()
    for thread in threads:
        thread.start()
    logger.info(
        "worker started",
        extra={"workers": workers, "queue": queue.backend, "jobs": [j.name for j in periodic]},
    )
    try:
        consumer.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=tick_s + 5)
        if checkpointer is not None:
            checkpointer.stop()
        logger.info("worker stopped")


def build_runtime(
    settings: Settings, *, db: Database, cipher: PhiCipher, clock: Clock
) -> EngineRuntime:
    """The runtime a worker or the CLI uses: the whole registry loaded, extras included."""
    registry = Registry.load(extra=os.environ.get(EXTRA_AUTOMATIONS_ENV))
    return EngineRuntime.build(
        db=db, settings=settings, clock=clock, cipher=cipher, registry=registry
    )


def _anchor_audit_head(ctx: DailyHookContext) -> None:
    """Write the audit chain's head outside the database once a day, so a cut tail is caught."""
    write_head_anchor(ctx.session, anchor_dir_for(ctx.settings.data_dir), ctx.now)


register_daily_hook("audit-anchor", _anchor_audit_head)

AUDIT_INDEX_JOB = "audit-index"


def audit_index_job(db: Database, *, every: timedelta = timedelta(minutes=1)) -> Periodic:
    """Index list views' audit rows under their patients, in batches (see record_access)."""

    def run(_job: JobRun) -> Mapping[str, object]:
        with db.transaction() as session:
            return {"rows_read": catch_up_audit_index(session)}

    return Periodic(AUDIT_INDEX_JOB, every, run, lease=timedelta(minutes=5))
