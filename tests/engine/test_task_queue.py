"""The huey wrapper on SqliteHuey and RedisHuey: enqueue, delay, ping, and the engine end to end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_harness import (
    REDIS_TEST_URL,
    MakeHarness,
    forget_redis_queue,
    redis_answers_or_fail,
)

from clinicflow.engine import (
    Automation,
    EffectId,
    Manual,
    QueueUnavailableError,
    RunContext,
    RunId,
    RunState,
    TaskQueue,
    message_key,
    ping,
    request_run,
    run_outcome,
)
from clinicflow.engine.queue import EFFECT_TASK, RUN_TASK
from clinicflow.engine.tasks import bind_tasks


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskQueue]:
    """A queue of its own on huey's SQLite file, then on Redis (unique name, keys removed)."""
    name = f"cf-test-{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        yield TaskQueue.sqlite(tmp_path / "queue.db", name=name)
        return
    redis_answers_or_fail()
    try:
        yield TaskQueue.redis(REDIS_TEST_URL, name=name)
    finally:
        forget_redis_queue(name)


def test_a_task_enqueued_runs_its_bound_function_with_the_id(queue: TaskQueue) -> None:
    seen: list[tuple[str, int]] = []
    queue.bind(RUN_TASK, lambda i: seen.append(("run", i)))
    queue.bind(EFFECT_TASK, lambda i: seen.append(("effect", i)))
    queue.enqueue_run(RunId(7))
    queue.enqueue_effect(EffectId(8))
    assert queue.pending_count() == 2
    while queue.run_one():
        pass
    assert seen == [("run", 7), ("effect", 8)]


def test_a_delayed_task_waits_in_the_schedule(queue: TaskQueue) -> None:
    seen: list[int] = []
    queue.bind(EFFECT_TASK, seen.append)
    queue.enqueue_effect(EffectId(3), delay_s=60)
    assert queue.run_one()  # a worker takes it, sees it is not due, and parks it
    assert seen == []
    assert queue.scheduled_count() == 1
    queue.flush()
    assert queue.scheduled_count() == 0


def test_ping_answers_when_the_storage_does(queue: TaskQueue) -> None:
    ping(queue)


def test_ping_says_what_to_check_when_redis_is_not_there() -> None:
    queue = TaskQueue.redis("redis://127.0.0.1:1/15", name="cf-test-nowhere")
    with pytest.raises(QueueUnavailableError, match="CLINICFLOW_REDIS_URL"):
        queue.ping()
    with pytest.raises(QueueUnavailableError):
        queue.enqueue_run(RunId(1))


def _two_messages(ctx: RunContext) -> None:
    for patient in ("Patient/1", "Patient/2"):
        ctx.effects.send_message(
            key=message_key("queued", patient, "t"), channel="sms", to="+15555550100", body="Hi"
        )


def test_a_queued_run_and_its_effects_are_carried_out_by_the_queue(
    queue: TaskQueue, make_harness: MakeHarness
) -> None:
    h = make_harness(
        [Automation(name="queued", summary="", trigger=Manual(), run=_two_messages, owner="x")]
    )
    bind_tasks(queue, h.rt)
    run_id = request_run(h.rt, "queued", dry_run=False, requested_by="test")
    queue.enqueue_run(run_id)
    executed = 0
    while queue.run_one():
        executed += 1
    outcome = run_outcome(h.rt, run_id)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.effects == {"done": 2}
    assert executed == 3
    assert h.deliveries(message_key("queued", "Patient/1", "t")) == 1
