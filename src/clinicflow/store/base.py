"""Declarative base and column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Fixed constraint names keep Alembic's batch mode (SQLite) and PostgreSQL migrations identical.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC; SQLite hands back naive values, so reading re-attaches UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        # SQLite compares datetimes as text: store them without an offset so ordering is right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: Any,
        dialect: Dialect,  # noqa: ARG002  (TypeDecorator override; every dialect reads the same)
    ) -> datetime | None:
        return stored_instant(value)


def stored_instant(value: datetime | str | None) -> datetime | None:
    """An instant read back from either database as aware UTC.

    SQLite hands back naive text (written as UTC), PostgreSQL an aware datetime; raw driver reads
    (the bulk sync path) use this too, so they agree with the ORM.
    """
    if value is None:
        return None
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


class Base(DeclarativeBase):
    """Every clinicflow table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
