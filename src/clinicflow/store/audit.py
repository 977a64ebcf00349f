"""The audit log's tables: an append-only hash chain of PHI accesses, and a lookup by resource.

Each `audit_log` row carries the SHA-256 of its own canonical form and the hash of the row before
it, so an edited, removed, inserted or reordered row breaks the chain (`security.audit`).
The canonical form is fixed forever, so that anyone can re-check the chain with a short script:
UTF-8 of `json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` where
payload has the keys seq, at (ISO 8601 UTC with microseconds: 2026-11-23T14:00:00.000000+00:00),
actor_kind, actor, action, resources, detail and prev_hash; the first row's prev_hash is 64 zeros.

`audit_resource` repeats each row's resources as (ref, seq) pairs. The chain covers the JSON list in
`audit_log`; the companion table exists so that "who touched Patient/123" is an index range scan on
both SQLite and PostgreSQL (a GIN index on JSONB would serve PostgreSQL only).

Both tables refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) through triggers. The triggers are
installed when `create_all` makes the tables, and the migration that creates the tables must run
`append_only_ddl(dialect)`. SQLite's Alembic batch mode rebuilds a table on ALTER and drops its
triggers: a batch migration of either table must run `append_only_ddl` again afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.store.base import Base, UTCDateTime

GENESIS_HASH = "0" * 64
REF_MAX = 200  # "Type/id": a type name (at most 64) and an id (at most 128)

SeqType = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")


class ActorKind(StrEnum):
    """Who acted: a signed-in person, an automation, or clinicflow itself (sync, backup...)."""

    USER = "user"
    AUTOMATION = "automation"
    SYSTEM = "system"


class AuditLog(Base):
    """One access to PHI: who, what action, which resources (ids only), chained by hash."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("actor_kind IN ('user', 'automation', 'system')", name="actor_kind"),
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    # Assigned by `record_access` under a lock, never by the database: the chain needs no gaps.
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    resources: Mapped[list[str]] = mapped_column(JsonType)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditResource(Base):
    """One resource named by one audit row; the primary key (ref, seq) is the lookup by resource."""

    __tablename__ = "audit_resource"

    ref: Mapped[str] = mapped_column(String(REF_MAX), primary_key=True)
    seq: Mapped[int] = mapped_column(SeqType, ForeignKey("audit_log.seq"), primary_key=True)


class AuditIndexMark(Base):
    """How far the deferred index has been built: rows up to `seq` are in `audit_resource`.

    A list view (the Today board names hundreds of patients) writes its audit row at once and
    leaves its index rows to `catch_up_audit_index`, which adds many views' rows in one sorted
    batch; a search by patient catches up first, so it is always exact.
    """

    __tablename__ = "audit_index_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(SeqType)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):  # always true for a declarative model; narrows the type
        raise TypeError(f"{model.__name__} is not mapped to a Table")
    return table


audit_log = _table(AuditLog)
audit_resource = _table(AuditResource)
AUDIT_TABLES = ("audit_log", "audit_resource")


def canonical_json(value: Any) -> str:
    """The one serialization the chain hashes: sorted keys, no spaces, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def compute_row_hash(
    *,
    seq: int,
    at: datetime,
    actor_kind: str,
    actor: str,
    action: str,
    resources: Sequence[str],
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of a row's canonical form, as described in this module's docstring."""
    payload = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_kind": actor_kind,
        "actor": actor,
        "action": action,
        "resources": list(resources),
        "detail": dict(detail),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


# No '%' and no ':' in these statements: drivers and Alembic's op.execute() (text()) would read
# them as parameter markers.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION clinicflow_refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = TG_TABLE_NAME || ' is append-only, ' || TG_OP || ' refused';
END
$$
"""


def _table_ddl(dialect_name: str, table: str) -> list[str]:
    if dialect_name == "postgresql":
        return [
            _PG_FUNCTION.strip(),
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION clinicflow_refuse_audit_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION clinicflow_refuse_audit_change()",
        ]
    if dialect_name == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only, {op} refused'); END"
            for op in ("UPDATE", "DELETE")
        ]
    raise ValueError(f"no append-only triggers written for the {dialect_name!r} dialect")


def append_only_ddl(dialect_name: str) -> list[str]:
    """Statements making audit_log and audit_resource refuse UPDATE and DELETE (for migrations)."""
    statements: list[str] = []
    for table in AUDIT_TABLES:
        statements += [s for s in _table_ddl(dialect_name, table) if s not in statements]
    return statements


def drop_append_only_ddl(dialect_name: str) -> list[str]:
    """Statements that remove those triggers (for a downgrade, or a test playing an attacker)."""
    if dialect_name == "postgresql":
        drops = [
            f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}"
            for table in AUDIT_TABLES
            for name in ("append_only", "no_truncate")
        ]
        return [*drops, "DROP FUNCTION IF EXISTS clinicflow_refuse_audit_change()"]
    if dialect_name == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{op}"
            for table in AUDIT_TABLES
            for op in ("update", "delete")
        ]
    raise ValueError(f"no append-only triggers written for the {dialect_name!r} dialect")


def _install_append_only(target: Table, connection: Connection, **_: Any) -> None:
    """`after_create` hook, so that create_all (tests, the interim schema) gets the triggers too."""
    if connection.dialect.name in ("postgresql", "sqlite"):
        for statement in _table_ddl(connection.dialect.name, target.name):
            connection.exec_driver_sql(statement)


event.listen(audit_log, "after_create", _install_append_only)
event.listen(audit_resource, "after_create", _install_append_only)
