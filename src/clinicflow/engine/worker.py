"""`clinicflow worker`: a huey consumer plus a tick thread, over one database and one queue."""

from __future__ import annotations

import logging
import os
import threading

from clinicflow.clock import Clock
from clinicflow.engine.queue import TaskQueue
from clinicflow.engine.registry import EXTRA_AUTOMATIONS_ENV, Registry
from clinicflow.engine.runtime import DailyHookContext, EngineRuntime, register_daily_hook
from clinicflow.engine.scheduler import tick
from clinicflow.engine.tasks import bind_tasks
from clinicflow.security.audit import anchor_dir_for, write_head_anchor
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database

logger = logging.getLogger(__name__)

DEFAULT_TICK_S = 5.0


def _tick_forever(
    rt: EngineRuntime, queue: TaskQueue, stop: threading.Event, every_s: float
) -> None:
    # Tick at once on start-up: a restarted worker takes over what a dead one left straight away.
    while not stop.is_set():
        try:
            tick(rt, queue)
        except Exception:
            logger.exception("tick failed")
        stop.wait(every_s)


def serve(
    rt: EngineRuntime,
    queue: TaskQueue,
    *,
    workers: int,
    processes: bool = False,
    tick_s: float = DEFAULT_TICK_S,
) -> None:
    """Run a consumer until SIGINT/SIGTERM; a thread ticks every `tick_s` seconds."""
    for failure in rt.registry.failures:
        logger.warning("automation not loaded", extra={"plugin": failure.name})
    bind_tasks(queue, rt)
    if processes:  # forked workers must not reuse the parent's pooled connections
        queue.on_worker_start(lambda: rt.db.engine.dispose(close=False))
    consumer = queue.create_consumer(workers=workers, processes=processes)
    stop = threading.Event()
    ticker = threading.Thread(
        target=_tick_forever, args=(rt, queue, stop, tick_s), name="clinicflow-tick", daemon=True
    )
    consumer.start()
    ticker.start()
    logger.info("worker started", extra={"workers": workers, "queue": queue.backend})
    try:
        consumer.wait()
    finally:
        stop.set()
        ticker.join(timeout=tick_s + 5)
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
