"""Appending to the audit log: what it takes, what the database refuses, concurrent writers."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
import sqlalchemy as sa

from clinicflow.clock import FakeClock
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, ActorKind, record_access
from clinicflow.security.audit_verify import verify_chain
from clinicflow.store import Database
from clinicflow.store.audit import (
    append_only_ddl,
    audit_log,
    audit_resource,
    drop_append_only_ddl,
)


def test_rows_are_numbered_from_one_and_name_actor_action_and_resources(
    db: Database, clock: FakeClock
) -> None:
    with db.transaction() as session:
        first = record_access(session, Actor.user("alice"), "read", ["Patient/p1"], at=clock.now())
        second = record_access(
            session, Actor.automation("daily-digest"), "read", [], at=clock.now(), detail={"n": 2}
        )

    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
    assert (first, second) == (1, 2)
    assert [(r.actor_kind, r.actor, r.action) for r in rows] == [
        ("user", "alice", "read"),
        ("automation", "daily-digest", "read"),
    ]
    assert rows[0].resources == ["Patient/p1"]
    assert (rows[0].detail, rows[1].detail) == ({}, {"n": 2})
    assert rows[0].at == clock.now()


def test_who_touched_a_patient_is_one_indexed_query(db: Database, clock: FakeClock) -> None:
    with db.transaction() as session:
        record_access(session, Actor.user("alice"), "read", ["Patient/p1"], at=clock.now())
        record_access(session, Actor.user("bob"), "read", ["Patient/p2"], at=clock.now())
        record_access(
            session, Actor.system("sync"), "sync", ["Patient/p1", "Patient/p1"], at=clock.now()
        )

    query = (
        sa.select(audit_log.c.actor)
        .join(audit_resource, audit_resource.c.seq == audit_log.c.seq)
        .where(audit_resource.c.ref == "Patient/p1")
        .order_by(audit_log.c.seq)
    )
    with db.engine.connect() as conn:
        assert conn.execute(query).scalars().all() == ["alice", "sync"]
        # The same resource named twice in one batch is stored once.
        assert conn.execute(
            sa.select(audit_log.c.resources).where(audit_log.c.seq == 3)
        ).scalar() == ["Patient/p1"]


@pytest.mark.parametrize(
    "resources",
    [["Patient/John Smith"], ["patient/p1"], ["p1"], "Patient/p1"],
    ids=["a name", "lowercase type", "no type", "a bare string"],
)
def test_references_that_could_carry_names_are_refused(
    sqlite_db: Database, clock: FakeClock, resources: list[str]
) -> None:
    with sqlite_db.transaction() as session, pytest.raises(InputError) as caught:
        record_access(session, Actor.user("alice"), "read", resources, at=clock.now())
    assert caught.value.code == "audit.resources"


def test_large_detail_naive_instants_and_odd_actions_are_refused(
    sqlite_db: Database, clock: FakeClock
) -> None:
    alice = Actor.user("alice")
    with sqlite_db.transaction() as session:
        with pytest.raises(InputError, match="over 4096 bytes"):
            record_access(session, alice, "read", [], at=clock.now(), detail={"x": "y" * 5000})
        with pytest.raises(InputError, match="aware"):
            record_access(session, alice, "read", [], at=datetime(2026, 11, 23, 14))  # noqa: DTZ001  (the point of the test)
        with pytest.raises(InputError, match="lowercase word"):
            record_access(session, alice, "Read everything", [], at=clock.now())
    with pytest.raises(InputError):
        Actor.user("")


def test_actors_say_what_kind_they_are() -> None:
    assert Actor.user("alice").kind is ActorKind.USER
    assert Actor.automation("daily-digest").kind is ActorKind.AUTOMATION
    assert Actor.system("sync") == Actor(ActorKind.SYSTEM, "sync")


def test_update_delete_are_refused_by_the_database(db: Database, clock: FakeClock) -> None:
    with db.transaction() as session:
        record_access(session, Actor.user("alice"), "read", ["Patient/p1"], at=clock.now())

    statements = [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "UPDATE audit_resource SET ref = 'Patient/p2'",
        "DELETE FROM audit_resource",
    ]
    if db.dialect == "postgresql":
        statements.append("TRUNCATE audit_log CASCADE")
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with db.transaction() as session:
        assert verify_chain(session).rows_checked == 1


def test_concurrent_appenders_keep_one_unbroken_chain(db: Database, clock: FakeClock) -> None:
    threads, rows_each = 6, 15
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        start.wait()
        try:
            for n in range(rows_each):
                with db.transaction() as session:
                    record_access(
                        session,
                        Actor.automation(f"worker-{worker}"),
                        "read",
                        [f"Patient/w{worker}-{n}"],
                        at=clock.now(),
                    )
        except BaseException as exc:  # noqa: BLE001  (reported to the main thread below)
            failures.append(exc)

    workers = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert failures == []
    with db.transaction() as session:
        result = verify_chain(session)
    assert result.ok
    assert result.head_seq == threads * rows_each


def test_a_sync_sized_batch_costs_far_less_than_a_millisecond_per_resource(
    db: Database, clock: FakeClock
) -> None:
    refs = [f"Patient/p{n}" for n in range(5000)]
    with db.transaction() as session:  # warm the connection and the statement cache
        record_access(session, Actor.system("sync"), "sync", refs[:10], at=clock.now())

    started = time.perf_counter()
    with db.transaction() as session:
        record_access(session, Actor.system("sync"), "sync", refs, at=clock.now())
    elapsed_ms = (time.perf_counter() - started) * 1000

    with db.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).select_from(audit_resource).where(audit_resource.c.seq == 2)
        ).scalar()
    assert stored == 5000
    # About 0.02 ms per resource on our 2-core machines; the bound leaves room for a busy CI box.
    assert elapsed_ms / len(refs) < 0.25


def test_the_migration_ddl_removes_and_reinstalls_the_triggers(
    db: Database, clock: FakeClock
) -> None:
    with db.transaction() as session:
        record_access(session, Actor.user("alice"), "read", ["Patient/p1"], at=clock.now())
    # Alembic's op.execute(str) wraps the statement in text(): run them the same way.
    with db.engine.begin() as conn:
        for statement in drop_append_only_ddl(db.dialect):
            conn.execute(sa.text(statement))
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET action = 'update'"))
        for statement in append_only_ddl(db.dialect):
            conn.execute(sa.text(statement))

    with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))
