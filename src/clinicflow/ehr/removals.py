"""Take out of the replica what the EHR no longer has (deleted, or hidden once entered-in-error).

The encrypted body stays, stamped `removed_at`, so the record of what was there survives; the typed
row goes, so no automation works on it any more. Each removal raises `appointment.removed` (for
the waitlist: a slot may be free) and voids the messages about it that have not gone out. A
resource that comes back later is stored again by the normal write path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from clinicflow.ehr.changes import APPOINTMENT_REMOVED, event_payload
from clinicflow.ehr.replica_writer import lock_replica, void_for_removed
from clinicflow.engine.events import NewEvent, record_events
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.generations import bump_generations
from clinicflow.store.replica import Appointment, FhirResource


def remove_appointments(
    session: Session, ids: Sequence[str], *, reason: str, now: datetime, actor: Actor
) -> list[str]:
    """Mark `ids` removed in the caller's transaction; the ids that were still present."""
    lock_replica(session)
    rows = {
        row.fhir_id: dict(row._mapping)
        for row in session.execute(
            select(Appointment.__table__).where(Appointment.fhir_id.in_(list(ids)))
        )
    }
    if not rows:
        return []
    present = sorted(rows)
    session.execute(
        update(FhirResource)
        .where(FhirResource.resource_type == "Appointment", FhirResource.fhir_id.in_(present))
        .values(removed_at=now, updated_at=now),
        execution_options={"synchronize_session": False},
    )
    session.execute(delete(Appointment).where(Appointment.fhir_id.in_(present)))
    bump_generations(session, ["Appointment"])
    record_events(
        session,
        [
            NewEvent(
                APPOINTMENT_REMOVED,
                "Appointment",
                fhir_id,
                now,
                {**event_payload(rows[fhir_id], None), "reason": reason},
            )
            for fhir_id in present
        ],
    )
    voided = sum(void_for_removed(session, fhir_id, now=now) for fhir_id in present)
    patients = sorted({f"Patient/{r['patient_id']}" for r in rows.values() if r["patient_id"]})
    record_access(
        session,
        actor,
        "remove",
        [f"Appointment/{fhir_id}" for fhir_id in present],
        at=now,
        detail={"reason": reason, "voided_messages": voided},
        index=patients or None,
    )
    return present
