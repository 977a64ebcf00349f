"""Coalescing event runs and chunked transactional effects, on SQLite and PostgreSQL.

An automation with `Event(..., coalesce=True)` gets the events one dispatch finds in one run,
each event in exactly one run; work items opened by one run are opened in one transaction, and
one that cannot be opened is settled alone while the others are kept.
"""

from __future__ import annotations

import json

from engine_harness import MakeHarness
from sqlalchemy import select, update

from clinicflow.engine import (
    Automation,
    EffectState,
    Event,
    Priority,
    RunContext,
    dispatch_events,
    execute_run,
    list_runs,
    record_event,
    work_item_key,
)
from clinicflow.engine.batch import execute_effects
from clinicflow.engine.effects import open_payload
from clinicflow.store.engine import AutomationRun, Effect, WorkItem, effect_payload_aad

handled: list[list[str]] = []


def _sort(ctx: RunContext) -> None:
    handled.append([e.resource_id for e in ctx.trigger.events])
    for event in ctx.trigger.events:
        ctx.effects.open_work_item(
            key=work_item_key("sorter", "message", f"Message/{event.resource_id}"),
            description=f"message {event.resource_id}",
            pool="other",
            priority=Priority.ROUTINE,
        )


SORTER = Automation(
    name="sorter",
    summary="one small job per event",
    trigger=Event("message.received", coalesce=True),
    run=_sort,
    owner="front-desk",
)


def _receive(h, ids: range) -> None:  # type: ignore[no-untyped-def]
    with h.db.transaction() as session:
        for n in ids:
            record_event(
                session,
                event_type="message.received",
                resource_type="Message",
                resource_id=str(n),
                at=h.clock.now(),
            )


def test_events_found_together_go_to_one_run_and_each_event_to_one_run_only(
    make_harness: MakeHarness,
) -> None:
    handled.clear()
    h = make_harness([SORTER])
    _receive(h, range(1, 8))
    with h.db.transaction() as session:
        first = dispatch_events(session, registry=h.rt.registry, now=h.clock.now())
        again = dispatch_events(session, registry=h.rt.registry, now=h.clock.now())
    assert len(first) == 1
    assert again == []
    _receive(h, range(8, 10))
    with h.db.transaction() as session:
        second = dispatch_events(session, registry=h.rt.registry, now=h.clock.now())
    for run_id in [*first, *second]:
        execute_effects(h.rt, execute_run(h.rt, run_id))
    assert handled == [[str(n) for n in range(1, 8)], ["8", "9"]]
    with h.db.transaction() as session:
        runs = session.scalars(select(AutomationRun).order_by(AutomationRun.id)).all()
        items = session.scalars(select(WorkItem)).all()
    assert [len(r.event_ids or []) for r in runs] == [7, 2]
    assert [r.requested_by for r in runs] == [
        "event:message.received +6",
        "event:message.received +1",
    ]
    assert len(items) == 9
    with h.db.transaction() as session:
        assert {r.state for r in list_runs(session, automation="sorter")} == {"succeeded"}


def test_a_work_item_that_cannot_be_opened_is_settled_alone_and_the_rest_are_kept(
    make_harness: MakeHarness,
) -> None:
    handled.clear()
    h = make_harness([SORTER])
    _receive(h, range(1, 6))
    with h.db.transaction() as session:
        (run_id,) = dispatch_events(session, registry=h.rt.registry, now=h.clock.now())
    effects = execute_run(h.rt, run_id)
    assert len(effects) == 5
    # One effect's payload names a priority the engine does not know: its handler raises
    # inside the chunk, which is then done one effect at a time.
    broken = h.effects()[2]
    bad = {**open_payload(h.rt.cipher, broken.key, broken.payload_enc), "priority": "whenever"}
    sealed = h.rt.cipher.encrypt(json.dumps(bad).encode(), effect_payload_aad(broken.key))
    with h.db.transaction() as session:
        session.execute(update(Effect).where(Effect.id == broken.id).values(payload_enc=sealed))
    executions = execute_effects(h.rt, effects)
    states = {e.effect_id: e.state for e in executions}
    assert states[broken.id] is not EffectState.DONE
    assert sum(s is EffectState.DONE for s in states.values()) == 4
    with h.db.transaction() as session:
        assert len(session.scalars(select(WorkItem)).all()) == 4
