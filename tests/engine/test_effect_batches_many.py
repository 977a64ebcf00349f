"""Handlers that take a whole batch (`execute_many`), on SQLite and PostgreSQL: the sandbox gets a
batch of reminders in one transaction, each outcome is settled as it would be one at a time, and
a batch call that crashes part-way is settled by asking the outbox, so nothing goes out twice."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import pytest
from engine_harness import Harness, MakeHarness, pending_effects_of_new_run
from sqlalchemy import insert, select

from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.channels.delivery import MessageRouter, contact_digest
from clinicflow.channels.sandbox import SandboxMessageHandler
from clinicflow.engine import (
    MESSAGE_SEND,
    Automation,
    EffectCall,
    EffectState,
    Execution,
    HandlerEnv,
    Manual,
    MessageChannel,
    OutgoingMessage,
    RunContext,
    default_handlers,
    message_key,
    reconcile,
)
from clinicflow.engine import batch as batch_module
from clinicflow.engine.batch import execute_effects
from clinicflow.engine.handlers import CALL_EXECUTE, BatchOutcome
from clinicflow.engine.payloads import ValidWhile
from clinicflow.engine.states import Delivery
from clinicflow.store.audit import audit_log
from clinicflow.store.replica import Appointment

PATIENTS = 6
LEASE_S = 30.0  # the harness's effect lease


def key_of(i: int) -> str:
    return message_key("batch", f"Patient/{i}", "24h")


def _visit_at(h: Harness) -> datetime:
    return h.clock.now() + timedelta(days=2)


def _message(i: int, visit_at: datetime, zone: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        MessageChannel.SMS,
        f"+1555010{i:04d}",
        "See you on Wednesday",
        for_ref=f"Patient/{i}",
        zone=zone,
        valid_while=(ValidWhile(f"Appointment/a{i}", visit_at),),
    )


def _automation(zones: Mapping[int, str] | None = None) -> Automation:
    def run(ctx: RunContext) -> None:
        visit_at = ctx.now + timedelta(days=2)
        for i in range(PATIENTS):
            ctx.effects.send(key_of(i), _message(i, visit_at, (zones or {}).get(i)))

    return Automation(name="batch", summary="", trigger=Manual(), run=run, owner="front-desk")


class CountingSandbox(SandboxMessageHandler):
    """The real sandbox, remembering how many messages each outbox transaction carried."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def deliver_many(
        self, deliveries: Sequence[tuple[EffectCall, OutgoingMessage]], env: HandlerEnv
    ) -> list[dict[str, object]]:
        self.batches.append(len(deliveries))
        return super().deliver_many(deliveries, env)


class Killed(BaseException):
    """A SIGKILL, as far as the batch can tell: nothing after it runs."""


class Scripted:
    """The real router, whose batch call can deliver part of a chunk and then fail, and which may
    leave some effects to `execute`."""

    reaches_patient = True
    transactional = False

    def __init__(self, real: MessageRouter) -> None:
        self.real = real
        self.crash_after: int | None = None
        self.crash: Callable[[], BaseException] = lambda: RuntimeError("the batch broke")
        self.alone: set[str] = set()
        self.executed: list[str] = []
        self.on_batch: Callable[[], None] = lambda: None

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object] | None:
        self.executed.append(call.key)
        return self.real.execute(call, env)

    def execute_many(self, calls: Sequence[EffectCall], env: HandlerEnv) -> list[BatchOutcome]:
        self.on_batch()
        if self.crash_after is not None:
            self.real.execute_many(calls[: self.crash_after], env)
            raise self.crash()
        outcomes = self.real.execute_many([c for c in calls if c.key not in self.alone], env)
        given = iter(outcomes)
        return [CALL_EXECUTE if c.key in self.alone else next(given) for c in calls]

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        return self.real.reconcile(call, env)


def _harness(
    make_harness: MakeHarness, handler: object, zones: Mapping[int, str] | None = None
) -> Harness:
    handlers = default_handlers().copy()
    handlers.register(MESSAGE_SEND, handler, replace=True)  # type: ignore[arg-type]
    h = make_harness([_automation(zones)], handlers=handlers)
    with h.db.transaction() as session:
        session.execute(
            insert(Appointment),
            [
                {"fhir_id": f"a{i}", "status": "booked", "start_at": _visit_at(h)}
                for i in range(PATIENTS)
            ],
        )
    return h


def _deliveries(h: Harness) -> list[int]:
    return [h.deliveries(key_of(i)) for i in range(PATIENTS)]


def test_a_batch_of_reminders_goes_out_once_each_in_one_outbox_transaction(
    make_harness: MakeHarness,
) -> None:
    sandbox = CountingSandbox()
    h = _harness(make_harness, MessageRouter(sandbox))
    ids = pending_effects_of_new_run(h, "batch")
    executions = execute_effects(h.rt, ids)
    assert [e.state for e in executions] == [EffectState.DONE] * PATIENTS
    assert sandbox.batches == [PATIENTS]
    assert _deliveries(h) == [1] * PATIENTS
    for effect in h.effects():
        assert (effect.state, effect.attempts, effect.lease_expires_at) == ("done", 1, None)
        assert effect.result is not None
        assert set(effect.result) == {"outbox_uid"}
    with h.db.transaction() as session:
        [sent] = session.execute(select(audit_log).where(audit_log.c.action == "send")).all()
    assert sorted(sent.resources) == [f"Patient/{i}" for i in range(PATIENTS)]
    assert execute_effects(h.rt, ids) == [Execution(i, None) for i in ids]  # nothing twice
    assert sandbox.batches == [PATIENTS]


def test_an_opted_out_a_moved_and_a_night_time_reminder_are_settled_and_the_rest_sent(
    make_harness: MakeHarness,
) -> None:
    sandbox = CountingSandbox()
    h = _harness(make_harness, MessageRouter(sandbox), zones={2: "Asia/Tokyo"})  # 23:00 there
    with h.db.transaction() as session:
        record_consent(
            session,
            channel=MessageChannel.SMS,
            contact_digest=contact_digest(h.rt.cipher, MessageChannel.SMS, "+15550100000"),
            opted_out=True,
            keyword="STOP",
            source=ConsentSource.SMS,
            now=h.clock.now(),
        )
    ids = pending_effects_of_new_run(h, "batch")
    with h.db.transaction() as session:
        visit = session.get_one(Appointment, "a1")
        visit.start_at = _visit_at(h) + timedelta(hours=3)
    tokyo_8am = datetime.fromisoformat("2026-11-24T08:00:00+09:00")

    executions = execute_effects(h.rt, ids)

    assert executions == [
        Execution(ids[0], EffectState.VOIDED),
        Execution(ids[1], EffectState.VOIDED),
        Execution(ids[2], EffectState.PENDING, tokyo_8am),
        *[Execution(i, EffectState.DONE) for i in ids[3:]],
    ]
    effects = {e.key: e for e in h.effects()}
    assert effects[key_of(0)].error_message == "The patient opted out of texts."
    assert effects[key_of(1)].error_message == (
        "Appointment/a1 moved: the reminder for the old time is dropped."
    )
    held = effects[key_of(2)]
    assert (held.state, held.attempts, held.not_before) == ("pending", 0, tokyo_8am)
    assert sandbox.batches == [3]
    assert _deliveries(h) == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("delivered_before_crash", [0, 3])
def test_a_batch_call_that_raises_part_way_is_settled_by_asking_the_outbox(
    make_harness: MakeHarness, delivered_before_crash: int
) -> None:
    script = Scripted(MessageRouter())
    h = _harness(make_harness, script)
    ids = pending_effects_of_new_run(h, "batch")
    script.crash_after = delivered_before_crash

    executions = execute_effects(h.rt, ids)

    went, not_yet = ids[:delivered_before_crash], ids[delivered_before_crash:]
    assert [e.state for e in executions] == [EffectState.DONE] * len(went) + [
        EffectState.PENDING
    ] * len(not_yet)
    effects = h.effects()
    assert [(e.result, e.attempts) for e in effects[: len(went)]] == [
        ({"reconciled": True}, 1)
    ] * len(went)
    assert [e.state for e in effects[len(went) :]] == ["pending"] * len(not_yet)
    script.crash_after = None
    assert [e.state for e in execute_effects(h.rt, not_yet)] == [EffectState.DONE] * len(not_yet)
    assert {e.state for e in h.effects()} == {"done"}
    assert _deliveries(h) == [1] * PATIENTS


@pytest.mark.parametrize("delivered_before_kill", [0, 3])
def test_a_worker_killed_inside_a_batch_call_loses_nothing_and_doubles_nothing(
    make_harness: MakeHarness, delivered_before_kill: int
) -> None:
    script = Scripted(MessageRouter())
    h = _harness(make_harness, script)
    ids = pending_effects_of_new_run(h, "batch")
    script.crash_after, script.crash = delivered_before_kill, Killed
    with pytest.raises(Killed):
        execute_effects(h.rt, ids)
    assert {e.state for e in h.effects()} == {"in_flight"}  # sent or not, nobody can tell yet
    script.crash_after = None
    h.clock.advance(timedelta(seconds=LEASE_S + 1))
    report = reconcile(h.rt)
    assert sorted(report.effects) == ids[delivered_before_kill:]  # provably unsent: pending
    execute_effects(h.rt, report.effects)
    assert {e.state for e in h.effects()} == {"done"}
    assert _deliveries(h) == [1] * PATIENTS


def test_effects_a_batch_handler_leaves_to_execute_are_carried_out_one_at_a_time(
    make_harness: MakeHarness,
) -> None:
    script = Scripted(MessageRouter())
    h = _harness(make_harness, script)
    script.alone = {key_of(1), key_of(4)}
    ids = pending_effects_of_new_run(h, "batch")
    executions = execute_effects(h.rt, ids)
    assert [e.state for e in executions] == [EffectState.DONE] * PATIENTS
    assert script.executed == [key_of(1), key_of(4)]
    assert _deliveries(h) == [1] * PATIENTS


def test_chunks_not_handed_over_by_half_the_lease_are_given_back_unsent(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "MANY_CHUNK", 2)
    script = Scripted(MessageRouter())
    h = _harness(make_harness, script)
    # Each chunk takes a quarter of the lease and a second: the third would start past half.
    script.on_batch = lambda: h.clock.advance(timedelta(seconds=LEASE_S / 4 + 1))
    ids = pending_effects_of_new_run(h, "batch")
    executions = execute_effects(h.rt, ids)
    assert [e.state for e in executions] == [EffectState.DONE] * 4 + [EffectState.PENDING] * 2
    assert [(e.state, e.attempts) for e in h.effects()][4:] == [("pending", 0)] * 2
    assert _deliveries(h) == [1, 1, 1, 1, 0, 0]
    script.on_batch = lambda: None
    execute_effects(h.rt, ids[4:])
    assert _deliveries(h) == [1] * PATIENTS
