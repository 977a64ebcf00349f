"""Verify the audit hash chain: re-hash every row, follow the links, compare with the head anchors.

The first break is reported with its kind (edited, deleted, inserted, reordered, truncated,
rewritten) and a sentence a person can act on. Rows are read in keyset batches, so memory stays flat
however long the log is.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.orm import Session

from clinicflow.security.audit import HeadAnchor
from clinicflow.store import Database
from clinicflow.store.audit import GENESIS_HASH, audit_log, compute_row_hash

__all__ = ["BreakKind", "ChainBreak", "VerifyResult", "verify_chain", "verify_database"]

# How far a renumbered row may have moved for verify_chain to still tell which way it moved.
RENUMBER_WINDOW = 256
RECENT_HASHES = 256


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
