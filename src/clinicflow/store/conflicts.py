"""INSERT ... ON CONFLICT, the same on SQLite and PostgreSQL (both dialects have it; SQLAlchemy
spells it per dialect)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["upsert_insert"]


def upsert_insert(session: Session, target: Any) -> Any:
    """An INSERT into `target` (a model or table) that offers `on_conflict_do_nothing/update`."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(target)
