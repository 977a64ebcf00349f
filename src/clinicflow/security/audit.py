"""Audit log service: append who touched which PHI, verify the hash chain, anchor its head outside.

The table and the chain's canonical form are in `clinicflow.store.audit`. A chain without a secret
can be rebuilt whole by someone who rewrites every row after the one they changed; the daily head
anchors written outside the database (`write_head_anchor`) are what catch that, and a cut tail.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, insert, select, text
from sqlalchemy.orm import Session

from clinicflow.errors import InputError, SecurityError
from clinicflow.store import Database
from clinicflow.store.audit import (
    GENESIS_HASH,
    ActorKind,
    audit_log,
    audit_resource,
    canonical_json,
    compute_row_hash,
)

__all__ = [
    "ANCHOR_DIR_NAME",
    "Actor",
    "ActorKind",
    "BreakKind",
    "ChainBreak",
    "HeadAnchor",
    "VerifyResult",
    "anchor_dir_for",
    "is_anchor_due",
    "read_anchors",
    "record_access",
    "verify_chain",
    "verify_database",
    "write_head_anchor",
]

# Every appender on PostgreSQL takes this transaction-scoped advisory lock before reading the head,
# so two transactions can never both append seq N. (SQLite: BEGIN IMMEDIATE already serializes.)
AUDIT_LOCK_KEY = 0x636C_6661_7564_6974  # "clfaudit"
ANCHOR_DIR_NAME = "audit-anchors"
DETAIL_MAX_BYTES = 4096
# How far a renumbered row may have moved for verify_chain to still tell which way it moved.
RENUMBER_WINDOW = 256
RECENT_HASHES = 256

# Built once: building a statement per call costs more than executing it (cache-key generation).
_HEAD = select(audit_log.c.seq, audit_log.c.row_hash).order_by(audit_log.c.seq.desc()).limit(1)
_INSERT_ROW = insert(audit_log)
_INSERT_REFS = insert(audit_resource)
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
) -> int:
    """Append one audit row in the caller's transaction and return its seq; never commits.

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
    clean_detail = _checked_detail(detail)
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
    if refs:
        # One executemany (multi-row VALUES on PostgreSQL), no ORM objects: this is on the
        # bulk-ingest path with thousands of references per row.
        conn.execute(_INSERT_REFS, [{"ref": ref, "seq": seq} for ref in refs])
    return seq


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


# -- verification ----------------------------------------------------------------------------------


class BreakKind(StrEnum):
    """How the chain was found broken."""

    EDITED = "edited"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"  # the end was cut off (caught by an anchor)
    REWRITTEN = "rewritten"  # consistent chain, but it differs from an anchor: rebuilt by someone


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain first breaks (`seq`), the kind of break, and a sentence for a person."""

    seq: int
    kind: BreakKind
    message: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of `verify_chain`."""

    rows_checked: int
    head_seq: int
    head_hash: str
    anchors_checked: int
    problem: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        """True when every row and every anchor checked out."""
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for `clinicflow audit verify --json`."""
        problem = self.problem
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "anchors_checked": self.anchors_checked,
            "break": None
            if problem is None
            else {"seq": problem.seq, "kind": str(problem.kind), "message": problem.message},
        }


def _row_hash_as(row: Row[Any], seq: int) -> str:
    return compute_row_hash(
        seq=seq,
        at=row.at,
        actor_kind=row.actor_kind,
        actor=row.actor,
        action=row.action,
        resources=row.resources,
        detail=row.detail,
        prev_hash=row.prev_hash,
    )


# Runs one read on some connection: the caller's, or a short transaction of its own.
Reader = Callable[[Callable[[Connection], Any]], Any]


def _batch_after(after: int, size: int) -> Callable[[Connection], list[Row[Any]]]:
    query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(size)
    return lambda conn: list(conn.execute(query).all())


def _rows(read: Reader, batch_size: int) -> Iterator[Row[Any]]:
    """Every audit row in seq order, fetched in keyset batches so memory stays flat."""
    after = 0
    while True:
        batch: list[Row[Any]] = read(_batch_after(after, batch_size))
        yield from batch
        if len(batch) < batch_size:
            return
        after = batch[-1].seq


def _row_at(read: Reader, seq: int) -> Row[Any] | None:
    query = select(audit_log).where(audit_log.c.seq == seq)
    row: Row[Any] | None = read(lambda conn: conn.execute(query).first())
    return row


def _explain_mismatch(read: Reader, row: Row[Any]) -> ChainBreak:
    """A row whose contents do not match its own hash: edited, or renumbered (which way?)."""
    k = row.seq
    window = range(max(1, k - RENUMBER_WINDOW), k + RENUMBER_WINDOW + 1)
    written_as = next((s for s in window if s != k and _row_hash_as(row, s) == row.row_hash), None)
    if written_as is None:
        return ChainBreak(
            k,
            BreakKind.EDITED,
            f"Row {k} was changed after it was written: it no longer matches its hash.",
        )
    other = _row_at(read, written_as)
    if other is not None and _row_hash_as(other, k) == other.row_hash:
        first, second = sorted((k, written_as))
        return ChainBreak(
            first,
            BreakKind.REORDERED,
            f"Rows {first} and {second} were swapped: each carries "
            "the number the other was written with.",
        )
    if written_as > k:
        count = written_as - k
        return ChainBreak(
            k,
            BreakKind.DELETED,
            f"{count} row(s) were removed just before row {k} and the later "
            f"rows renumbered to hide it: row {k} was written as row {written_as}.",
        )
    count = k - written_as
    return ChainBreak(
        written_as,
        BreakKind.INSERTED,
        f"{count} row(s) were inserted at row {written_as} and the "
        f"later rows renumbered: row {k} was written as row {written_as}.",
    )


def _explain_link(row: Row[Any], recent: Mapping[str, int]) -> ChainBreak:
    """A row that matches its hash but does not link to the row before it."""
    k = row.seq
    linked = recent.get(row.prev_hash)
    if linked is not None:
        return ChainBreak(
            linked + 1,
            BreakKind.INSERTED,
            f"Row {k} links to row {linked}: rows "
            f"{linked + 1} to {k - 1} were inserted between them.",
        )
    return ChainBreak(
        k - 1,
        BreakKind.EDITED,
        f"Row {k} no longer links to row {k - 1}: row {k - 1} was "
        "replaced or rewritten together with its hash.",
    )


def _check_row(
    read: Reader, row: Row[Any], expected: int, prev_hash: str, recent: Mapping[str, int]
) -> ChainBreak | None:
    if row.seq < expected:
        return ChainBreak(
            row.seq,
            BreakKind.INSERTED,
            f"Row {row.seq} is numbered below 1, where the log starts: it was added by hand.",
        )
    if row.seq > expected:
        return ChainBreak(
            expected,
            BreakKind.DELETED,
            f"Rows {expected} to {row.seq - 1} are missing: the log "
            f"jumps from row {expected - 1} to row {row.seq}.",
        )
    if _row_hash_as(row, row.seq) != row.row_hash:
        return _explain_mismatch(read, row)
    if row.prev_hash != prev_hash:
        return _explain_link(row, recent)
    return None


def _check_anchor(row: Row[Any], anchored: Mapping[int, HeadAnchor]) -> ChainBreak | None:
    anchor = anchored.get(row.seq)
    if anchor is None or anchor.row_hash == row.row_hash:
        return None
    return ChainBreak(
        row.seq,
        BreakKind.REWRITTEN,
        f"Row {row.seq} differs from the chain head saved outside "
        f"the database on {anchor.written_at:%Y-%m-%d}: the log was rebuilt from row {row.seq} "
        "or earlier.",
    )


def _check_cut(last_seq: int, anchors: Sequence[HeadAnchor]) -> ChainBreak | None:
    beyond = [a for a in anchors if a.seq > last_seq]
    if not beyond:
        return None
    furthest = max(beyond, key=lambda a: a.seq)
    return ChainBreak(
        last_seq + 1,
        BreakKind.TRUNCATED,
        f"The log ends at row {last_seq}, but on "
        f"{furthest.written_at:%Y-%m-%d} it already reached row {furthest.seq}: rows "
        f"{last_seq + 1} to {furthest.seq} were cut from the end.",
    )


def _verify(read: Reader, anchors: Sequence[HeadAnchor], batch_size: int) -> VerifyResult:
    anchored = {a.seq: a for a in anchors if a.seq > 0}
    recent: OrderedDict[str, int] = OrderedDict()
    expected, prev_hash, checked = 1, GENESIS_HASH, 0

    def result(problem: ChainBreak | None) -> VerifyResult:
        return VerifyResult(checked, expected - 1, prev_hash, len(anchors), problem)

    for row in _rows(read, batch_size):
        problem = _check_row(read, row, expected, prev_hash, recent) or _check_anchor(row, anchored)
        if problem is not None:
            return result(problem)
        recent[row.row_hash] = row.seq
        if len(recent) > RECENT_HASHES:
            recent.popitem(last=False)
        checked, expected, prev_hash = checked + 1, row.seq + 1, row.row_hash
    return result(_check_cut(expected - 1, anchors))


def verify_chain(
    session: Session, anchors: Sequence[HeadAnchor] = (), *, batch_size: int = 2000
) -> VerifyResult:
    """Re-hash every row in order and compare with `anchors`; report the first break, if any."""
    conn = session.connection()
    return _verify(lambda query: query(conn), anchors, batch_size)


def verify_database(
    db: Database, anchors: Sequence[HeadAnchor] = (), *, batch_size: int = 2000
) -> VerifyResult:
    """`verify_chain` with one short transaction per batch, so writers never wait long on it.

    Rows are never changed once written, so batches read at different moments still make one
    consistent chain; rows appended meanwhile are checked if reached. Use this from the CLI:
    on SQLite a transaction holds the write lock, and a long log takes minutes to verify.
    """

    def read(query: Callable[[Connection], Any]) -> Any:
        with db.transaction() as session:
            return query(session.connection())

    return _verify(read, anchors, batch_size)
