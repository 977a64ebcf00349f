"""Insert-if-absent and compare-and-set on SQLite and PostgreSQL: the engine's two primitives.

Insert-if-absent is behind every idempotency key; compare-and-set behind every lease and state
change that two workers might race for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from clinicflow.store.base import Base
from clinicflow.store.bulk import bulk_insert_ignoring
from clinicflow.store.conflicts import upsert_insert


def _insert_ignoring(
    session: Session, model: type[Base], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> Any:
    # A plain INSERT that hits a unique constraint would abort the whole PostgreSQL transaction
    # (and with it the run that is recording effects); ON CONFLICT DO NOTHING leaves it usable. On
    # PostgreSQL a concurrent insert of the same key waits for the other transaction, then yields.
    return (
        upsert_insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict_on))
    )


def insert_ignoring_many(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    conflict_on: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert the rows whose `conflict_on` columns are not taken yet; the `returning` columns of
    those inserted (in no particular order, as the driver gives them: `stored_instant` reads
    SQLite's instants). Multi-row statements through the driver: compiling a many-row INSERT
    through SQLAlchemy costs more than running it.

    Two transactions inserting overlapping rows in different orders could each wait for the
    other on PostgreSQL; callers sort `rows` by the conflict columns so they wait in one order.
    """
    table: Table = model.__table__  # type: ignore[assignment]
    return bulk_insert_ignoring(session, table, rows, conflict_on=conflict_on, returning=returning)


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


# Bulk UPDATEs by condition: the ORM need not find and refresh matching objects in the session.
NO_SYNC = {"synchronize_session": False}


def mark_enqueued(session: Session, model: type[Base], ids: Sequence[int], now: datetime) -> None:
    """Stamp these rows (effects or runs) `enqueued_at = now`: the reconciler enqueued them."""
    if ids:
        table = model.__table__
        session.execute(
            update(model).where(table.c.id.in_(ids)).values(enqueued_at=now),
            execution_options=NO_SYNC,
        )


def compare_and_set(
    session: Session, model: type[Base], row_id: int, condition: Any, **values: Any
) -> bool:
    """UPDATE row `row_id` of `model` only if `condition` holds; True if this caller changed it."""
    stmt = update(model).where(model.__table__.c.id == row_id, condition).values(**values)
    result = session.execute(stmt, execution_options=NO_SYNC)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult on UPDATE
