"""The replica's change counters (`replica_generations`): bump on write, read to see if anything
changed since a value last seen."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinicflow.store.conflicts import upsert_insert
from clinicflow.store.replica import ReplicaGeneration


def bump_generations(session: Session, resource_types: Iterable[str]) -> None:
    """Count one more change to each of these resource types, in the caller's transaction.

    Call it under `lock_replica` (the replica's one writer), so generations grow in commit order.
    """
    types = sorted(set(resource_types))
    if not types:
        return
    stmt = upsert_insert(session, ReplicaGeneration).values(
        [{"resource_type": t, "generation": 1} for t in types]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["resource_type"],
            set_={"generation": ReplicaGeneration.generation + 1},
        )
    )


def generation_of(session: Session, resource_types: Iterable[str]) -> int:
    """The sum of these types' generations: it grows whenever any of them changes."""
    total = session.scalar(
        select(func.coalesce(func.sum(ReplicaGeneration.generation), 0)).where(
            ReplicaGeneration.resource_type.in_(sorted(set(resource_types)))
        )
    )
    return int(total or 0)
