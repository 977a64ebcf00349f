"""The one typed wrapper around huey; nothing else in clinicflow touches huey's untyped API.

Two tasks exist, each taking one database id: run an automation run, execute an effect. The huey
tasks are dispatchers whose work is bound at start-up (`bind`), so an enqueuing process (the web
app, the CLI) needs no database objects, and a worker binds the real functions. The database is
the source of truth: a task lost with a killed worker is enqueued again by the reconciler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey

from clinicflow.engine.states import EffectId, RunId
from clinicflow.errors import EngineError
from clinicflow.settings import Settings

logger = logging.getLogger(__name__)

RUN_TASK = "run_automation_run"
EFFECT_TASK = "execute_effect"
TASK_NAMES = (RUN_TASK, EFFECT_TASK)
DEFAULT_QUEUE_NAME = "clinicflow"

TaskFunction = Callable[[int], None]


class QueueUnavailableError(EngineError):
    """The job queue's storage (Redis or huey's SQLite file) does not answer."""

    code = "queue.unavailable"
    retryable = True


class TaskQueue:
    """A huey instance with clinicflow's tasks, typed."""

    def __init__(self, huey: Any, *, backend: str) -> None:
        self._huey = huey
        self.backend = backend
        self._bound: dict[str, TaskFunction] = {}
        self._tasks: dict[str, Any] = {name: self._define(name) for name in TASK_NAMES}

    @classmethod
    def sqlite(cls, path: Path, *, name: str = DEFAULT_QUEUE_NAME) -> TaskQueue:
        """huey on its own SQLite file (the embedded default, apart from the app database)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(SqliteHuey(name=name, filename=str(path), results=False), backend="sqlite")

    @classmethod
    def redis(cls, url: str, *, name: str = DEFAULT_QUEUE_NAME) -> TaskQueue:
        """huey on Redis, for several workers on several machines."""
        return cls(RedisHuey(name=name, url=url, results=False), backend="redis")

    @classmethod
    def from_settings(cls, settings: Settings, *, name: str = DEFAULT_QUEUE_NAME) -> TaskQueue:
        """Redis when `redis_url` is set, else SQLite at `settings.queue_path`."""
        if settings.redis_url:
            return cls.redis(settings.redis_url, name=name)
        return cls.sqlite(settings.queue_path, name=name)

    def _define(self, name: str) -> Any:
        def dispatch(item_id: int) -> None:
            fn = self._bound.get(name)
            if fn is None:
                raise EngineError(f"Task {name} reached a process that does not run tasks.")
            fn(item_id)

        dispatch.__name__ = name
        dispatch.__qualname__ = name
        return self._huey.task(name=name)(dispatch)

    def bind(self, name: str, fn: TaskFunction) -> None:
        """Make this process carry out task `name` with `fn` (done by workers at start-up)."""
        if name not in self._tasks:
            raise EngineError(f"Unknown task {name!r}; tasks are {', '.join(TASK_NAMES)}.")
        self._bound[name] = fn

    def _enqueue(self, name: str, item_id: int, delay_s: float) -> None:
        task = self._tasks[name]
        try:
            if delay_s > 0:
                task.schedule(args=(item_id,), delay=delay_s)
            else:
                task(item_id)
        except Exception as exc:
            raise QueueUnavailableError(self._unavailable_message()) from exc

    def enqueue_run(self, run_id: RunId) -> None:
        """Ask a worker to carry out a run."""
        self._enqueue(RUN_TASK, run_id, 0.0)

    def enqueue_effect(self, effect_id: EffectId, *, delay_s: float = 0.0) -> None:
        """Ask a worker to execute an effect, now or after `delay_s` seconds."""
        self._enqueue(EFFECT_TASK, effect_id, delay_s)

    def _unavailable_message(self) -> str:
        if self.backend == "redis":
            return "The job queue (Redis) does not answer; check CLINICFLOW_REDIS_URL and Redis."
        return "The job queue's SQLite file cannot be used; check the data dir and its disk."

    def ping(self) -> None:
        """Check the queue's storage answers (for /readyz); QueueUnavailableError if not."""
        try:
            self._huey.pending_count()
        except Exception as exc:
            raise QueueUnavailableError(self._unavailable_message()) from exc

    def pending_count(self) -> int:
        """Tasks waiting to be picked up."""
        return int(self._huey.pending_count())

    def scheduled_count(self) -> int:
        """Tasks waiting for their delay to pass."""
        return int(self._huey.scheduled_count())

    def flush(self) -> None:
        """Drop every queued and scheduled task (tests, and after restoring a backup)."""
        self._huey.flush()

    def run_one(self) -> bool:
        """Take one task from the queue and run it in this thread; False if the queue was empty."""
        task = self._huey.dequeue()
        if task is None:
            return False
        self._huey.execute(task)
        return True

    def create_consumer(
        self,
        *,
        workers: int,
        processes: bool,
        poll_s: float = 0.1,
        max_poll_s: float = 0.5,
    ) -> Consumer:
        """A consumer that starts new tasks within `max_poll_s` (huey's default backoff: 10 s)."""
        consumer = self._huey.create_consumer(
            workers=workers,
            worker_type="process" if processes else "thread",
            initial_delay=poll_s,
            backoff=1.15,
            max_delay=max_poll_s,
            periodic=False,  # our own tick evaluates schedules in the practice's time zone
            check_worker_health=True,
        )
        return Consumer(consumer, self._huey)

    def on_worker_start(self, fn: Callable[[], None]) -> None:
        """Call `fn` in each worker (thread or forked process) before it takes tasks."""
        self._huey.on_startup(name=f"clinicflow_{id(fn)}")(fn)


class Consumer:
    """A running huey consumer: `start`, then `wait` until a signal stops it."""

    def __init__(self, consumer: Any, huey: Any) -> None:
        self._consumer = consumer
        self._huey = huey

    def start(self) -> None:
        """Start the worker threads or processes and the scheduler; install signal handlers."""
        self._consumer.start()

    def wait(self) -> None:
        """Block until SIGINT/SIGTERM (graceful) stops the consumer."""
        from huey.consumer import ConsumerStopped

        health_check_at = time.monotonic()
        while True:
            try:
                health_check_at = self._consumer.loop(health_check_at)
            except ConsumerStopped:
                break
        self._huey.notify_interrupted_tasks()

    def stop(self) -> None:
        """Ask the consumer to stop after the tasks in hand."""
        self._consumer.stop(graceful=True)


def ping(queue: TaskQueue) -> None:
    """Check the queue answers (for /readyz); QueueUnavailableError says what to check."""
    queue.ping()
