"""Events on SQLite and PostgreSQL: recorded with the change, dispatched once to subscribers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_harness import MakeHarness
from sqlalchemy import select

from clinicflow.engine import (
    Automation,
    Event,
    EventInfo,
    InlineEnqueuer,
    Manual,
    RunContext,
    RunState,
    dispatch_events,
    list_runs,
    record_event,
    set_switch,
    tick,
)
from clinicflow.store.engine import Event as EventRow

seen: list[EventInfo] = []


def _waitlist(ctx: RunContext) -> None:
    assert ctx.trigger.event is not None
    seen.append(ctx.trigger.event)


WAITLIST = Automation(
    name="waitlist",
    summary="Offer a cancelled slot",
    trigger=Event("appointment.cancelled"),
    run=_waitlist,
    owner="front-desk",
)


def _nothing(ctx: RunContext) -> None:
    ctx.logger.info("nothing to do")


AUDIT = Automation(
    name="audit-cancel",
    summary="",
    trigger=Event("appointment.cancelled"),
    run=_nothing,
    owner="x",
)
OTHER = Automation(name="other", summary="", trigger=Manual(), run=_nothing, owner="x")


def test_an_event_rolled_back_with_its_change_never_exists(make_harness: MakeHarness) -> None:
    h = make_harness([WAITLIST])

    def cancel_then_fail() -> None:
        with h.db.transaction() as session:
            record_event(
                session,
                event_type="appointment.cancelled",
                resource_type="Appointment",
                resource_id="9",
                at=h.clock.now(),
            )
            raise RuntimeError("the replica upsert failed")

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    with h.db.transaction() as session:
        assert session.scalars(select(EventRow)).all() == []


def test_each_subscriber_gets_one_run_per_event_and_only_once(make_harness: MakeHarness) -> None:
    h = make_harness([WAITLIST, AUDIT, OTHER])
    now = h.clock.now()
    with h.db.transaction() as session:
        record_event(
            session,
            event_type="appointment.cancelled",
            resource_type="Appointment",
            resource_id="9",
            at=now,
            payload={"slot": "2026-11-24T15:30:00Z"},
        )
        record_event(
            session,
            event_type="appointment.booked",
            resource_type="Appointment",
            resource_id="10",
            at=now,
        )
    with h.db.transaction() as session:
        first = dispatch_events(session, registry=h.rt.registry, now=now)
    with h.db.transaction() as session:
        second = dispatch_events(session, registry=h.rt.registry, now=now)
        runs = list_runs(session)
        events = session.scalars(select(EventRow)).all()
    assert len(first) == 2
    assert second == []
    assert sorted(r.automation for r in runs) == ["audit-cancel", "waitlist"]
    assert {r.trigger_key for r in runs} == {f"event:{events[0].id}"}
    assert all(e.dispatched_at == now for e in events)


def test_a_dispatch_that_crashes_before_commit_leaves_the_event_for_the_next_tick(
    make_harness: MakeHarness,
) -> None:
    seen.clear()
    h = make_harness([WAITLIST])
    with h.db.transaction() as session:
        record_event(
            session,
            event_type="appointment.cancelled",
            resource_type="Appointment",
            resource_id="9",
            at=h.clock.now(),
            payload={"slot": "15:30"},
        )

    def dispatch_then_die() -> None:
        with h.db.transaction() as session:
            dispatch_events(session, registry=h.rt.registry, now=h.clock.now())
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        dispatch_then_die()
    h.clock.advance(timedelta(seconds=5))
    report = tick(h.rt, InlineEnqueuer(h.rt))
    assert len(report.runs) == 1
    assert [(e.resource_type, e.resource_id, dict(e.payload)) for e in seen] == [
        ("Appointment", "9", {"slot": "15:30"})
    ]
    with h.db.transaction() as session:
        assert [r.state for r in list_runs(session)] == [RunState.SUCCEEDED]


def test_a_turned_off_automation_gets_no_run_for_an_event(make_harness: MakeHarness) -> None:
    h = make_harness([WAITLIST])
    now = h.clock.now()
    with h.db.transaction() as session:
        set_switch(session, "waitlist", actor="test", now=now, enabled=False)
        record_event(
            session,
            event_type="appointment.cancelled",
            resource_type="Appointment",
            resource_id="9",
            at=now,
        )
    with h.db.transaction() as session:
        assert dispatch_events(session, registry=h.rt.registry, now=now) == []
        assert session.scalars(select(EventRow.dispatched_at)).one() == now
