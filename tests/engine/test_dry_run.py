"""Dry runs on SQLite and PostgreSQL: effects recorded as what would have happened, none sent."""

from __future__ import annotations

from engine_harness import MakeHarness

from clinicflow.engine import (
    Automation,
    EffectState,
    Manual,
    RunContext,
    RunState,
    Unit,
    list_open,
    message_key,
    set_switch,
    work_item_key,
)

KEY = message_key("confirm", "Patient/1", "48h")


def _confirm(ctx: RunContext) -> None:
    ctx.effects.send_message(key=KEY, channel="email", to="j@example.org", body="Confirm?")
    ctx.effects.open_work_item(
        key=work_item_key("confirm", "no-email", "Patient/2"), description="x"
    )
    ctx.count("confirmation_sent")


CONFIRM = Automation(
    name="confirm",
    summary="",
    trigger=Manual(),
    run=_confirm,
    owner="front-desk",
    units=(Unit("confirmation_sent", minutes_saved=2.0),),
)


def test_a_dry_run_sends_and_opens_nothing(make_harness: MakeHarness) -> None:
    h = make_harness([CONFIRM])
    outcome = h.run("confirm", dry_run=True)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.dry_run
    assert outcome.effects == {"dry_run": 2}
    assert h.deliveries(KEY) == 0
    with h.db.transaction() as session:
        assert list_open(session, h.rt.cipher, reader="test-user", now=h.rt.clock.now()) == []


def test_an_automation_switched_to_dry_run_stays_dry_until_switched_back(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([CONFIRM])
    with h.db.transaction() as session:
        set_switch(session, "confirm", actor="test", now=h.clock.now(), dry_run=True)
    dry = h.run("confirm")
    assert dry.dry_run
    assert dry.effects == {"dry_run": 2}
    assert h.deliveries(KEY) == 0
    with h.db.transaction() as session:
        set_switch(session, "confirm", actor="test", now=h.clock.now(), dry_run=False)
    live = h.run("confirm")
    assert not live.dry_run
    assert live.effects == {"done": 2}
    assert h.effect(KEY).state == EffectState.DONE
    assert h.deliveries(KEY) == 1
