"""The audit chain catches every kind of tampering, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from clinicflow.clock import FakeClock
from clinicflow.security.audit import (
    Actor,
    read_anchors,
    record_access,
    write_head_anchor,
)
from clinicflow.security.audit_verify import BreakKind, VerifyResult, verify_chain, verify_database
from clinicflow.store import Database
from clinicflow.store.audit import audit_log, compute_row_hash, drop_append_only_ddl

Verify = Callable[..., VerifyResult]

ROWS = [
    (Actor.user("alice"), "read", ["Patient/p1"]),
    (Actor.automation("appointment-reminders"), "read", ["Patient/p1", "Appointment/a1"]),
    (Actor.system("sync"), "sync", ["Patient/p2", "Patient/p3"]),
    (Actor.user("bob"), "update", ["Appointment/a1"]),
    (Actor.user("alice"), "export", []),
    (Actor.system("sync"), "sync", ["Patient/p4"]),
]


@pytest.fixture
def chain(db: Database, clock: FakeClock) -> Database:
    """A database whose audit log holds the six ROWS, one transaction each, a minute apart."""
    for number, (actor, action, refs) in enumerate(ROWS, start=1):
        with db.transaction() as session:
            record_access(session, actor, action, refs, at=clock.now(), detail={"n": number})
        clock.advance(timedelta(minutes=1))
    return db


@contextmanager
def attacker(db: Database) -> Iterator[sa.Connection]:
    """What a database admin can do: triggers dropped, foreign keys not enforced."""
    # Plain pysqlite leaves foreign keys off; on PostgreSQL, replica mode skips FK triggers.
    engine = sa.create_engine(db.engine.url) if db.dialect == "sqlite" else db.engine
    try:
        with engine.begin() as conn:
            if db.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for statement in drop_append_only_ddl(db.dialect):
                conn.exec_driver_sql(statement)
            yield conn
    finally:
        if engine is not db.engine:
            engine.dispose()


@pytest.fixture(params=["one transaction", "a transaction per batch"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """verify_chain in the caller's transaction, and verify_database: the same verdicts."""

    def run(db: Database, anchor_dir: Path | None = None, batch_size: int = 2000) -> VerifyResult:
        anchors = read_anchors(anchor_dir) if anchor_dir else []
        if request.param == "a transaction per batch":
            return verify_database(db, anchors, batch_size=batch_size)
        with db.transaction() as session:
            return verify_chain(session, anchors, batch_size=batch_size)

    return run


def rehash(conn: sa.Connection, seq: int, prev_hash: str) -> str:
    """Recompute one row's hash as a careful attacker would, and store it."""
    row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == seq)).one()
    new_hash = compute_row_hash(
        seq=seq,
        at=row.at,
        actor_kind=row.actor_kind,
        actor=row.actor,
        action=row.action,
        resources=row.resources,
        detail=row.detail,
        prev_hash=prev_hash,
    )
    conn.execute(
        audit_log.update()
        .where(audit_log.c.seq == seq)
        .values(prev_hash=prev_hash, row_hash=new_hash)
    )
    return new_hash


def renumber(conn: sa.Connection, from_seq: int, by: int) -> None:
    """Shift every row from `from_seq` on by `by`, going through a far range to dodge uniqueness."""
    far = 1_000_000
    conn.execute(
        audit_log.update().where(audit_log.c.seq >= from_seq).values(seq=audit_log.c.seq + far)
    )
    conn.execute(
        audit_log.update().where(audit_log.c.seq >= far).values(seq=audit_log.c.seq - far + by)
    )


def test_an_untouched_chain_verifies(chain: Database, verify: Verify) -> None:
    result = verify(chain)

    assert result.ok
    assert (result.rows_checked, result.head_seq) == (6, 6)


def test_row_hash_follows_the_documented_canonical_form(chain: Database) -> None:
    with chain.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
    prev = "0" * 64
    for row in rows:
        payload = {
            "seq": row.seq,
            "at": row.at.isoformat(timespec="microseconds"),
            "actor_kind": row.actor_kind,
            "actor": row.actor,
            "action": row.action,
            "resources": row.resources,
            "detail": row.detail,
            "prev_hash": prev,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert row.prev_hash == prev
        assert row.row_hash == hashlib.sha256(text.encode()).hexdigest()
        prev = row.row_hash
    assert rows[0].at.isoformat() == "2026-11-23T14:00:00+00:00"


def test_an_edited_field_is_named_with_its_row(chain: Database, verify: Verify) -> None:
    with attacker(chain) as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(actor="mallory"))

    problem = verify(chain).problem

    assert problem is not None
    assert (problem.seq, problem.kind) == (3, BreakKind.EDITED)
    assert "Row 3 was changed" in problem.message


def test_an_edit_with_a_recomputed_hash_is_caught_by_the_next_row(
    chain: Database, verify: Verify
) -> None:
    with attacker(chain) as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(action="create"))
        prev = conn.execute(sa.select(audit_log.c.row_hash).where(audit_log.c.seq == 2)).scalar()
        rehash(conn, 3, str(prev))

    problem = verify(chain).problem

    assert problem is not None
    assert (problem.seq, problem.kind) == (3, BreakKind.EDITED)
    assert "Row 4 no longer links to row 3" in problem.message


def test_a_deleted_middle_row_shows_as_a_gap(chain: Database, verify: Verify) -> None:
    with attacker(chain) as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 3))

    result = verify(chain)

    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (3, BreakKind.DELETED)
    assert "jumps from row 2 to row 4" in result.problem.message
    assert result.rows_checked == 2


def test_a_deleted_row_is_caught_even_when_later_rows_are_renumbered(
    chain: Database, verify: Verify
) -> None:
    with attacker(chain) as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 3))
        renumber(conn, 4, by=-1)

    problem = verify(chain).problem

    assert problem is not None
    assert (problem.seq, problem.kind) == (3, BreakKind.DELETED)
    assert "row 3 was written as row 4" in problem.message


def test_an_inserted_row_is_caught_even_with_a_valid_hash_of_its_own(
    chain: Database, clock: FakeClock, verify: Verify
) -> None:
    with attacker(chain) as conn:
        renumber(conn, 3, by=1)
        prev = str(
            conn.execute(sa.select(audit_log.c.row_hash).where(audit_log.c.seq == 2)).scalar()
        )
        forged = {
            "seq": 3,
            "at": clock.now(),
            "actor_kind": "user",
            "actor": "alice",
            "action": "read",
            "resources": ["Patient/p9"],
            "detail": {},
            "prev_hash": prev,
        }
        conn.execute(audit_log.insert().values(**forged, row_hash=compute_row_hash(**forged)))

    problem = verify(chain).problem

    assert problem is not None
    assert (problem.seq, problem.kind) == (3, BreakKind.INSERTED)
    assert "row 4 was written as row 3" in problem.message


def test_two_swapped_rows_are_reported_as_reordered(chain: Database, verify: Verify) -> None:
    with attacker(chain) as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(seq=100))
        conn.execute(audit_log.update().where(audit_log.c.seq == 4).values(seq=3))
        conn.execute(audit_log.update().where(audit_log.c.seq == 100).values(seq=4))

    problem = verify(chain).problem

    assert problem is not None
    assert (problem.seq, problem.kind) == (3, BreakKind.REORDERED)
    assert "Rows 3 and 4 were swapped" in problem.message


def test_a_break_after_the_first_batch_is_found(chain: Database, verify: Verify) -> None:
    with attacker(chain) as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 5).values(detail={"n": 50}))

    result = verify(chain, batch_size=2)

    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (5, BreakKind.EDITED)
    assert result.rows_checked == 4


def test_a_cut_tail_passes_the_chain_but_not_the_anchor(
    chain: Database, clock: FakeClock, tmp_path: Path, verify: Verify
) -> None:
    anchors = tmp_path / "audit-anchors"
    with chain.transaction() as session:
        write_head_anchor(session, anchors, clock.now())
    with attacker(chain) as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq >= 5))

    assert verify(chain).ok  # what the chain alone cannot see
    result = verify(chain, anchors)

    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (5, BreakKind.TRUNCATED)
    assert "ends at row 4" in result.problem.message
    assert "rows 5 to 6 were cut" in result.problem.message


def test_a_chain_rebuilt_after_an_edit_differs_from_the_anchor(
    chain: Database, clock: FakeClock, tmp_path: Path, verify: Verify
) -> None:
    anchors = tmp_path / "audit-anchors"
    with chain.transaction() as session:
        write_head_anchor(session, anchors, clock.now())
    with attacker(chain) as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="mallory"))
        prev = str(
            conn.execute(sa.select(audit_log.c.row_hash).where(audit_log.c.seq == 1)).scalar()
        )
        for seq in range(2, 7):
            prev = rehash(conn, seq, prev)

    assert verify(chain).ok
    result = verify(chain, anchors)

    assert result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (6, BreakKind.REWRITTEN)
