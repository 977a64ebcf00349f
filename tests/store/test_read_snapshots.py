"""`Database.read()` / `snapshot()` on a SQLite file: a snapshot that cannot write and holds no
write lock, with a smaller page cache than the writers'."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from clinicflow.store import Database
from clinicflow.store.db import READ_CACHE_KIB


def test_a_read_snapshot_holds_no_write_lock_and_cannot_write(sqlite_db: Database) -> None:
    database = sqlite_db.engine.url.database
    assert database
    with sqlite_db.snapshot() as reads:
        assert reads is not None
        assert reads.execute(text("SELECT count(*) FROM patients")).scalar() == 0
        # Another connection that may not wait at all takes the write lock meanwhile.
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        with pytest.raises(OperationalError, match="readonly"):
            reads.execute(text("DELETE FROM patients"))


def test_readers_keep_a_smaller_page_cache_than_writers(sqlite_db: Database) -> None:
    with sqlite_db.read() as reads:
        assert reads.execute(text("PRAGMA cache_size")).scalar() == READ_CACHE_KIB
    with sqlite_db.transaction() as writes:
        assert writes.execute(text("PRAGMA cache_size")).scalar() == -65536


def test_elsewhere_a_snapshot_is_the_callers_own_transaction(pg_url: str) -> None:
    db = Database.from_url(pg_url)
    try:
        with db.snapshot() as reads:
            assert reads is None
    finally:
        db.dispose()
