"""Bulk inserts through the driver's executemany: the sync hot path.

SQLAlchemy's per-value bind processing costs more than SQLite's own insert when a sync writes
hundreds of thousands of rows, so here the SQL is built once per table and values are converted
only where the driver needs it: UTC instants become the exact text SQLAlchemy's SQLite dialect
stores (so reads through the ORM and comparisons stay consistent), dates become ISO text.
PostgreSQL takes aware datetimes and dates natively.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
    marker = "?" if conn.dialect.name == "sqlite" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(marker for _ in columns)})"
    )
    conn.exec_driver_sql(sql, _driver_rows(conn.dialect.name, table, columns, rows))


def bulk_insert_ignoring(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_on: Sequence[str],
    returning: Sequence[str] = (),
    update: Sequence[str] = (),
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """Insert the rows whose `conflict_on` columns are free, in multi-row statements of `chunk`
    rows; with `update`, rows that conflict have those columns overwritten instead (an upsert).

    Returns the `returning` columns of the rows written, as the driver hands them back (SQLite
    gives instants as text: `stored_instant` reads them). Callers that may race another
    transaction on PostgreSQL sort `rows` by `conflict_on`, so both wait in the same order.
    """
    if not rows:
        return []
    columns = list(rows[0].keys())
    conn = session.connection()
    dialect = conn.dialect.name
    marker = "?" if dialect == "sqlite" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    one_row = f"({', '.join(marker for _ in columns)})"
    if update:
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
        on_conflict = f"DO UPDATE SET {sets}"
    else:
        on_conflict = "DO NOTHING"
    tail = f" RETURNING {', '.join(quote(c) for c in returning)}" if returning else ""
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), chunk):
        part = _driver_rows(dialect, table, columns, rows[start : start + chunk])
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES {', '.join(one_row for _ in part)} "
            f"ON CONFLICT ({', '.join(quote(c) for c in conflict_on)}) {on_conflict}{tail}"
        )
        result = conn.exec_driver_sql(sql, tuple(v for row in part for v in row))
        if returning:
            out.extend(tuple(row) for row in result)
    return out


def _driver_rows(
    dialect: str, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them (SQLite: instants and dates as SQLAlchemy's text)."""
    # Column by column, then zip: conversions touch only date and time columns.
    by_column: list[list[Any]] = [[row[c] for row in rows] for c in columns]
    if dialect == "sqlite":
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
    return list(zip(*by_column, strict=True))


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
