"""The worker's side of the queue: what each task does (thin; the work is in runner/execution)."""

from __future__ import annotations

import logging

from clinicflow.engine.execution import execute_effect
from clinicflow.engine.queue import EFFECT_TASK, RUN_TASK, TaskQueue
from clinicflow.engine.runner import execute_run
from clinicflow.engine.runtime import EngineRuntime
from clinicflow.engine.states import EffectId, RunId

logger = logging.getLogger(__name__)


def bind_tasks(queue: TaskQueue, rt: EngineRuntime) -> None:
    """Make this process carry out runs and effects from `queue` with `rt`."""

    def run_task(run_id: int) -> None:
        for effect_id in execute_run(rt, RunId(run_id)):
            queue.enqueue_effect(effect_id)

    def effect_task(effect_id: int) -> None:
        execution = execute_effect(rt, EffectId(effect_id))
        if execution.retry_at is not None:
            delay_s = (execution.retry_at - rt.clock.now()).total_seconds()
            queue.enqueue_effect(execution.effect_id, delay_s=max(delay_s, 0.0))

    queue.bind(RUN_TASK, run_task)
    queue.bind(EFFECT_TASK, effect_task)
