"""Insert-if-absent on SQLite and PostgreSQL, the primitive behind every idempotency key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from clinicflow.store.base import Base


def _insert_ignoring(
    session: Session, model: type[Base], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> Any:
    # A plain INSERT that hits a unique constraint would abort the whole PostgreSQL transaction
    # (and with it the run that is recording effects); ON CONFLICT DO NOTHING leaves it usable. On
    # PostgreSQL a concurrent insert of the same key waits for the other transaction, then yields.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).values(**values).on_conflict_do_nothing(index_elements=list(conflict_on))


def insert_returning_id(
    session: Session, model: type[Base], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> int | None:
    """Insert a row unless one with the same `conflict_on` columns exists; the new id, or None."""
    stmt = _insert_ignoring(session, model, values, conflict_on).returning(model.__table__.c.id)
    new_id = session.execute(stmt).scalar_one_or_none()
    return None if new_id is None else int(new_id)


def insert_if_absent(
    session: Session, model: type[Base], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert a row unless one with the same `conflict_on` columns exists; True if inserted."""
    column = model.__table__.c[conflict_on[0]]
    stmt = _insert_ignoring(session, model, values, conflict_on).returning(column)
    return session.execute(stmt).first() is not None
