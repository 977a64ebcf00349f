"""Conditional references (`Practitioner?identifier=...`) filled in once their target arrives.

A resource may name another by identifier before that other is in the replica; the writer keeps
such a reference in `pending_references` (as a blind-index digest), and these fill the typed
column at the end of a sync or write-back, when the target may have come.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from clinicflow.ehr.merges import PATIENT_TABLES, load_merges, rename_stored_rows
from clinicflow.ehr.replica_writer import CHUNK, LOOKUPS, PENDING, typed_table
from clinicflow.store.generations import bump_generations


def resolve_pending_references(session: Session) -> int:
    """Fill typed columns whose conditional reference can now be resolved; return how many."""
    query = select(
        PENDING.c.id,
        PENDING.c.resource_type,
        PENDING.c.fhir_id,
        PENDING.c.column,
        LOOKUPS.c.fhir_id.label("target_id"),
    ).join(
        LOOKUPS,
        (LOOKUPS.c.kind == "identifier")
        & (LOOKUPS.c.digest == PENDING.c.digest)
        & (LOOKUPS.c.resource_type == PENDING.c.target_type),
    )
    updates: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    done: list[int] = []
    for row in session.execute(query):
        updates[(row.resource_type, row.column)].append(
            {"b_id": row.fhir_id, "b_target": row.target_id}
        )
        done.append(row.id)
    if not done:
        return 0
    # A late-resolved merge renames stored rows; a late-resolved patient is named as survivor.
    merges = load_merges(
        session, {p["b_id"]: p["b_target"] for p in updates.get(("Patient", "replaced_by"), ())}
    )
    for (rtype, column), params in updates.items():
        table = typed_table(rtype)
        if table is None or column not in table.c:
            continue
        if column == "patient_id" and rtype in PATIENT_TABLES:
            params = [{**p, "b_target": merges.survivor_of(p["b_target"])} for p in params]
        session.execute(
            update(table)
            .where(table.c.fhir_id == bindparam("b_id"))
            .values({column: bindparam("b_target")}),
            params,
        )
    rename_stored_rows(session, merges)
    bump_generations(session, {rtype for rtype, _ in updates} | {"Patient"})  # merges rename
    for start in range(0, len(done), CHUNK):
        session.execute(delete(PENDING).where(PENDING.c.id.in_(done[start : start + CHUNK])))
    return len(done)


def count_pending_references(session: Session) -> int:
    """Conditional references whose target is not (yet) in the replica."""
    return int(session.execute(select(func.count()).select_from(PENDING)).scalar_one())
