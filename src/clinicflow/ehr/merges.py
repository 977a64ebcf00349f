"""Merged patients (FHIR R4 Patient.link `replaced-by`): typed rows name the surviving record.

The EHR merges a duplicate Patient A into B by marking A `replaced-by` B. Automations should then
see one person, so every typed row with a `patient_id` names the end of A's replaced-by chain.
`fhir_resources.patient_id` keeps the compartment the EHR wrote, which is what lets a later change
of the merge (or its undoing) find the rows again and name the right patient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from clinicflow.store.replica import TYPED_TABLES, FhirResource, Patient

RESOURCES: Table = FhirResource.__table__  # type: ignore[assignment]  # a Table
# Typed tables whose rows belong to one patient, found by column so a new one is not missed.
PATIENT_TABLES: dict[str, Table] = {
    rtype: model.__table__  # type: ignore[misc]  # declarative models' tables are Tables
    for rtype, model in TYPED_TABLES.items()
    if rtype != "Patient" and "patient_id" in model.__table__.c
}


def survivor(patient_id: str, replaced_by: Mapping[str, str]) -> str:
    """The end of `patient_id`'s replaced-by chain; a cycle or self-link stops where it repeats."""
    seen = {patient_id}
    current = patient_id
    while (target := replaced_by.get(current)) is not None and target not in seen:
        seen.add(target)
        current = target
    return current


def merged_into(patient_ids: Iterable[str], replaced_by: Mapping[str, str]) -> set[str]:
    """`patient_ids` and every patient whose replaced-by chain passes through one of them."""
    sources: dict[str, list[str]] = defaultdict(list)
    for source, target in replaced_by.items():
        sources[target].append(source)
    found = set(patient_ids)
    queue = list(found)
    while queue:
        for source in sources.get(queue.pop(), ()):
            if source not in found:
                found.add(source)
                queue.append(source)
    return found


@dataclass(frozen=True, slots=True)
class Merges:
    """Who is merged into whom once a batch is written, and whose merge the batch changes."""

    replaced_by: dict[str, str]
    changed: frozenset[str]

    def survivor_of(self, patient_id: str) -> str:
        """The record rows about `patient_id` should name."""
        return survivor(patient_id, self.replaced_by) if self.replaced_by else patient_id

    def named_row(self, resource_type: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
        """`row` as stored: naming the surviving patient when its patient was merged away."""
        if row is None or not self.replaced_by or resource_type not in PATIENT_TABLES:
            return row
        patient_id = row.get("patient_id")
        if patient_id is None or patient_id not in self.replaced_by:
            return row
        return {**row, "patient_id": self.survivor_of(patient_id)}


def load_merges(session: Session, incoming: Mapping[str, str | None]) -> Merges:
    """The stored merges with `incoming` (Patient id → its new `replaced_by`) laid over them.

    One indexed query: merges are rare, so this is an empty answer on almost every batch.
    """
    query = select(Patient.fhir_id, Patient.replaced_by).where(Patient.replaced_by.is_not(None))
    stored = {fhir_id: target for fhir_id, target in session.execute(query) if target is not None}
    after = dict(stored)
    changed = set()
    for patient_id, target in incoming.items():
        if stored.get(patient_id) != target:
            changed.add(patient_id)
        if target is None:
            after.pop(patient_id, None)
        else:
            after[patient_id] = target
    return Merges(after, frozenset(changed))


def rename_stored_rows(session: Session, merges: Merges) -> None:
    """Make the typed rows already stored name the right patient after `merges.changed`.

    A row is found by its resource's compartment (`fhir_resources.patient_id`), not its typed
    `patient_id`, so undoing a merge finds rows that were renamed to the survivor.
    """
    if not merges.changed:
        return
    pairs = [
        {"b_compartment": patient_id, "b_survivor": merges.survivor_of(patient_id)}
        for patient_id in sorted(merged_into(merges.changed, merges.replaced_by))
    ]
    for rtype, table in PATIENT_TABLES.items():
        compartment = select(RESOURCES.c.fhir_id).where(
            RESOURCES.c.resource_type == rtype,
            RESOURCES.c.patient_id == bindparam("b_compartment"),
        )
        session.execute(
            update(table)
            .where(table.c.fhir_id.in_(compartment))
            .values(patient_id=bindparam("b_survivor")),
            pairs,
        )
