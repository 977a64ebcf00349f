"""Periodic jobs (the EHR sync): one worker at a time, on time, retried soon after a failure,
taken over when a worker dies, and their outcome kept. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta

from clinicflow.clock import FakeClock
from clinicflow.engine.periodic import (
    RETRY_AFTER_FAILURE,
    JobRun,
    Periodic,
    claim,
    job_states,
    run_due,
)
from clinicflow.errors import EhrError
from clinicflow.store import Database

EVERY = timedelta(minutes=15)


def _counting(calls: list[str], name: str = "sync") -> Periodic:
    def run(job: JobRun) -> Mapping[str, object]:
        calls.append(job.name)
        return {"stored": len(calls)}

    return Periodic(name, EVERY, run)


def _state(db: Database, name: str = "sync") -> dict[str, object]:
    with db.transaction() as session:
        return job_states(session)[name]


def test_a_job_runs_once_per_interval_however_many_workers_offer(db: Database, clock: FakeClock):
    calls: list[str] = []
    job = _counting(calls)
    assert run_due(db, clock, [job], owner="w1") == ["sync"]
    assert run_due(db, clock, [job], owner="w2") == []  # not due again yet
    clock.advance(EVERY - timedelta(seconds=1))
    assert run_due(db, clock, [job], owner="w2") == []
    clock.advance(timedelta(seconds=1))
    assert run_due(db, clock, [job], owner="w2") == ["sync"]
    assert calls == ["sync", "sync"]
    state = _state(db)
    assert state["last_success_at"] == clock.now().isoformat()
    assert state["last_error"] is None
    assert state["running"] is False
    assert state["last_summary"] == {"stored": 2}


def test_two_workers_racing_for_a_due_job_run_it_once(db: Database, clock: FakeClock):
    calls: list[str] = []
    job = _counting(calls)
    barrier = threading.Barrier(4)
    won: list[list[str]] = []

    def offer(owner: str) -> None:
        barrier.wait()
        won.append(run_due(db, clock, [job], owner=owner))

    threads = [threading.Thread(target=offer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [[], [], [], ["sync"]]
    assert calls == ["sync"]


def test_a_failed_run_is_kept_with_its_message_and_tried_again_soon(db: Database, clock: FakeClock):
    attempts: list[int] = []

    def flaky(job: JobRun) -> Mapping[str, object]:
        attempts.append(1)
        if len(attempts) == 1:
            raise EhrError("The EHR answered 503 (try later)", status=503, retryable=True)
        return {}

    job = Periodic("sync", timedelta(hours=2), flaky)
    run_due(db, clock, [job], owner="w1")
    state = _state(db)
    assert state["last_error"] == "The EHR answered 503 (try later)"
    assert state["last_success_at"] is None
    clock.advance(RETRY_AFTER_FAILURE - timedelta(seconds=1))
    assert run_due(db, clock, [job], owner="w1") == []  # not hammering a server that is down
    clock.advance(timedelta(seconds=1))
    assert run_due(db, clock, [job], owner="w1") == ["sync"]  # long before the 2-hour interval
    state = _state(db)
    assert state["last_error"] is None
    assert state["last_success_at"] == clock.now().isoformat()


def test_a_bug_in_one_job_does_not_stop_the_next(db: Database, clock: FakeClock):
    calls: list[str] = []

    def broken(job: JobRun) -> Mapping[str, object]:
        raise KeyError("oops")

    ran = run_due(db, clock, [Periodic("broken", EVERY, broken), _counting(calls)], owner="w1")
    assert ran == ["broken", "sync"]
    assert calls == ["sync"]
    assert _state(db, "broken")["last_error"] == "KeyError: 'oops'"


def test_a_dead_workers_lease_runs_out_and_another_takes_over(db: Database, clock: FakeClock):
    calls: list[str] = []
    job = Periodic("sync", timedelta(minutes=5), _counting(calls).run, lease=timedelta(minutes=10))
    with db.transaction() as session:  # w1 claims, then dies without finishing
        assert claim(session, job, owner="w1", now=clock.now())
    assert _state(db)["running"] is True
    clock.advance(timedelta(minutes=6))  # due again, but w1 may still be at work
    assert run_due(db, clock, [job], owner="w2") == []
    clock.advance(timedelta(minutes=4, seconds=1))  # w1's lease has run out
    assert run_due(db, clock, [job], owner="w2") == ["sync"]
    assert calls == ["sync"]
    assert _state(db)["running"] is False


def test_a_long_job_keeps_its_lease_by_renewing_it(db: Database, clock: FakeClock):
    other: list[list[str]] = []

    def long(job: JobRun) -> Mapping[str, object]:
        for _ in range(3):  # 3 x 8 minutes: longer than the 10-minute lease
            clock.advance(timedelta(minutes=8))
            job.renew()
            other.append(run_due(db, clock, [Periodic("sync", EVERY, long)], owner="w2"))
        return {}

    job = Periodic("sync", EVERY, long)
    assert run_due(db, clock, [job], owner="w1") == ["sync"]
    assert other == [[], [], []]  # w2 never took over a job still at work
