"""Upsert FHIR resources into the replica in batches: encrypted body, typed rows, blind index,
events (outbox) and one audit row per batch, all in the batch's transaction.

Idempotent: a second ingest of the same data changes nothing and raises no events. When both
the stored and the incoming resource carry `meta.lastUpdated`, the newer wins; otherwise a keyed
content hash decides whether anything changed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from clinicflow.clock import Clock
from clinicflow.ehr.changes import event_payload, events_for
from clinicflow.ehr.extract import Extracted, extract, last_updated_of, version_of
from clinicflow.ehr.validate import check_resource
from clinicflow.engine.events import record_event
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.bulk import bulk_insert
from clinicflow.store.replica import (
    TYPED_TABLES,
    FhirResource,
    LookupIndex,
    PendingReference,
)

RESOURCES: Table = FhirResource.__table__  # type: ignore[assignment]
LOOKUPS: Table = LookupIndex.__table__  # type: ignore[assignment]
PENDING: Table = PendingReference.__table__  # type: ignore[assignment]
_CHUNK = 500  # ids per IN (...) clause, well under SQLite's and PostgreSQL's parameter limits


def body_aad(resource_type: str, fhir_id: str) -> bytes:
    """The associated data binding an encrypted body to its row."""
    return f"{resource_type}/{fhir_id}".encode()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A resource the replica did not take, and why."""

    where: str
    reason: str


@dataclass
class IngestReport:
    """What an ingest did, for the CLI, the run ledger and tests."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0
    unresolved_references: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)

    @property
    def stored(self) -> int:
        """Resources the replica now holds from this ingest (new, changed or already current)."""
        return self.created + self.updated + self.unchanged


@dataclass(slots=True)
class _Item:
    resource_type: str
    fhir_id: str
    canonical: bytes
    content_hash: str
    last_updated: datetime | None
    version_id: str | None
    extracted: Extracted


def _is_newer(incoming: _Item, stored_hash: str, stored_updated: datetime | None) -> bool:
    """Whether `incoming` should replace what is stored (see module docstring)."""
    if incoming.last_updated is not None and stored_updated is not None:
        return incoming.last_updated > stored_updated
    return incoming.content_hash != stored_hash


class Ingestor:
    """Buffers resources and writes them in batches; collect rejections, never stop on one."""

    def __init__(
        self,
        db: Database,
        cipher: PhiCipher,
        clock: Clock,
        *,
        source: str,
        actor: Actor,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock
        self.source = source
        self.actor = actor
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.report = IngestReport()
        self._batch: dict[tuple[str, str], _Item] = {}

    def add(self, resource: Any, where: str) -> None:
        """Check and buffer one resource; a bad one is recorded as rejected with `where`."""
        try:
            item = self._prepare(check_resource(resource))
        except InputError as exc:
            self.reject(where, str(exc) if not exc.where else exc.message)
            return
        key = (item.resource_type, item.fhir_id)
        held = self._batch.get(key)
        if held is None or _is_newer(item, held.content_hash, held.last_updated):
            self._batch[key] = item
        if len(self._batch) >= self.batch_size:
            self.flush()

    def reject(self, where: str, reason: str) -> None:
        """Record a rejection found before the resource reached `add` (bad JSON, unreadable file)."""
        self.report.rejected.append(Rejection(where, reason))

    def _prepare(self, resource: Mapping[str, Any]) -> _Item:
        rtype, rid = resource["resourceType"], resource["id"]
        try:
            extracted = extract(resource)
            last_updated = last_updated_of(resource)
        except InputError as exc:
            raise InputError(f"{rtype}/{rid}: {exc.message}") from exc
        canonical = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        digest = hmac.new(self.cipher.ring.index_key, canonical, hashlib.sha256).hexdigest()[:32]
        return _Item(rtype, rid, canonical, digest, last_updated, version_of(resource), extracted)

    def flush(self) -> None:
        """Write the buffered batch in one transaction."""
        if not self._batch:
            return
        items = list(self._batch.values())
        self._batch = {}
        with self.db.transaction() as session:
            self._write_batch(session, items)
        if self.on_batch is not None:
            self.on_batch(len(items))

    def finish(self) -> IngestReport:
        """Flush, resolve conditional references that can now be resolved, and report."""
        self.flush()
        with self.db.transaction() as session:
            resolve_pending_references(session)
            self.report.unresolved_references = count_pending_references(session)
        return self.report

    def _write_batch(self, session: Session, items: list[_Item]) -> None:
        now = self.clock.now()
        stored = _stored_state(session, items)
        old_rows = _old_typed_rows(session, [i for i in items if (i.resource_type, i.fhir_id) in stored])
        new_items: list[_Item] = []
        changed: list[_Item] = []
        for item in items:
            state = stored.get((item.resource_type, item.fhir_id))
            if state is None:
                new_items.append(item)
            elif _is_newer(item, *state):
                changed.append(item)
            else:
                self.report.unchanged += 1
        if not new_items and not changed:
            return
        self._write_resources(session, new_items, changed, now)
        _replace_derived_rows(session, self.cipher, new_items + changed, changed)
        self.report.events += _record_events(session, new_items + changed, old_rows, now)
        self.report.created += len(new_items)
        self.report.updated += len(changed)
        self.report.by_type.update(i.resource_type for i in new_items + changed)
        record_access(
            session,
            self.actor,
            "sync",
            [f"{i.resource_type}/{i.fhir_id}" for i in new_items + changed],
            at=now,
            detail={"source": self.source, "created": len(new_items), "updated": len(changed)},
        )

    def _write_resources(
        self, session: Session, new_items: list[_Item], changed: list[_Item], now: datetime
    ) -> None:
        encrypt = self.cipher.encrypt
        rows = [
            {
                "resource_type": i.resource_type,
                "fhir_id": i.fhir_id,
                "version_id": i.version_id,
                "last_updated": i.last_updated,
                "content_hash": i.content_hash,
                "body": encrypt(i.canonical, body_aad(i.resource_type, i.fhir_id)),
                "patient_id": i.extracted.patient_id,
                "source": self.source,
                "local_change": False,
                "ingested_at": now,
                "updated_at": now,
            }
            for i in new_items + changed
        ]
        bulk_insert(session, RESOURCES, rows[: len(new_items)])
        updates = rows[len(new_items) :]
        if updates:
            # Bind names carry a b_ prefix: SQLAlchemy reserves plain column names in executemany.
            keys = ("resource_type", "fhir_id")
            columns = [c for c in updates[0] if c != "ingested_at"]
            session.execute(
                update(RESOURCES)
                .where(*(RESOURCES.c[k] == bindparam(f"b_{k}") for k in keys))
                .values({c: bindparam(f"b_{c}") for c in columns if c not in keys}),
                [{f"b_{c}": row[c] for c in columns} for row in updates],
            )


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _ids_by_type(items: Iterable[_Item]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in items:
        grouped[item.resource_type].append(item.fhir_id)
    return grouped


def _stored_state(
    session: Session, items: list[_Item]
) -> dict[tuple[str, str], tuple[str, datetime | None]]:
    """(content hash, lastUpdated) of each item already in the replica."""
    found: dict[tuple[str, str], tuple[str, datetime | None]] = {}
    for rtype, ids in _ids_by_type(items).items():
        for chunk in _chunks(ids):
            query = select(
                RESOURCES.c.fhir_id, RESOURCES.c.content_hash, RESOURCES.c.last_updated
            ).where(RESOURCES.c.resource_type == rtype, RESOURCES.c.fhir_id.in_(chunk))
            for fhir_id, content_hash, last_updated in session.execute(query):
                found[(rtype, fhir_id)] = (content_hash, last_updated)
    return found


def _typed_table(resource_type: str) -> Table | None:
    model = TYPED_TABLES.get(resource_type)
    return model.__table__ if model is not None else None  # type: ignore[return-value]


def _old_typed_rows(session: Session, items: list[_Item]) -> dict[tuple[str, str], dict[str, Any]]:
    """Typed rows as stored before this batch, for the types whose changes raise events."""
    old: dict[tuple[str, str], dict[str, Any]] = {}
    for rtype, ids in _ids_by_type(items).items():
        table = _typed_table(rtype)
        if table is None or rtype not in ("Appointment", "Communication"):
            continue
        for chunk in _chunks(ids):
            for row in session.execute(select(table).where(table.c.fhir_id.in_(chunk))):
                old[(rtype, row.fhir_id)] = dict(row._mapping)
    return old


def _replace_derived_rows(
    session: Session, cipher: PhiCipher, items: list[_Item], changed: list[_Item]
) -> None:
    """Typed rows, blind-index rows and pending references: delete the old, insert the new."""
    for rtype, ids in _ids_by_type(changed).items():
        table = _typed_table(rtype)
        for chunk in _chunks(ids):
            if table is not None:
                session.execute(delete(table).where(table.c.fhir_id.in_(chunk)))
            for derived in (LOOKUPS, PENDING):
                session.execute(
                    delete(derived).where(
                        derived.c.resource_type == rtype, derived.c.fhir_id.in_(chunk)
                    )
                )
    typed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    lookups: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for item in items:
        ex = item.extracted
        if ex.row is not None:
            typed[item.resource_type].append(ex.row)
        for kind, value in ex.lookups:
            lookups.append(
                {
                    "kind": kind,
                    "digest": cipher.blind_index(kind, value),
                    "resource_type": item.resource_type,
                    "fhir_id": item.fhir_id,
                }
            )
        for column, ref in ex.pending:
            pending.append(
                {
                    "resource_type": item.resource_type,
                    "fhir_id": item.fhir_id,
                    "column": column,
                    "target_type": ref.resource_type,
                    "digest": cipher.blind_index("identifier", ref.lookup_value),
                }
            )
    for rtype, rows in typed.items():
        table = _typed_table(rtype)
        if table is not None:
            bulk_insert(session, table, rows)
    bulk_insert(session, LOOKUPS, lookups)
    bulk_insert(session, PENDING, pending)


def _record_events(
    session: Session,
    items: list[_Item],
    old_rows: Mapping[tuple[str, str], Mapping[str, Any]],
    now: datetime,
) -> int:
    count = 0
    for item in items:
        new_row = item.extracted.row
        if new_row is None:
            continue
        old = old_rows.get((item.resource_type, item.fhir_id))
        for event_type in events_for(item.resource_type, old, new_row, now):
            record_event(
                session,
                event_type=event_type,
                resource_type=item.resource_type,
                resource_id=item.fhir_id,
                at=now,
                payload=event_payload(new_row, old),
            )
            count += 1
    return count


def resolve_pending_references(session: Session) -> int:
    """Fill typed reference columns whose conditional reference can now be found; return how many."""
    query = (
        select(PENDING.c.id, PENDING.c.resource_type, PENDING.c.fhir_id, PENDING.c.column,
               LOOKUPS.c.fhir_id.label("target_id"))
        .join(
            LOOKUPS,
            (LOOKUPS.c.kind == "identifier")
            & (LOOKUPS.c.digest == PENDING.c.digest)
            & (LOOKUPS.c.resource_type == PENDING.c.target_type),
        )
    )
    updates: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    done: list[int] = []
    for row in session.execute(query):
        updates[(row.resource_type, row.column)].append({"b_id": row.fhir_id, "b_target": row.target_id})
        done.append(row.id)
    for (rtype, column), params in updates.items():
        table = _typed_table(rtype)
        if table is None or column not in table.c:
            continue
        session.execute(
            update(table)
            .where(table.c.fhir_id == bindparam("b_id"))
            .values({column: bindparam("b_target")}),
            params,
        )
    for start in range(0, len(done), _CHUNK):
        session.execute(delete(PENDING).where(PENDING.c.id.in_(done[start : start + _CHUNK])))
    return len(done)


def count_pending_references(session: Session) -> int:
    """Conditional references whose target is not (yet) in the replica."""
    from sqlalchemy import func

    return int(session.execute(select(func.count()).select_from(PENDING)).scalar_one())
