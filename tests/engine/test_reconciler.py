"""The reconciler on SQLite and PostgreSQL: what a dead worker left is finished, never resent."""

from __future__ import annotations

from datetime import timedelta

from engine_harness import (
    Harness,
    MakeHarness,
    RecordingEnqueuer,
    pending_effects_of_new_run,
)

from clinicflow.channels import SandboxMessageHandler
from clinicflow.engine import (
    MESSAGE_SEND,
    Automation,
    Delivery,
    EffectCall,
    EffectState,
    HandlerEnv,
    Manual,
    Priority,
    RunContext,
    default_handlers,
    execute_effect,
    list_open,
    message_key,
    reconcile,
    settle_by_person,
    tick,
    work_item_key,
)
from clinicflow.engine.effects import claim_effect, mark_in_flight
from clinicflow.engine.execution import effect_call
from clinicflow.engine.states import EffectId
from clinicflow.store.engine import Effect

KEY = message_key("nudge", "Patient/1", "24h")
LEASE_S = 30.0


def _nudge(ctx: RunContext) -> None:
    ctx.effects.send_message(
        key=KEY, channel="sms", to="+15555550100", body="See you tomorrow", for_ref="Patient/1"
    )


def _ask(ctx: RunContext) -> None:
    ctx.effects.open_work_item(key=work_item_key("ask", "why", "Patient/1"), description="Why?")


NUDGE = Automation(name="nudge", summary="", trigger=Manual(), run=_nudge, owner="front-desk")
ASK = Automation(name="ask", summary="", trigger=Manual(), run=_ask, owner="nurse")


class CannotTell(SandboxMessageHandler):
    """A provider whose API cannot say whether a message went out."""

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:  # noqa: ARG002  (handler protocol)
        return Delivery.UNKNOWN


def _die_in_flight(h: Harness, effect_id: EffectId, *, sent: bool) -> None:
    """Claim and mark in flight as a worker would, optionally deliver, then "SIGKILL"."""
    now = h.clock.now()
    with h.db.transaction() as session:
        assert claim_effect(session, effect_id, owner="dead", now=now, lease_s=LEASE_S)
        assert mark_in_flight(session, effect_id, owner="dead", now=now, lease_s=LEASE_S)
        row = session.get_one(Effect, effect_id)
    if sent:
        session = h.db.sessions()
        SandboxMessageHandler().execute(effect_call(h.rt, row), h.rt.handler_env(session))
        session.close()
    h.clock.advance(timedelta(seconds=LEASE_S + 1))


def test_an_unsent_in_flight_message_goes_back_to_pending_and_is_sent_once(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([NUDGE])
    [effect_id] = pending_effects_of_new_run(h, "nudge")
    _die_in_flight(h, effect_id, sent=False)
    report = reconcile(h.rt)
    assert report.effects == [effect_id]
    assert report.settled == {"pending": 1}
    assert execute_effect(h.rt, effect_id).state is EffectState.DONE
    assert h.deliveries(KEY) == 1


def test_a_sent_in_flight_message_becomes_done_without_being_sent_again(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([NUDGE])
    [effect_id] = pending_effects_of_new_run(h, "nudge")
    _die_in_flight(h, effect_id, sent=True)
    report = reconcile(h.rt)
    assert report.effects == []
    assert h.effect(KEY).state == EffectState.DONE
    assert execute_effect(h.rt, effect_id).state is None
    assert h.deliveries(KEY) == 1


def test_when_nobody_can_tell_the_effect_stays_unknown_and_a_person_is_asked(
    make_harness: MakeHarness,
) -> None:
    handlers = default_handlers().copy()
    handlers.register(MESSAGE_SEND, CannotTell(), replace=True)
    h = make_harness([NUDGE], handlers=handlers)
    [effect_id] = pending_effects_of_new_run(h, "nudge")
    _die_in_flight(h, effect_id, sent=False)
    reconcile(h.rt)
    again = reconcile(h.rt)
    assert again.effects == []
    assert again.settled == {}
    effect = h.effect(KEY)
    assert effect.state == EffectState.UNKNOWN
    with h.db.transaction() as session:
        [item] = list_open(
            session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="front-desk"
        )
    assert item.priority is Priority.URGENT
    assert item.for_ref == "Patient/1"
    assert "will not be sent again" in item.description
    assert effect.work_item_id == item.id
    assert execute_effect(h.rt, effect_id).state is None
    assert h.deliveries(KEY) == 0


def test_a_person_who_confirms_delivery_settles_an_unknown_effect(
    make_harness: MakeHarness,
) -> None:
    handlers = default_handlers().copy()
    handlers.register(MESSAGE_SEND, CannotTell(), replace=True)
    h = make_harness([NUDGE], handlers=handlers)
    [effect_id] = pending_effects_of_new_run(h, "nudge")
    _die_in_flight(h, effect_id, sent=False)
    reconcile(h.rt)
    with h.db.transaction() as session:
        assert settle_by_person(session, effect_id, delivered=True, now=h.clock.now())
    assert h.effect(KEY).state == EffectState.DONE


def test_an_expired_claim_is_released_and_enqueued_again(make_harness: MakeHarness) -> None:
    h = make_harness([NUDGE])
    [effect_id] = pending_effects_of_new_run(h, "nudge")
    with h.db.transaction() as session:
        claim_effect(session, effect_id, owner="dead", now=h.clock.now(), lease_s=LEASE_S)
    h.clock.advance(timedelta(seconds=LEASE_S + 1))
    enqueuer = RecordingEnqueuer()
    tick(h.rt, enqueuer)
    assert enqueuer.effects == [(effect_id, 0.0)]
    assert h.effect(KEY).state == EffectState.PENDING


def test_a_transactional_effect_left_in_flight_is_retried(make_harness: MakeHarness) -> None:
    h = make_harness([ASK])
    [effect_id] = pending_effects_of_new_run(h, "ask")
    now = h.clock.now()
    with h.db.transaction() as session:
        claim_effect(session, effect_id, owner="dead", now=now, lease_s=LEASE_S)
        mark_in_flight(session, effect_id, owner="dead", now=now, lease_s=LEASE_S)
    h.clock.advance(timedelta(seconds=LEASE_S + 1))
    assert reconcile(h.rt).effects == [effect_id]
    assert execute_effect(h.rt, effect_id).state is EffectState.DONE
    with h.db.transaction() as session:
        assert (
            len(
                list_open(
                    session, h.rt.cipher, reader="test-user", now=h.rt.clock.now(), pool="nurse"
                )
            )
            == 1
        )


def test_pending_work_whose_task_was_lost_is_enqueued_again(make_harness: MakeHarness) -> None:
    h = make_harness([NUDGE])
    [effect_id] = pending_effects_of_new_run(h, "nudge")
    early = RecordingEnqueuer()
    tick(h.rt, early)
    assert early.effects == []  # enqueued moments ago: its task is presumably on the queue
    h.clock.advance(timedelta(seconds=31))
    late = RecordingEnqueuer()
    tick(h.rt, late)
    assert late.effects == [(effect_id, 0.0)]
