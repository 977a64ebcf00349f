"""Effects on SQLite and PostgreSQL: recorded with the run, executed once after it commits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest
from engine_harness import Harness, MakeHarness

from clinicflow.channels import SandboxMessageHandler
from clinicflow.engine import (
    MESSAGE_SEND,
    Automation,
    Delivery,
    EffectCall,
    EffectState,
    HandlerEnv,
    Manual,
    RunContext,
    RunState,
    Unit,
    WorkItemStatus,
    default_handlers,
    execute_effect,
    list_open,
    message_key,
    work_item_key,
)
from clinicflow.engine.effects import claim_effect
from clinicflow.engine.rules import RetryPolicy
from clinicflow.engine.states import EffectId
from clinicflow.errors import ClinicflowError

PATIENTS = ("Patient/1", "Patient/2", "Patient/3")


def _remind(ctx: RunContext) -> None:
    for patient in PATIENTS:
        ctx.effects.send_message(
            key=message_key("remind", patient, "48h"),
            channel="sms",
            to="+15555550100",
            body="Your visit is on Tuesday at 10:30.",
            for_ref=patient,
            focus="Appointment/9",
        )
        ctx.count("reminder_sent")


REMIND = Automation(
    name="remind",
    summary="Remind",
    trigger=Manual(),
    run=_remind,
    owner="front-desk",
    units=(Unit("reminder_sent", minutes_saved=3.0),),
)


class FlakySend:
    """Fails with a chosen ClinicflowError `failures` times, then sends through the sandbox."""

    reaches_patient = True
    transactional = False

    def __init__(self, failures: int, *, retryable: bool) -> None:
        self.failures = failures
        self.retryable = retryable
        self.sandbox = SandboxMessageHandler()

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        if self.failures > 0:
            self.failures -= 1
            raise ClinicflowError(
                "The SMS provider is busy.", code="sms.busy", retryable=self.retryable
            )
        return self.sandbox.execute(call, env)

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        return self.sandbox.reconcile(call, env)


def _with_send(make_harness: MakeHarness, handler: object, **kwargs: object) -> Harness:
    handlers = default_handlers().copy()
    handlers.register(MESSAGE_SEND, handler, replace=True)  # type: ignore[arg-type]
    return make_harness([REMIND], handlers=handlers, **kwargs)


def test_messages_are_sent_once_after_the_run_commits(make_harness: MakeHarness) -> None:
    h = make_harness([REMIND])
    outcome = h.run("remind")
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.effects == {"done": 3}
    for patient in PATIENTS:
        key = message_key("remind", patient, "48h")
        assert h.deliveries(key) == 1
        effect = h.effect(key)
        assert effect.reaches_patient
        assert effect.result is not None
        assert "outbox_uid" in effect.result


def test_a_second_run_asking_for_the_same_keys_sends_nothing_more(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([REMIND])
    h.run("remind")
    again = h.run("remind")
    assert again.state is RunState.SUCCEEDED
    assert again.effects == {}
    assert [h.deliveries(message_key("remind", p, "48h")) for p in PATIENTS] == [1, 1, 1]


def test_payloads_are_encrypted_at_rest(make_harness: MakeHarness) -> None:
    h = make_harness([REMIND])
    h.run("remind")
    for effect in h.effects():
        assert b"Tuesday" not in effect.payload_enc
        assert b"+1555" not in effect.payload_enc
        assert "Tuesday" not in effect.summary


def test_only_one_worker_claims_a_pending_effect(make_harness: MakeHarness) -> None:
    h = _with_send(make_harness, FlakySend(1, retryable=True))
    h.run("remind")  # leaves the first effect pending, due in 10 s
    h.clock.advance(timedelta(seconds=10))
    now = h.clock.now()
    effect_id = EffectId(h.effects()[0].id)
    with h.db.transaction() as session:
        assert claim_effect(session, effect_id, owner="a", now=now, lease_s=30)
        assert not claim_effect(session, effect_id, owner="b", now=now, lease_s=30)
        later = now + timedelta(seconds=31)
        assert claim_effect(session, effect_id, owner="b", now=later, lease_s=30)


def test_a_retryable_failure_is_retried_with_backoff_then_sent(make_harness: MakeHarness) -> None:
    h = _with_send(make_harness, FlakySend(1, retryable=True))
    outcome = h.run("remind")
    assert outcome.effects == {"pending": 1, "done": 2}
    effect = h.effects()[0]
    assert effect.error_code == "sms.busy"
    assert effect.not_before == h.clock.now() + timedelta(seconds=10)
    assert execute_effect(h.rt, EffectId(effect.id)).state is None  # not due yet
    h.clock.advance(timedelta(seconds=10))
    assert execute_effect(h.rt, EffectId(effect.id)).state is EffectState.DONE
    assert h.deliveries(effect.key) == 1
    assert h.effect(effect.key).attempts == 2


def test_an_effect_that_keeps_failing_gives_up_and_asks_a_person(
    make_harness: MakeHarness,
) -> None:
    h = _with_send(
        make_harness,
        FlakySend(99, retryable=True),
        retry=RetryPolicy(max_attempts=2, base_delay_s=1.0, max_delay_s=1.0),
    )
    h.run("remind")
    effect_id = EffectId(h.effects()[0].id)
    h.clock.advance(timedelta(seconds=1))
    assert execute_effect(h.rt, effect_id).state is EffectState.FAILED
    failed = h.effects()[0]
    assert failed.error_message == "The SMS provider is busy."
    assert failed.work_item_id is not None
    with h.db.transaction() as session:
        items = list_open(
            session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="front-desk"
        )
    assert [item.source_effect_key for item in items] == [failed.key]
    assert "The SMS provider is busy." in items[0].description
    assert items[0].for_ref == "Patient/1"
    assert h.deliveries(failed.key) == 0


def test_a_permanent_failure_is_recorded_without_retrying(make_harness: MakeHarness) -> None:
    h = _with_send(make_harness, FlakySend(3, retryable=False))
    outcome = h.run("remind")
    assert outcome.effects == {"failed": 3}
    assert all(e.attempts == 1 and e.work_item_id is not None for e in h.effects())


def test_work_items_asked_for_by_a_run_are_opened_after_it_commits(
    make_harness: MakeHarness,
) -> None:
    def ask(ctx: RunContext) -> None:
        ctx.effects.open_work_item(
            key=work_item_key("ask", "call-back", "Patient/7"),
            description="Call Ms Rivera back about her referral.",
            for_ref="Patient/7",
        )

    h = make_harness([Automation(name="ask", summary="", trigger=Manual(), run=ask, owner="nurse")])
    outcome = h.run("ask")
    assert outcome.effects == {"done": 1}
    with h.db.transaction() as session:
        items = list_open(
            session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="nurse"
        )
    assert len(items) == 1
    assert items[0].status is WorkItemStatus.REQUESTED
    assert items[0].description == "Call Ms Rivera back about her referral."
    assert items[0].source_run_id == outcome.run_id


def test_an_effect_of_an_unknown_kind_fails_the_run_clearly(make_harness: MakeHarness) -> None:
    def fax(ctx: RunContext) -> None:
        ctx.effects.record("fax.send", key="fax:1", payload={})

    h = make_harness([Automation(name="fax", summary="", trigger=Manual(), run=fax, owner="x")])
    outcome = h.run("fax")
    assert outcome.state is RunState.FAILED
    assert "fax.send" in (outcome.error_message or "")


@pytest.mark.parametrize("crash_after_send", [False, True])
def test_a_handler_crash_is_settled_by_asking_the_handler(
    make_harness: MakeHarness, crash_after_send: bool
) -> None:
    class Crashing(SandboxMessageHandler):
        def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
            if crash_after_send:
                super().execute(call, env)
            raise ConnectionResetError

    h = _with_send(make_harness, Crashing())
    outcome = h.run("remind")
    expected = "done" if crash_after_send else "pending"
    assert outcome.effects == {expected: 3}
    assert all(h.deliveries(e.key) == (1 if crash_after_send else 0) for e in h.effects())
