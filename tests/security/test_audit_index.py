"""List views index their patients later, in batches; a catch-up makes the index exact again."""

from __future__ import annotations

import sqlalchemy as sa

from clinicflow.clock import FakeClock
from clinicflow.security.audit import Actor, catch_up_audit_index, record_access
from clinicflow.security.audit_search import AuditQuery, search_audit
from clinicflow.store import Database
from clinicflow.store.audit import AuditResource


def _index(db: Database) -> list[tuple[str, int]]:
    with db.transaction() as session:
        rows = session.execute(sa.select(AuditResource.ref, AuditResource.seq))
        return sorted((ref, seq) for ref, seq in rows)


def test_a_list_view_is_indexed_under_its_patients_by_the_catch_up_once(
    db: Database, clock: FakeClock
) -> None:
    with db.transaction() as session:
        direct = record_access(session, Actor.user("ana"), "read", ["Patient/p1"], at=clock.now())
        view = record_access(
            session,
            Actor.user("ana"),
            "read",
            ["Appointment/a1", "Patient/p1", "Appointment/a2", "Patient/p2"],
            at=clock.now(),
            index_later=True,
            detail={"view": "today"},
        )
    assert _index(db) == [("Patient/p1", direct)]  # the view waits for the catch-up
    with db.transaction() as session:
        assert catch_up_audit_index(session) == 2
    assert _index(db) == [("Patient/p1", direct), ("Patient/p1", view), ("Patient/p2", view)]
    with db.transaction() as session:
        assert catch_up_audit_index(session) == 0  # nothing twice
        found = search_audit(session, AuditQuery(patient_id="p2"))
    assert [e.seq for e in found] == [view]
    assert found[0].detail["index_later"] is True  # part of the hashed row: cannot be faked later
