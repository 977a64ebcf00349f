"""Audit log service: append who touched which PHI, and anchor the chain's head outside.

The table and the chain's canonical form are in `clinicflow.store.audit`; verifying the chain is in
`clinicflow.security.audit_verify`. A chain without a secret can be rebuilt whole by someone who
rewrites every row after the one they changed; the daily head anchors written outside the database
(`write_head_anchor`) are what catch that, and a cut tail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from clinicflow.errors import InputError, SecurityError
from clinicflow.store.audit import (
    GENESIS_HASH,
    ActorKind,
    AuditIndexMark,
    audit_log,
    audit_resource,
    canonical_json,
    compute_row_hash,
)
from clinicflow.store.bulk import bulk_insert
from clinicflow.store.conflicts import upsert_insert

__all__ = [
    "ANCHOR_DIR_NAME",
    "Actor",
    "ActorKind",
    "HeadAnchor",
    "anchor_dir_for",
    "auditable",
    "catch_up_audit_index",
    "is_anchor_due",
    "read_anchors",
    "record_access",
    "write_head_anchor",
]

# Every appender on PostgreSQL takes this transaction-scoped advisory lock before reading the head,
# so two transactions can never both append seq N. (SQLite: BEGIN IMMEDIATE already serializes.)
AUDIT_LOCK_KEY = 0x636C_6661_7564_6974  # "clfaudit"
ANCHOR_DIR_NAME = "audit-anchors"
INDEX_LATER = "index_later"  # detail key of a row whose index rows are built by the catch-up
INDEX_MARK = "audit_resource"
DETAIL_MAX_BYTES = 4096

# Built once: building a statement per call costs more than executing it (cache-key generation).
_HEAD = select(audit_log.c.seq, audit_log.c.row_hash).order_by(audit_log.c.seq.desc()).limit(1)
_INSERT_ROW = insert(audit_log)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")

_REF = re.compile(r"[A-Z][A-Za-z0-9]{0,63}/[A-Za-z0-9\-.:_]{1,128}")
_ACTION = re.compile(r"[a-z][a-z0-9-]{0,31}")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who touched PHI: a username or an automation's name, never a patient's data."""

    kind: ActorKind
    name: str

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= 128 or not self.name.isprintable():
            raise InputError(
                "An audit actor's name must be 1 to 128 printable characters.",
                where=f"actor {self.name[:40]!r}",
                code="audit.actor",
            )

    @classmethod
    def user(cls, username: str) -> Actor:
        """A signed-in person."""
        return cls(ActorKind.USER, username)

    @classmethod
    def automation(cls, name: str) -> Actor:
        """An automation, by its registered name."""
        return cls(ActorKind.AUTOMATION, name)

    @classmethod
    def system(cls, name: str) -> Actor:
        """clinicflow itself: sync, key rotation, backup, restore."""
        return cls(ActorKind.SYSTEM, name)

    @classmethod
    def from_label(cls, label: str) -> Actor:
        """An actor from the engine's `automation:NAME` / `system:NAME` labels; else a user."""
        kind, _, name = label.partition(":")
        if name and kind == "automation":
            return cls.automation(name)
        if name and kind == "system":
            return cls.system(name)
        return cls.user(label)


def auditable(refs: Iterable[str | None]) -> list[str]:
    """The references an audit row can name (`Type/id`); others, such as a contained `#id` or an
    empty focus, are left out rather than failing the work that is being audited."""
    return [ref for ref in refs if ref and _REF.fullmatch(ref)]


def _checked_refs(resources: Sequence[str]) -> list[str]:
    if isinstance(resources, str):
        raise InputError("Pass a list of references, not one string.", code="audit.resources")
    refs = list(dict.fromkeys(resources))  # a batch may name a resource twice; keep it once
    for ref in refs:
        if not _REF.fullmatch(ref):
            raise InputError(
                "An audit reference must look like Type/id (ids only, never names).",
                where=f"reference {ref[:80]!r}",
                code="audit.resources",
            )
    return refs


def _checked_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        encoded = canonical_json(dict(detail or {}))
    except (TypeError, ValueError) as exc:
        raise InputError(f"Audit detail must be plain JSON: {exc}", code="audit.detail") from exc
    if len(encoded.encode()) > DETAIL_MAX_BYTES:
        raise InputError(
            f"Audit detail is over {DETAIL_MAX_BYTES} bytes; keep it to counts and ids.",
            code="audit.detail",
        )
    # Store exactly what was hashed (tuples become lists, and so on).
    parsed: dict[str, Any] = json.loads(encoded)
    return parsed


def record_access(
    session: Session,
    actor: Actor,
    action: str,
    resources: Sequence[str],
    *,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
    index: Sequence[str] | None = None,
    index_later: bool = False,
) -> int:
    """Append one audit row in the caller's transaction and return its seq; never commits.

    The row names every resource in `resources` (and its hash covers them). `audit_resource`
    indexes the row under `index` when given, else under every resource: a bulk sync passes the
    patients whose data it wrote, so "who touched this patient" stays an index lookup without one
    index entry per resource on the ingest hot path.

    With `index_later` (a list view naming hundreds of patients, a reminder run's contact read, a
    sandbox batch's send), the row is marked and indexed under its `Patient/` references by
    `catch_up_audit_index` instead, many rows in one sorted batch: each view's own index rows
    rewrote ~500 random index pages (8 MB of WAL per Today view).

    Appending holds a lock until the caller's transaction ends (PostgreSQL advisory lock; SQLite's
    write lock), so call it late in the transaction. It relies on READ COMMITTED on PostgreSQL
    (the default): under REPEATABLE READ the head read after the lock could be stale.
    """
    if not _ACTION.fullmatch(action):
        raise InputError(
            "An audit action is a short lowercase word such as read, update or sync.",
            where=f"action {action[:40]!r}",
            code="audit.action",
        )
    if at.tzinfo is None:
        raise InputError("An audit instant must be an aware datetime.", code="audit.at")
    refs = _checked_refs(resources)
    clean_detail = _checked_detail({**(detail or {}), INDEX_LATER: True} if index_later else detail)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"key": AUDIT_LOCK_KEY})
    head = conn.execute(_HEAD).first()
    seq, prev_hash = (head.seq + 1, head.row_hash) if head else (1, GENESIS_HASH)
    at_utc, kind = at.astimezone(UTC), str(actor.kind)
    row_hash = compute_row_hash(
        seq=seq,
        at=at_utc,
        actor_kind=kind,
        actor=actor.name,
        action=action,
        resources=refs,
        detail=clean_detail,
        prev_hash=prev_hash,
    )
    row = {
        "seq": seq,
        "at": at_utc,
        "actor_kind": kind,
        "actor": actor.name,
        "action": action,
        "resources": refs,
        "detail": clean_detail,
        "prev_hash": prev_hash,
        "row_hash": row_hash,
    }
    conn.execute(_INSERT_ROW, row)
    indexed = [] if index_later else refs if index is None else _checked_refs(index)
    if indexed:
        # One executemany through the driver: a sync batch indexes thousands of patients.
        bulk_insert(session, audit_resource, [{"ref": ref, "seq": seq} for ref in indexed])
    return seq


def _ensure_mark(session: Session) -> None:
    session.execute(
        upsert_insert(session, AuditIndexMark)
        .values(name=INDEX_MARK, seq=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def catch_up_audit_index(session: Session, *, batch: int = 5000) -> int:
    """Index the rows written with `index_later` since the last catch-up; how many rows it read.

    Idempotent and safe to race: the mark row is locked (SQLite: the write transaction already
    is), read, advanced and the index rows inserted in one transaction.
    """
    _ensure_mark(session)
    mark = session.scalar(
        select(AuditIndexMark.seq).where(AuditIndexMark.name == INDEX_MARK).with_for_update()
    )
    last = int(mark or 0)
    read = 0
    while True:
        rows = session.execute(
            select(audit_log.c.seq, audit_log.c.resources, audit_log.c.detail)
            .where(audit_log.c.seq > last)
            .order_by(audit_log.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        pairs = sorted(
            (ref, row.seq)
            for row in rows
            if (row.detail or {}).get(INDEX_LATER)
            for ref in row.resources
            if ref.startswith("Patient/")
        )
        if pairs:
            bulk_insert(session, audit_resource, [{"ref": r, "seq": q} for r, q in pairs])
        last = rows[-1].seq
        read += len(rows)
    session.execute(
        update(AuditIndexMark).where(AuditIndexMark.name == INDEX_MARK).values(seq=last)
    )
    return read


# -- head anchors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeadAnchor:
    """The chain's head as saved outside the database at `written_at` (seq 0: an empty log)."""

    seq: int
    row_hash: str
    written_at: datetime


def anchor_dir_for(data_dir: Path) -> Path:
    """Where the daily head anchors live under the data dir."""
    return data_dir / ANCHOR_DIR_NAME


def _anchor_path(anchor_dir: Path, now: datetime) -> Path:
    return anchor_dir / f"{now.astimezone(UTC):%Y-%m-%d}.jsonl"


def is_anchor_due(anchor_dir: Path, now: datetime) -> bool:
    """True when no head anchor has been written yet for `now`'s UTC day."""
    return not _anchor_path(anchor_dir, now).exists()


def write_head_anchor(session: Session, anchor_dir: Path, now: datetime) -> Path:
    """Append the current head (seq, hash) to today's anchor file (0600) and return the file.

    Use a transaction that has not itself appended audit rows: an anchor of a row that is later
    rolled back would be reported as a cut tail.
    """
    head = session.connection().execute(_HEAD).first()
    line = {
        "seq": head.seq if head else 0,
        "row_hash": head.row_hash if head else GENESIS_HASH,
        "written_at": now.astimezone(UTC).isoformat(),
    }
    anchor_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _anchor_path(anchor_dir, now)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)
    return path


def read_anchors(anchor_dir: Path) -> list[HeadAnchor]:
    """Every head anchor in `anchor_dir` (none if it does not exist), oldest first."""
    anchors: list[HeadAnchor] = []
    for path in sorted(anchor_dir.glob("*.jsonl")) if anchor_dir.is_dir() else []:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                anchors.append(
                    HeadAnchor(
                        seq=int(data["seq"]),
                        row_hash=str(data["row_hash"]),
                        written_at=datetime.fromisoformat(data["written_at"]),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise SecurityError(
                    f"The audit anchor file {path}, line {number}, cannot be read ({exc}). "
                    "Anchor files are only ever appended to: restore it from a backup.",
                    code="audit.anchor_unreadable",
                ) from exc
    return sorted(anchors, key=lambda a: (a.seq, a.written_at))
