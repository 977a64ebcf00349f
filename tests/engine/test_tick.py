"""The tick on SQLite and PostgreSQL: schedules in the practice's zone, once, however many tick."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from engine_harness import Harness, MakeHarness, RecordingEnqueuer

from clinicflow.engine import (
    Automation,
    DailyHookContext,
    InlineEnqueuer,
    RunContext,
    RunState,
    Schedule,
    list_runs,
    set_switch,
    tick,
)

calls: list[datetime] = []


def _digest(ctx: RunContext) -> None:
    calls.append(ctx.trigger.scheduled_for)


def _scheduled(cron: str) -> Automation:
    return Automation(
        name="digest", summary="", trigger=Schedule(cron), run=_digest, owner="front-desk"
    )


def _tick_every(h: Harness, step: timedelta, until: datetime) -> None:
    while h.clock.now() < until:
        tick(h.rt, InlineEnqueuer(h.rt))
        h.clock.advance(step)


def _scheduled_for(h: Harness) -> list[datetime]:
    with h.db.transaction() as session:
        return sorted(r.scheduled_for for r in list_runs(session))


def test_a_morning_schedule_runs_at_nine_in_new_york_once(make_harness: MakeHarness) -> None:
    calls.clear()
    h = make_harness([_scheduled("0 9 * * *")], start=datetime(2026, 11, 23, 13, 58, tzinfo=UTC))
    _tick_every(h, timedelta(seconds=5), datetime(2026, 11, 23, 14, 3, tzinfo=UTC))
    assert calls == [datetime(2026, 11, 23, 14, 0, tzinfo=UTC)]
    with h.db.transaction() as session:
        [run] = list_runs(session)
    assert run.state is RunState.SUCCEEDED
    assert run.trigger_key == "cron:2026-11-23T14:00Z"


def test_a_schedule_in_the_spring_forward_gap_runs_once_at_three(
    make_harness: MakeHarness,
) -> None:
    start = datetime(2026, 3, 8, 6, 50, tzinfo=UTC)  # 01:50 EST
    h = make_harness([_scheduled("30 2 * * *")], start=start)
    _tick_every(h, timedelta(minutes=4), datetime(2026, 3, 8, 8, 0, tzinfo=UTC))
    assert _scheduled_for(h) == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]  # 03:00 EDT


def test_two_ticks_racing_create_each_run_once(make_harness: MakeHarness) -> None:
    start = datetime(2026, 11, 23, 13, 59, 30, tzinfo=UTC)
    h = make_harness([_scheduled("*/15 * * * *")], start=start)
    tick(h.rt, RecordingEnqueuer())
    h.clock.advance(timedelta(seconds=35))
    barrier = threading.Barrier(2)
    enqueuers = [RecordingEnqueuer(), RecordingEnqueuer()]

    def race(enqueuer: RecordingEnqueuer) -> None:
        barrier.wait()
        tick(h.rt, enqueuer)

    threads = [threading.Thread(target=race, args=(e,)) for e in enqueuers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _scheduled_for(h) == [datetime(2026, 11, 23, 14, 0, tzinfo=UTC)]
    assert sorted(len(e.runs) for e in enqueuers) == [0, 1]


def test_after_downtime_one_run_is_made_for_the_latest_missed_instant(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([_scheduled("*/15 * * * *")])
    tick(h.rt, InlineEnqueuer(h.rt))  # 14:00 is due at once
    h.clock.advance(timedelta(hours=2, minutes=1))
    tick(h.rt, InlineEnqueuer(h.rt))
    assert _scheduled_for(h) == [
        datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 16, 0, tzinfo=UTC),
    ]


def test_a_turned_off_schedule_makes_no_runs_and_no_burst_when_turned_on(
    make_harness: MakeHarness,
) -> None:
    h = make_harness([_scheduled("*/15 * * * *")])
    with h.db.transaction() as session:
        set_switch(session, "digest", actor="test", now=h.clock.now(), enabled=False)
    _tick_every(h, timedelta(minutes=5), h.clock.now() + timedelta(hours=1))
    assert _scheduled_for(h) == []
    with h.db.transaction() as session:
        set_switch(session, "digest", actor="test", now=h.clock.now(), enabled=True)
    _tick_every(h, timedelta(minutes=5), h.clock.now() + timedelta(minutes=16))
    # Instants 14:00-14:45 passed while off and are not made up; 15:00 and 15:15 run.
    assert _scheduled_for(h) == [
        datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 15, 15, tzinfo=UTC),
    ]


def test_daily_hooks_run_once_per_local_day_and_again_after_a_failure(
    make_harness: MakeHarness,
) -> None:
    seen: list[str] = []
    failures = [1]

    def anchor(ctx: DailyHookContext) -> None:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("audit log busy")
        seen.append(ctx.day_on.isoformat())

    h = make_harness()
    rt = h.rt.__class__(
        **{
            **{f: getattr(h.rt, f) for f in h.rt.__dataclass_fields__},
            "daily_hooks": {"anchor": anchor},
        }
    )
    h.clock.set(datetime(2026, 11, 24, 4, 0, tzinfo=UTC))  # 23:00 on the 23rd in New York
    for _ in range(3):
        tick(rt, RecordingEnqueuer())
    h.clock.advance(timedelta(hours=2))  # 01:00 on the 24th
    for _ in range(2):
        tick(rt, RecordingEnqueuer())
    assert seen == ["2026-11-23", "2026-11-24"]


def test_an_idle_tick_writes_only_the_schedule_cursor(make_harness: MakeHarness) -> None:
    from sqlalchemy import event

    hooks: list[str] = []
    h = make_harness(
        [_scheduled("0 9 * * *")],
        start=datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        daily_hooks={"note": lambda ctx: hooks.append(str(ctx.day_on))},
    )
    tick(h.rt, RecordingEnqueuer())  # the first: the cursor is made, the hook runs for today
    assert hooks == ["2026-11-23"]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(h.db.engine, "before_cursor_execute", seen)
    try:
        h.clock.advance(timedelta(seconds=5))
        report = tick(h.rt, RecordingEnqueuer())
    finally:
        event.remove(h.db.engine, "before_cursor_execute", seen)
    assert (report.runs, report.effects, report.hooks) == ([], [], [])
    writes = [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes  # the schedule's cursor moves on (insert if absent, then update) ...
    assert all("schedule_cursors" in s for s in writes)  # ... and nothing else is written
    if h.db.dialect == "sqlite":
        # One write transaction (the cursor's); events, reconciliation and daily hooks were
        # looked up in a read snapshot, which takes no write lock.
        assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    assert hooks == ["2026-11-23"]
