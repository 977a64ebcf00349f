"""The engine test harness: a runtime over a real database, and what tests ask of the ledgers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from clinicflow.channels import deliveries_of
from clinicflow.clock import FakeClock
from clinicflow.engine import (
    EffectId,
    EngineRuntime,
    RunId,
    RunOutcome,
    execute_run,
    request_run,
    run_now,
)
from clinicflow.store import Database
from clinicflow.store.engine import Effect


@dataclass
class Harness:
    """A runtime plus the questions tests ask of the ledgers."""

    rt: EngineRuntime
    clock: FakeClock

    @property
    def db(self) -> Database:
        return self.rt.db

    def run(self, name: str, *, dry_run: bool = False) -> RunOutcome:
        return run_now(self.rt, name, dry_run=dry_run, requested_by="test")

    def effects(self) -> list[Effect]:
        with self.db.transaction() as session:
            return list(session.scalars(select(Effect).order_by(Effect.id)))

    def effect(self, key: str) -> Effect:
        with self.db.transaction() as session:
            return session.scalars(select(Effect).where(Effect.key == key)).one()

    def deliveries(self, key: str) -> int:
        with self.db.transaction() as session:
            return deliveries_of(session, key)


MakeHarness = Callable[..., Harness]


@dataclass
class RecordingEnqueuer:
    """Remembers what would have gone to huey, for tests that look at the tick's decisions."""

    runs: list[RunId] = field(default_factory=list)
    effects: list[tuple[EffectId, float]] = field(default_factory=list)

    def enqueue_run(self, run_id: RunId) -> None:
        self.runs.append(run_id)

    def enqueue_effect(self, effect_id: EffectId, *, delay_s: float = 0.0) -> None:
        self.effects.append((effect_id, delay_s))


def pending_effects_of_new_run(h: Harness, name: str) -> list[EffectId]:
    """Run `name` without executing its effects: they stay pending, as a worker would leave them."""
    run_id = request_run(h.rt, name, dry_run=False, requested_by="test")
    return execute_run(h.rt, run_id)


REDIS_TEST_URL = "redis://127.0.0.1:6379/15"


def redis_answers_or_fail() -> None:
    """Fail the test loudly (never skip) when the test Redis is not there."""
    import pytest
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            "Redis does not answer on 127.0.0.1:6379. Start it with: redis-server --daemonize yes "
            f'--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no\n({exc})'
        )


def forget_redis_queue(name: str) -> None:
    """Delete every key huey made for queue `name` in the test Redis."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    for key in client.scan_iter(match=f"huey.*{name}*"):
        client.delete(key)
