"""Workers racing for the same effects on PostgreSQL: each effect is carried out exactly once."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from engine_harness import Harness, pending_effects_of_new_run
from sqlalchemy import func, select

from clinicflow.channels import SandboxMessageHandler
from clinicflow.clock import FakeClock
from clinicflow.engine import (
    MESSAGE_SEND,
    Automation,
    EffectCall,
    EffectState,
    EnginePolicy,
    EngineRuntime,
    Execution,
    HandlerEnv,
    Manual,
    Registry,
    RunContext,
    default_handlers,
    execute_effect,
    message_key,
)
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import SandboxMessage
from clinicflow.store.schema import create_schema

PATIENTS = [f"Patient/{i}" for i in range(20)]


class CountingSend(SandboxMessageHandler):
    """The sandbox channel, counting calls (a double call would be the bug we look for)."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.01)
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        with self._lock:
            self.calls.append(call.key)
        return super().execute(call, env)


def _many(ctx: RunContext) -> None:
    for patient in PATIENTS:
        ctx.effects.send_message(
            key=message_key("race", patient, "t"), channel="sms", to="+15555550100", body="Hi"
        )


RACE = Automation(name="race", summary="", trigger=Manual(), run=_many, owner="x")


@pytest.fixture
def racing(pg_url: str) -> Iterator[tuple[Harness, CountingSend]]:
    """A harness on PostgreSQL whose `message.send` counts its calls."""
    db = Database.from_url(pg_url, pool_size=10)
    create_schema(db.engine)
    handler = CountingSend()
    handlers = default_handlers().copy()
    handlers.register(MESSAGE_SEND, handler, replace=True)
    clock = FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(timezone="America/New_York"),
        clock=clock,
        cipher=PhiCipher(Keyring.generate()),
        registry=Registry([RACE]),
        handlers=handlers,
        policy=EnginePolicy(effect_lease_s=30.0),
    )
    try:
        yield Harness(rt, clock), handler
    finally:
        db.dispose()


def test_threads_racing_on_one_effect_send_it_once(racing: tuple[Harness, CountingSend]) -> None:
    h, handler = racing
    effect_ids = pending_effects_of_new_run(h, "race")
    target = effect_ids[0]
    barrier = threading.Barrier(8)
    results: list[Execution] = []

    def worker() -> None:
        barrier.wait()
        results.append(execute_effect(h.rt, target))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(str(r.state) for r in results) == ["None"] * 7 + ["done"]
    assert handler.calls == [message_key("race", PATIENTS[0], "t")]


def test_two_workers_draining_the_same_batch_send_each_message_once(
    racing: tuple[Harness, CountingSend],
) -> None:
    h, handler = racing
    effect_ids = pending_effects_of_new_run(h, "race")
    barrier = threading.Barrier(4)

    def worker(seed: int) -> None:
        order = list(effect_ids)
        random.Random(seed).shuffle(order)
        barrier.wait()
        for effect_id in order:
            execute_effect(h.rt, effect_id)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(handler.calls) == sorted(message_key("race", p, "t") for p in PATIENTS)
    with h.db.transaction() as session:
        per_key = session.execute(
            select(SandboxMessage.effect_key, func.count()).group_by(SandboxMessage.effect_key)
        ).all()
    assert len(per_key) == len(PATIENTS)
    assert {n for _, n in per_key} == {1}
    assert {e.state for e in h.effects()} == {EffectState.DONE}
