"""Bulk inserts through the driver's executemany: the sync hot path.

SQLAlchemy's per-value bind processing costs more than SQLite's own insert when a sync writes
hundreds of thousands of rows, so here the SQL is built once per table and values are converted
only where the driver needs it: UTC instants become the exact text SQLAlchemy's SQLite dialect
stores (so reads through the ORM and comparisons stay consistent), dates become ISO text.
PostgreSQL takes aware datetimes and dates natively.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Engine, Table
from sqlalchemy.orm import Session

from clinicflow.store.base import UTCDateTime


def _sqlite_instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" cut before the offset is exactly SQLAlchemy's SQLite form.
    return value.isoformat(sep=" ", timespec="microseconds")[:26]


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in one executemany."""
    if not rows:
        return
    columns = list(rows[0].keys())
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(marker for _ in columns)})"
    )
    # Column by column, then zip: conversions touch only date and time columns.
    by_column: list[list[Any]] = [[row[c] for row in rows] for c in columns]
    if sqlite:
        for index, column in enumerate(columns):
            kind = table.c[column].type
            convert = (
                _sqlite_instant
                if isinstance(kind, UTCDateTime | DateTime)
                else _sqlite_date
                if isinstance(kind, Date)
                else None
            )
            if convert is not None:
                # Instants repeat (a batch's `now`, shared slot times): convert each value once.
                seen: dict[Any, Any] = {}
                by_column[index] = [
                    seen[v] if v in seen else seen.setdefault(v, convert(v))
                    for v in by_column[index]
                ]
    params = list(zip(*by_column, strict=True))
    conn.exec_driver_sql(sql, params)


@contextmanager
def indexes_built_after(engine: Engine, tables: Sequence[Table]) -> Iterator[None]:
    """Drop the non-unique indexes of `tables`, run the load, then build them again once.

    For a first load into empty tables: maintaining random-keyed indexes row by row rewrites
    their pages at every commit, while one CREATE INDEX at the end sorts each key once. Unique
    indexes stay, because the load itself looks rows up by them. The indexes are rebuilt even if
    the load fails; `ensure_indexes` at the start of the next load repairs a process killed midway.
    """
    dropped = [index for table in tables for index in table.indexes if not index.unique]
    with engine.begin() as conn:
        for index in dropped:
            index.drop(conn, checkfirst=True)
    try:
        yield
    finally:
        ensure_indexes(engine, tables)


def ensure_indexes(engine: Engine, tables: Sequence[Table]) -> None:
    """Create any index of `tables` that is missing (after an interrupted bulk load)."""
    with engine.begin() as conn:
        for table in tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)
