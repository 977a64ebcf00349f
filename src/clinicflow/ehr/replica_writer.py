"""Write prepared FHIR resources into the replica inside the caller's transaction.

One batch: decide new / changed / unchanged (newer `meta.lastUpdated` wins, else a keyed content
hash; a resource the EHR had removed is always taken back), write encrypted bodies, replace typed
rows (naming the surviving patient of a merge, see `merges`), blind-index rows and pending
references, record the events the change raises (outbox) and one audit row naming the resources
written.
Used by folder and FHIR sync (source folder / fhir / bulk) and by local write-back (source local).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from clinicflow.ehr.changes import APPOINTMENT_REMOVED, event_payload, events_for
from clinicflow.ehr.merges import load_merges, rename_stored_rows
from clinicflow.ehr.prepare import PreparedResource, is_newer
from clinicflow.engine.effects import void_pending
from clinicflow.engine.events import NewEvent, record_events
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.base import stored_instant
from clinicflow.store.bulk import bulk_insert
from clinicflow.store.generations import bump_generations
from clinicflow.store.replica import (
    TYPED_TABLES,
    FhirResource,
    LookupIndex,
    PendingReference,
)

# Declarative models expose `__table__` as a FromClause; these are Tables (Core statements below).
RESOURCES: Table = FhirResource.__table__  # type: ignore[assignment]
LOOKUPS: Table = LookupIndex.__table__  # type: ignore[assignment]
PENDING: Table = PendingReference.__table__  # type: ignore[assignment]
REPLICA_LOCK_KEY = 0x7265706C  # "repl": the PostgreSQL advisory lock for replica writes
CHUNK = 500  # ids per IN (...) clause, well under SQLite's and PostgreSQL's parameter limits


def lock_replica(session: Session) -> None:
    """Be the one replica writer until the transaction ends.

    SQLite gets the same from BEGIN IMMEDIATE; on PostgreSQL a sync batch, a write-back and a
    removal must not both read the old row and then both write.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REPLICA_LOCK_KEY})


@dataclass
class BatchResult:
    """What one batch wrote."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


def write_resources(
    session: Session,
    items: list[PreparedResource],
    *,
    now: datetime,
    source: str,
    actor: Actor,
    action: str = "sync",
) -> BatchResult:
    """Upsert `items` in the caller's transaction; `source == "local"` marks them local changes.

    A local change always applies, and remembers the EHR version it was made on (`base_hash`);
    a later sync bringing that same version back leaves it standing, a different one replaces it.
    """
    lock_replica(session)
    stored = _stored_state(session, items)
    old_rows = _old_typed_rows(
        session, [i for i in items if (i.resource_type, i.fhir_id) in stored]
    )
    plan = _plan_batch(items, stored, local=source == "local")
    new_items, changed = plan.new_items, plan.changed
    result = BatchResult(unchanged=plan.unchanged)
    if not new_items and not changed:
        return result
    written = new_items + changed
    merges = load_merges(session, _merges_carried(written))
    rows = [merges.named_row(i.resource_type, i.row) for i in written]
    _write_bodies(session, new_items, changed, now=now, source=source, base_hashes=plan.base_hashes)
    bump_generations(session, {i.resource_type for i in written})
    _replace_derived_rows(session, written, rows, changed)
    rename_stored_rows(session, merges)
    result.events = _record_events(session, written, rows, old_rows, now)
    result.created, result.updated = len(new_items), len(changed)
    result.by_type.update(i.resource_type for i in written)
    record_access(
        session,
        actor,
        action,
        [f"{i.resource_type}/{i.fhir_id}" for i in written],
        at=now,
        detail={"source": source, "created": len(new_items), "updated": len(changed)},
        index=_patients_named(written),
    )
    return result


class _Plan(NamedTuple):
    """What a batch writes: new items, items replacing a stored copy, and the rest counted."""

    new_items: list[PreparedResource]
    changed: list[PreparedResource]
    unchanged: int
    base_hashes: dict[tuple[str, str], str | None]


def _plan_batch(
    items: list[PreparedResource], stored: Mapping[tuple[str, str], StoredState], *, local: bool
) -> _Plan:
    """Which items are new, which replace what is stored, and how many leave it as it is."""
    new_items: list[PreparedResource] = []
    changed: list[PreparedResource] = []
    unchanged = 0
    base_hashes: dict[tuple[str, str], str | None] = {}
    for item in items:
        key = (item.resource_type, item.fhir_id)
        state = stored.get(key)
        if state is None:
            new_items.append(item)
        elif local:
            changed.append(item)
            base_hashes[key] = state.base_hash if state.local_change else state.content_hash
        elif state.removed_at is not None:
            changed.append(item)  # back in the EHR: its typed row was deleted, so write it again
        elif state.local_change and item.content_hash == state.base_hash:
            unchanged += 1  # the EHR still has the version our local change was made on
        elif is_newer(item, state.content_hash, state.last_updated):
            changed.append(item)
        else:
            unchanged += 1
    return _Plan(new_items, changed, unchanged, base_hashes)


def _merges_carried(items: Iterable[PreparedResource]) -> dict[str, str | None]:
    """The `replaced_by` of each Patient being written: the batch's word on who merged where."""
    return {
        i.fhir_id: i.row.get("replaced_by")
        for i in items
        if i.resource_type == "Patient" and i.row is not None
    }


def _patients_named(items: Iterable[PreparedResource]) -> list[str]:
    """The patients whose data a batch touched: what the audit log is searched by."""
    ids = {i.patient_id for i in items if i.patient_id}
    return sorted(f"Patient/{pid}" for pid in ids if not pid.startswith("#"))


def _write_bodies(
    session: Session,
    new_items: list[PreparedResource],
    changed: list[PreparedResource],
    *,
    now: datetime,
    source: str,
    base_hashes: Mapping[tuple[str, str], str | None],
) -> None:
    rows = [
        {
            "resource_type": i.resource_type,
            "fhir_id": i.fhir_id,
            "version_id": i.version_id,
            "last_updated": i.last_updated,
            "content_hash": i.content_hash,
            "body": i.body,
            "patient_id": i.patient_id,
            "source": source,
            "local_change": source == "local",
            "base_hash": base_hashes.get((i.resource_type, i.fhir_id)),
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
            .values({c: bindparam(f"b_{c}") for c in columns if c not in keys})
            .values(removed_at=None),  # written now, so present in the EHR (again)
            [{f"b_{c}": row[c] for c in columns} for row in updates],
        )


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _ids_by_type(items: Iterable[PreparedResource]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in items:
        grouped[item.resource_type].append(item.fhir_id)
    return grouped


class StoredState(NamedTuple):
    """What the replica holds for a resource, as far as deciding an upsert goes."""

    content_hash: str
    last_updated: datetime | None
    local_change: bool
    base_hash: str | None
    removed_at: datetime | None


def _stored_state(
    session: Session, items: list[PreparedResource]
) -> dict[tuple[str, str], StoredState]:
    """The stored state of each item already in the replica.

    Asked through the driver: SQLAlchemy's expanding IN costs more than the lookup itself here.
    """
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    found: dict[tuple[str, str], StoredState] = {}
    for rtype, ids in _ids_by_type(items).items():
        for chunk in _chunks(ids):
            markers = ", ".join([marker] * len(chunk))
            sql = (
                "SELECT fhir_id, content_hash, last_updated, local_change, base_hash, removed_at "
                "FROM fhir_resources "
                f"WHERE resource_type = {marker} AND fhir_id IN ({markers})"
            )
            for fhir_id, content_hash, updated, local, base, removed in conn.exec_driver_sql(
                sql, (rtype, *chunk)
            ):
                found[(rtype, fhir_id)] = StoredState(
                    content_hash,
                    stored_instant(updated),
                    bool(local),
                    base,
                    stored_instant(removed),
                )
    return found


def typed_table(resource_type: str) -> Table | None:
    """The Core table of a resource type's typed rows, if it has one."""
    model = TYPED_TABLES.get(resource_type)
    return model.__table__ if model is not None else None  # type: ignore[return-value]  # a Table


def _old_typed_rows(
    session: Session, items: list[PreparedResource]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Typed rows as stored before this batch, for the types whose changes raise events."""
    old: dict[tuple[str, str], dict[str, Any]] = {}
    for rtype, ids in _ids_by_type(items).items():
        table = typed_table(rtype)
        if table is None or rtype not in ("Appointment", "Communication"):
            continue
        for chunk in _chunks(ids):
            for row in session.execute(select(table).where(table.c.fhir_id.in_(chunk))):
                old[(rtype, row.fhir_id)] = dict(row._mapping)
    return old


def _replace_derived_rows(
    session: Session,
    items: list[PreparedResource],
    rows: list[dict[str, Any] | None],
    changed: list[PreparedResource],
) -> None:
    """Replace typed rows (`rows`, one per item), blind-index rows and pending references."""
    for rtype, ids in _ids_by_type(changed).items():
        table = typed_table(rtype)
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
    for item, row in zip(items, rows, strict=True):
        if row is not None:
            typed[item.resource_type].append(row)
        for kind, digest in item.lookups:
            lookups.append(
                {
                    "kind": kind,
                    "digest": digest,
                    "resource_type": item.resource_type,
                    "fhir_id": item.fhir_id,
                }
            )
        for column, target_type, digest in item.pending:
            pending.append(
                {
                    "resource_type": item.resource_type,
                    "fhir_id": item.fhir_id,
                    "column": column,
                    "target_type": target_type,
                    "digest": digest,
                }
            )
    for rtype, type_rows in typed.items():
        table = typed_table(rtype)
        if table is not None:
            bulk_insert(session, table, type_rows)
    bulk_insert(session, LOOKUPS, lookups)
    bulk_insert(session, PENDING, pending)


def _record_events(
    session: Session,
    items: list[PreparedResource],
    rows: list[dict[str, Any] | None],
    old_rows: Mapping[tuple[str, str], Mapping[str, Any]],
    now: datetime,
) -> int:
    events = [
        NewEvent(event_type, item.resource_type, item.fhir_id, now, event_payload(row, old))
        for item, row in zip(items, rows, strict=True)
        if row is not None
        for old in (old_rows.get((item.resource_type, item.fhir_id)),)
        for event_type in events_for(item.resource_type, old, row, now)
    ]
    record_events(session, events)
    for event in events:
        if event.event_type == APPOINTMENT_REMOVED:
            void_for_removed(session, event.resource_id, now=now)
    return len(events)


def void_for_removed(session: Session, appointment_id: str, *, now: datetime) -> int:
    """Void messages about an appointment that was deleted or entered in error; how many."""
    return void_pending(
        session,
        f"Appointment/{appointment_id}",
        reason="the appointment was removed in the EHR before this went out",
        now=now,
    )
