"""Engines and sessions for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from clinicflow.errors import StoreError
from clinicflow.store.checkpoints import DEFAULT_EVERY_S, WalCheckpointer


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; we issue it ourselves so that a
        # write transaction takes the lock up front and two workers cannot both read-then-write.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; BEGIN comes from _sqlite_begin
    cur = dbapi_conn.cursor()
    # Set before the file's first write (a no-op on an existing database): FHIR bodies and their
    # index entries fill 4 KiB pages a few rows at a time; replaying a 50,000-patient first sync's
    # rows took SQLite 7.5-7.9 s with 16 KiB pages against 10.9 s with 4 KiB (docs/benchmarks.md).
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # A bulk sync rewrites many index pages: a 64 MiB page cache and checkpoints every ~40 MiB
    # of WAL (instead of ~4 MiB) halve the time spent flushing them. Memory is used only as needed.
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


READ_CACHE_KIB = -16384  # negative: KiB, as SQLite takes it


def _sqlite_read_only(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=ON")  # a read transaction that tries to write fails
    # The 64 MiB cache is for writers rewriting index pages (a sync); a reader's pages stay in
    # the OS page cache anyway. 16 MiB took ~31 MB off each worker process's peak in the
    # reminders week (two processes: 439 -> 407 MB), at no cost the box could show.
    cur.execute(f"PRAGMA cache_size={READ_CACHE_KIB}")
    cur.close()


def _sqlite_begin_read(conn: Any) -> None:
    # A deferred BEGIN in WAL mode reads one snapshot and takes no write lock, so pages that only
    # read never queue behind writers (or behind each other) for BEGIN IMMEDIATE.
    conn.exec_driver_sql("BEGIN")


def make_read_engine(engine: Engine) -> Engine:
    """For SQLite files, an engine whose transactions only read (snapshot, no write lock)."""
    url = engine.url
    reader = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(reader, "connect", _sqlite_pragmas)
    event.listen(reader, "connect", _sqlite_read_only)
    event.listen(reader, "begin", _sqlite_begin_read)
    return reader


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error. Services never commit."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_reachable(engine: Engine) -> None:
    """Raise StoreError with advice when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise StoreError(
            f"The database at {engine.url.render_as_string(hide_password=True)} does not answer. "
            "Check CLINICFLOW_DATABASE_URL and that the server is running."
        ) from exc


class Database:
    """An engine and its session factory: what services are handed instead of a global."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self._read_sessions: sessionmaker[Session] | None = None
        self._checkpointer: WalCheckpointer | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        """Open the database at `url`."""
        return cls(make_engine(url, **kwargs))

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def transaction(self) -> Any:
        """A context manager for one unit of work (see `transaction`)."""
        return transaction(self.sessions)

    def read(self) -> Any:
        """A context manager for a unit of work that only reads.

        On a SQLite file it runs on a second engine whose connections are `query_only` and begin
        deferred: a snapshot that waits for no writer. Elsewhere (PostgreSQL, where reads never
        wait for the write lock anyway; an in-memory SQLite) it is an ordinary transaction.
        """
        if not self._is_sqlite_file:
            return transaction(self.sessions)
        if self._read_sessions is None:
            self._read_sessions = make_sessionmaker(make_read_engine(self.engine))
        return transaction(self._read_sessions)

    @contextmanager
    def snapshot(self) -> Iterator[Session | None]:
        """A read snapshot apart from the writers (see `read`) on a SQLite file; None elsewhere,
        where a caller reads through its own transaction (PostgreSQL's reads wait for no lock)."""
        if not self._is_sqlite_file:
            yield None
            return
        with self.read() as session:
            yield session

    def start_checkpointer(self, *, every_s: float = DEFAULT_EVERY_S) -> WalCheckpointer | None:
        """For a SQLite file, checkpoint its WAL on a thread of this process (see
        `store.checkpoints`), until `dispose`; None for other databases, which need none."""
        if not self._is_sqlite_file:
            return None
        if self._checkpointer is None:
            path = Path(str(self.engine.url.database))
            self._checkpointer = WalCheckpointer(path, every_s=every_s).start()
        return self._checkpointer

    def forget_connections(self) -> None:
        """In a forked child: drop the pooled connections inherited from the parent, without
        closing them (they are the parent's), for the read engine as well as the main one."""
        for engine in self._engines():
            engine.dispose(close=False)

    @property
    def _is_sqlite_file(self) -> bool:
        """SQLite on a file, not in memory: what read snapshots and checkpoints apply to."""
        return self.dialect == "sqlite" and self.engine.url.database not in (None, "", ":memory:")

    def dispose(self) -> None:
        """Stop the checkpoint thread, if any, and close every pooled connection."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        for engine in self._engines():
            engine.dispose()

    def _engines(self) -> list[Engine]:
        """The main engine, and the read engine once `read` has made it."""
        bind = self._read_sessions.kw.get("bind") if self._read_sessions is not None else None
        return [self.engine, *([bind] if isinstance(bind, Engine) else [])]
