"""Tables as gzip'd JSON lines: a consistent dump and a batched load that work on either dialect.

One JSON object per row, in primary-key order. What JSON lacks is written as text and read back by
the column's type: bytes (ciphertexts) as base64, instants as ISO 8601, decimals as strings,
intervals as seconds, enums as the string the database holds. Keys, manifest and audit checks are
`clinicflow.security.backup`'s job; this module only moves rows.
"""

from __future__ import annotations

import base64
import gzip
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Enum,
    String,
    Table,
    create_engine,
    inspect,
    null,
    select,
    text,
    type_coerce,
)
from sqlalchemy.types import TypeDecorator

from clinicflow.store.db import Database

__all__ = ["dump_table", "first_table_with_rows", "load_table", "reset_sequences", "snapshot"]

BATCH_ROWS = 1000


def _encode(value: Any) -> Any:
    """orjson's fallback for values JSON has no type for."""
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot dump a value of type {type(value).__name__}")


_PARSERS: dict[type, Callable[[Any], Any]] = {
    bytes: base64.b64decode,
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    time: time.fromisoformat,
    Decimal: Decimal,
    uuid.UUID: uuid.UUID,
    timedelta: lambda seconds: timedelta(seconds=seconds),
}


def _decoder(column: Column[Any]) -> Callable[[Any], Any]:
    """Turns a dumped value back into what the column binds."""
    if isinstance(column.type, JSON):
        # JSON null and SQL NULL dump alike; a nullable column gets SQL NULL back.
        return lambda v: null() if v is None and column.nullable else v
    kind = column.type
    if isinstance(kind, TypeDecorator):  # e.g. UTCDateTime: what it stores is its impl's type
        kind = kind.impl_instance
    try:
        parse = _PARSERS.get(kind.python_type)
    except NotImplementedError:
        parse = None
    if parse is None:
        return lambda v: v
    return lambda v: None if v is None else parse(v)


@contextmanager
def snapshot(db: Database, scratch: Path) -> Iterator[Connection]:
    """A connection that sees one consistent moment of the database, without blocking writers.

    PostgreSQL: a REPEATABLE READ transaction. SQLite: our transactions take the write lock
    (BEGIN IMMEDIATE), so a long dump inside one would make writers time out; SQLite's online
    backup copies a snapshot into `scratch` (a private folder) instead, removed afterwards.
    """
    if db.dialect != "sqlite":
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
        return
    copy = scratch / "snapshot.sqlite"
    raw = db.engine.raw_connection()
    try:
        target = sqlite3.connect(copy)
        try:
            raw.driver_connection.backup(target)  # type: ignore[union-attr]  # pysqlite connection
        finally:
            target.close()
    finally:
        raw.close()
    os.chmod(copy, 0o600)
    engine = create_engine(f"sqlite:///{copy}")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        copy.unlink()


def dump_table(conn: Connection, table: Table, path: Path) -> int:
    """Write every row of `table` to a new gzip'd JSON-lines file (0600); return the row count."""
    columns = [
        type_coerce(c, String()).label(c.name) if isinstance(c.type, Enum) else c
        for c in table.columns
    ]
    query = select(*columns).order_by(*table.primary_key.columns)
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for row in conn.execution_options(yield_per=BATCH_ROWS).execute(query):
            out.write(orjson.dumps(dict(row._mapping), default=_encode) + b"\n")
            count += 1
        out.flush()
        raw.flush()
        os.fsync(raw.fileno())
    return count


def load_table(
    conn: Connection, table: Table, path: Path, on_rows: Callable[[int], None] | None = None
) -> int:
    """Insert the rows of a `dump_table` file in batches; `on_rows` hears the running total."""
    decoders = {c.name: _decoder(c) for c in table.columns}
    batch: list[dict[str, Any]] = []
    done = 0
    with gzip.open(path, "rb") as lines:
        for line in lines:
            batch.append({k: decoders[k](v) for k, v in orjson.loads(line).items()})
            if len(batch) == BATCH_ROWS:
                conn.execute(table.insert(), batch)
                done, batch = done + len(batch), []
                if on_rows:
                    on_rows(done)
    if batch:
        conn.execute(table.insert(), batch)
        done += len(batch)
    if on_rows:
        on_rows(done)
    return done


def reset_sequences(conn: Connection, tables: Sequence[Table]) -> None:
    """After loading rows with their ids, make PostgreSQL's sequences continue past the highest."""
    if conn.dialect.name != "postgresql":
        return  # SQLite's INTEGER PRIMARY KEY continues from the highest id by itself
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"COALESCE(MAX({quote(column.name)}), 0) + 1, false) FROM {quote(table.name)}"
            ),
            {"table": table.name, "column": column.name},
        )


def first_table_with_rows(db: Database, tables: Sequence[Table]) -> str | None:
    """The name of the first of `tables` that exists and holds a row, or None if all are empty."""
    existing = set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        for table in tables:
            if (
                table.name in existing
                and conn.execute(select(1).select_from(table).limit(1)).first()
            ):
                return table.name
    return None
