"""The migrations: from empty to head on SQLite and PostgreSQL, matching the models, reversible."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from clinicflow.store import make_engine
from clinicflow.store.models import metadata
from clinicflow.store.schema import current_revision, downgrade, head_revision, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    name = "empty_sqlite_url" if request.param == "sqlite" else "empty_pg_url"
    return str(request.getfixturevalue(name))


def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_url):
    engine = make_engine(empty_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    engine.dispose()
    assert diff == []


def test_downgrading_one_step_and_back_up_leaves_the_same_tables(empty_url):
    engine = make_engine(empty_url)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    downgrade(engine, "-1")
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) == tables
    assert {"fhir_resources", "appointments", "effects", "events", "audit_log"} <= tables
    engine.dispose()


def test_the_migrated_audit_log_refuses_updates_and_deletes(empty_url):
    engine = make_engine(empty_url)
    upgrade(engine)
    with engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, actor_kind, actor, action, resources, detail, "
                "prev_hash, row_hash) VALUES (1, '2026-11-23 10:00:00', 'system', 't', 'read', "
                "'[]', '{}', :h, :h)"
            ),
            {"h": "0" * 64},
        )
        conn.commit()
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match=r"append-only|audit"):
                conn.execute(text(statement))
            conn.rollback()
    engine.dispose()
