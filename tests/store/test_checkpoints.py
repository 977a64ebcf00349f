"""The WAL checkpoint thread: it copies committed pages into the database file while writers
carry on, so their commits no longer do it, and it stops with the database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from clinicflow.store import Database
from clinicflow.store.checkpoints import WalCheckpointer


def _write_rows(db: Database, n: int) -> None:
    with db.transaction() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)"))
        for i in range(n):
            session.execute(text("INSERT INTO t (v) VALUES (randomblob(4000))"))
            if i % 50 == 49:
                session.commit()


def _wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _wal_left(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames of them already in the database file), without copying."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # NOOP would be ideal; PASSIVE on a fully copied WAL copies nothing and reports it.
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames), int(copied)
    finally:
        conn.close()


def test_commits_leave_checkpoints_to_the_thread_which_copies_every_frame(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'cf.db'}")
    try:
        _write_rows(db, 10)  # creates the file in WAL mode before the thread opens it
        checkpointer = db.start_checkpointer(every_s=0.05)
        assert isinstance(checkpointer, WalCheckpointer)
        _write_rows(db, 400)  # ~400 pages of 16 KiB: far below the autocheckpoint threshold
        _wait_for(lambda: checkpointer.stats.copied >= 100)  # 4 rows a page
        assert checkpointer.stats.failures == 0
        frames, copied = _wal_left(tmp_path / "cf.db")
        assert frames == copied >= 100  # nothing in the WAL is missing from the database file
        assert db.start_checkpointer() is checkpointer  # one thread per database
    finally:
        db.dispose()
    assert not checkpointer._thread.is_alive()


def test_a_writer_is_never_held_up_by_a_checkpoint_in_progress(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'cf.db'}")
    try:
        _write_rows(db, 10)
        checkpointer = db.start_checkpointer(every_s=0.001)  # back to back while we write
        assert checkpointer is not None
        _wait_for(lambda: checkpointer.stats.rounds > 0)
        _write_rows(db, 600)
        with db.transaction() as session:
            assert session.execute(text("SELECT count(*) FROM t")).scalar_one() == 610
        assert checkpointer.stats.rounds > 1  # it kept checkpointing while the rows went in
        assert checkpointer.stats.failures == 0
    finally:
        db.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_gets_no_checkpoint_thread(url: str) -> None:
    db = Database.from_url(url)
    try:
        assert db.start_checkpointer() is None
    finally:
        db.dispose()


def test_a_database_in_a_rollback_journal_is_checkpointed_as_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    try:
        checkpointer = WalCheckpointer(path)
        assert checkpointer.checkpoint_once(conn)
        assert (checkpointer.stats.wal_frames, checkpointer.stats.copied) == (0, 0)
    finally:
        conn.close()
