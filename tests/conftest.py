"""Shared fixtures: real databases on loopback (SQLite files and PostgreSQL), a FakeClock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from clinicflow.clock import FakeClock
from clinicflow.store import Database
from clinicflow.store.schema import create_schema

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"

hypothesis_settings.register_profile("ci", max_examples=50, deadline=None)
hypothesis_settings.load_profile("ci")


def _pg_admin() -> sa.Engine:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(
            "PostgreSQL does not answer on 127.0.0.1:5432. Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
            f"({exc})"
        )
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    admin = _pg_admin()
    name = f"cf_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file in the test's temp dir."""
    return f"sqlite:///{tmp_path / 'clinicflow.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL (contract tests)."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def _database(url: str) -> Iterator[Database]:
    db = Database.from_url(url)
    create_schema(db.engine)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def db(any_db_url: str) -> Iterator[Database]:
    """A migrated database, on SQLite and on PostgreSQL."""
    yield from _database(any_db_url)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database only (for tests that do not touch a database contract)."""
    yield from _database(sqlite_url)


@pytest.fixture
def clock() -> FakeClock:
    """Monday 2026-11-23 14:00 UTC (09:00 in New York)."""
    return FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
