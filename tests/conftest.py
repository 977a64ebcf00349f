"""Shared fixtures: real databases on loopback (SQLite files and PostgreSQL), a FakeClock."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from clinicflow.clock import FakeClock
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.store import Database, make_engine
from clinicflow.store.schema import create_schema

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"

hypothesis_settings.register_profile("ci", max_examples=50, deadline=None)
hypothesis_settings.load_profile("ci")

TRIAGE_MODEL_DIR = "CLINICFLOW_TRIAGE_MODEL_DIR"


@pytest.fixture(scope="session", autouse=True)
def shared_triage_models(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One triage model directory for the whole run, every xdist worker and every clinicflow
    process the tests start (`embedded_env` passes it on). Training the model takes ~15-25 s;
    without this, each test whose worker triages a reply trained it again in its fresh data dir.
    The file name is a digest of everything the model depends on, and it is written whole then
    renamed, so processes racing to train it are harmless. Per run, never reused by the next:
    a change to the training code must be trained afresh. The tests that show a fresh install
    trains its own model opt out (`embedded_env(..., shared_models=False)`)."""
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # xdist: the run's shared folder
    path = root / "triage-models"
    os.environ[TRIAGE_MODEL_DIR] = str(path)
    return path


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


def _create_database(admin: sa.Engine, template: str | None = None) -> str:
    name = f"cf_test_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
    return name


def _drop_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_url_for(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per test process, copied for each test."""
    admin = _pg_admin()
    name = _create_database(admin)
    engine = make_engine(_pg_url_for(name))
    create_schema(engine)
    engine.dispose()
    yield name
    _drop_database(admin, name)
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "clinicflow.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the main file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database at the current schema, dropped afterwards."""
    admin = _pg_admin()
    name = _create_database(admin, template=pg_template)
    try:
        yield _pg_url_for(name)
    finally:
        _drop_database(admin, name)
        admin.dispose()


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no tables), dropped afterwards."""
    admin = _pg_admin()
    name = _create_database(admin)
    try:
        yield _pg_url_for(name)
    finally:
        _drop_database(admin, name)
        admin.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite file at the current schema, in the test's temp dir."""
    target = tmp_path / "clinicflow.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL (contract tests)."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def _database(url: str) -> Iterator[Database]:
    db = Database.from_url(url)
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


@pytest.fixture
def cipher() -> PhiCipher:
    """A cipher with a fresh random keyring."""
    return PhiCipher(Keyring.generate())
