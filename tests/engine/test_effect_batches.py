"""Batched effect execution on SQLite and PostgreSQL: the same promises as one effect at a time.

Each patient gets each message once, whatever happens between the steps: a worker killed after
the claim, after the in-flight mark, or after some sends; two workers racing on one batch; a
batch that outlives its lease.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta

import pytest
from engine_harness import Harness, MakeHarness, pending_effects_of_new_run
from sqlalchemy import update

from clinicflow.engine import (
    MESSAGE_SEND,
    Automation,
    DeferredError,
    EffectCall,
    EffectHandler,
    EffectState,
    Execution,
    HandlerEnv,
    Manual,
    RunContext,
    VoidedError,
    default_handlers,
    list_open,
    message_key,
    reconcile,
    work_item_key,
)
from clinicflow.engine.batch import claim_effects, execute_effects, mark_all_in_flight
from clinicflow.engine.states import Delivery, EffectId
from clinicflow.errors import ClinicflowError
from clinicflow.store.engine import Effect

PATIENTS = 6
LEASE_S = 30.0  # the harness's effect lease


def key_of(i: int) -> str:
    return message_key("nudges", f"Patient/{i}", "24h")


def _nudges(ctx: RunContext) -> None:
    for i in range(PATIENTS):
        ctx.effects.send_message(
            key=key_of(i),
            channel="sms",
            to=f"+1555010{i:04d}",
            body="See you tomorrow",
            for_ref=f"Patient/{i}",
        )


def _ask(ctx: RunContext) -> None:
    ctx.effects.open_work_item(key=work_item_key("ask", "why", "Patient/1"), description="Why?")


NUDGES = Automation(name="nudges", summary="", trigger=Manual(), run=_nudges, owner="front-desk")
ASK = Automation(name="ask", summary="", trigger=Manual(), run=_ask, owner="nurse")


class Killed(BaseException):
    """A SIGKILL, as far as the batch can tell: nothing after it runs."""


class Scripted:
    """The real `message.send` handler, with a script of what goes wrong for which patient."""

    reaches_patient = True
    transactional = False

    def __init__(self, h: Harness | None = None) -> None:
        self.real: EffectHandler = default_handlers().get(MESSAGE_SEND)
        self.h = h
        self.calls = 0
        self.kill_after: int | None = None
        self.slow_s = 0.0
        self.fail: dict[str, Exception] = {}

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object] | None:
        if self.kill_after is not None and self.calls >= self.kill_after:
            raise Killed
        self.calls += 1
        if self.h is not None and self.slow_s:
            self.h.clock.advance(timedelta(seconds=self.slow_s))
        if call.key in self.fail:
            raise self.fail[call.key]
        return self.real.execute(call, env)

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        return self.real.reconcile(call, env)


def _harness(make_harness: MakeHarness, script: Scripted | None = None) -> Harness:
    handlers = default_handlers().copy()
    if script is not None:
        handlers.register(MESSAGE_SEND, script, replace=True)
    return make_harness([NUDGES, ASK], handlers=handlers)


def _states(h: Harness) -> dict[str, str]:
    return {e.key: e.state for e in h.effects()}


def _each_sent_once(h: Harness) -> bool:
    return all(h.deliveries(key_of(i)) == 1 for i in range(PATIENTS))


def test_a_batch_sends_each_message_once_and_marks_every_effect_done(
    make_harness: MakeHarness,
) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "nudges")
    executions = execute_effects(h.rt, ids)
    assert [e.state for e in executions] == [EffectState.DONE] * PATIENTS
    assert _each_sent_once(h)
    for effect in h.effects():
        assert (effect.state, effect.attempts, effect.lease_expires_at) == ("done", 1, None)
        assert effect.result is not None
        assert "outbox_uid" in effect.result


def test_running_a_finished_batch_again_sends_nothing_more(make_harness: MakeHarness) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "nudges")
    execute_effects(h.rt, ids)
    again = execute_effects(h.rt, ids + ids)
    assert again == [Execution(i, None) for i in ids]
    assert _each_sent_once(h)


def test_effects_another_worker_holds_are_left_to_it(make_harness: MakeHarness) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "nudges")
    with h.db.transaction() as session:
        held = claim_effects(session, ids[:2], owner="other", now=h.clock.now(), lease_s=LEASE_S)
    assert held == ids[:2]
    executions = execute_effects(h.rt, ids)
    assert [e.state for e in executions] == [None, None] + [EffectState.DONE] * (PATIENTS - 2)
    assert [h.deliveries(key_of(i)) for i in range(PATIENTS)] == [0, 0] + [1] * (PATIENTS - 2)
    assert _states(h)[key_of(0)] == "claimed"


def test_two_workers_racing_on_one_batch_send_each_message_once(
    make_harness: MakeHarness,
) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "nudges")
    results: list[list[Execution]] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        results.append(execute_effects(h.rt, ids))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done = [e.effect_id for run in results for e in run if e.state is EffectState.DONE]
    assert sorted(done) == sorted(ids)
    assert _each_sent_once(h)


@pytest.mark.parametrize("sends_before_kill", [0, 3])
def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(
    make_harness: MakeHarness, sends_before_kill: int
) -> None:
    script = Scripted()
    h = _harness(make_harness, script)
    ids = pending_effects_of_new_run(h, "nudges")
    script.kill_after = sends_before_kill
    with pytest.raises(Killed):
        execute_effects(h.rt, ids)
    assert set(_states(h).values()) == {"in_flight"}  # sent or not, nobody can tell yet
    script.kill_after = None
    h.clock.advance(timedelta(seconds=LEASE_S + 1))
    report = reconcile(h.rt)
    assert sorted(report.effects) == ids[sends_before_kill:]  # provably unsent: pending again
    execute_effects(h.rt, report.effects)
    assert set(_states(h).values()) == {"done"}
    assert _each_sent_once(h)


def test_a_worker_killed_after_claiming_leaves_the_batch_to_the_next(
    make_harness: MakeHarness,
) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "nudges")
    with h.db.transaction() as session:
        claim_effects(session, ids, owner="dead", now=h.clock.now(), lease_s=LEASE_S)
    assert execute_effects(h.rt, ids) == [Execution(i, None) for i in ids]  # still held
    h.clock.advance(timedelta(seconds=LEASE_S + 1))
    assert sorted(reconcile(h.rt).effects) == ids
    assert {e.state for e in execute_effects(h.rt, ids)} == {EffectState.DONE}
    assert _each_sent_once(h)


def test_effects_voided_after_the_claim_are_not_marked_in_flight(
    make_harness: MakeHarness,
) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "nudges")
    now = h.clock.now()
    with h.db.transaction() as session:
        claim_effects(session, ids, owner="me", now=now, lease_s=LEASE_S)
        session.execute(update(Effect).where(Effect.id == ids[0]).values(state="voided"))
        flying = mark_all_in_flight(session, ids, owner="me", now=now, lease_s=LEASE_S)
    assert flying == ids[1:]


def test_deferred_voided_and_failed_sends_are_settled_as_one_at_a_time(
    make_harness: MakeHarness,
) -> None:
    script = Scripted()
    h = _harness(make_harness, script)
    later = h.clock.now() + timedelta(hours=1)
    script.fail = {
        key_of(0): DeferredError("Quiet hours", until=later),
        key_of(1): VoidedError("The visit moved"),
        key_of(2): ClinicflowError("Twilio is down", code="sms.down", retryable=True),
        key_of(3): RuntimeError("a bug"),
    }
    ids = pending_effects_of_new_run(h, "nudges")
    executions = {e.effect_id: e for e in execute_effects(h.rt, ids)}
    assert executions[ids[0]] == Execution(ids[0], EffectState.PENDING, later)
    assert executions[ids[1]].state is EffectState.VOIDED
    assert executions[ids[2]].state is EffectState.PENDING
    assert executions[ids[3]].state is EffectState.PENDING  # unknown, provably unsent: retried
    assert executions[ids[4]].state is EffectState.DONE
    effects = {e.key: e for e in h.effects()}
    assert (effects[key_of(0)].attempts, effects[key_of(0)].not_before) == (0, later)
    assert effects[key_of(1)].state == "voided"
    assert effects[key_of(2)].error_code == "sms.down"
    assert [h.deliveries(key_of(i)) for i in range(PATIENTS)] == [0, 0, 0, 0, 1, 1]


def test_a_batch_that_outlives_half_its_lease_gives_the_rest_back_unsent(
    make_harness: MakeHarness,
) -> None:
    script = Scripted()
    h = _harness(make_harness, script)
    script.h, script.slow_s = h, LEASE_S / 4 + 1  # the third send would start past half the lease
    ids = pending_effects_of_new_run(h, "nudges")
    executions = execute_effects(h.rt, ids)
    assert [e.state for e in executions] == [EffectState.DONE] * 2 + [EffectState.PENDING] * 4
    returned = {e.key: e for e in h.effects()}
    assert {(returned[key_of(i)].state, returned[key_of(i)].attempts) for i in range(2, 6)} == {
        ("pending", 0)
    }
    script.slow_s = 0.0
    execute_effects(h.rt, [EffectId(e.effect_id) for e in executions[2:]])
    assert _each_sent_once(h)


def test_a_handler_writing_through_the_session_commits_with_its_own_done(
    make_harness: MakeHarness,
) -> None:
    h = _harness(make_harness)
    ids = pending_effects_of_new_run(h, "ask")
    [execution] = execute_effects(h.rt, ids)
    assert execution.state is EffectState.DONE
    with h.db.transaction() as session:
        [item] = list_open(session, h.rt.cipher, reader="test", now=h.clock.now(), pool="nurse")
    assert item.description == "Why?"
