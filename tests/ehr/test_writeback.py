"""Write-back with no EHR connected: applied to the replica, marked local, evented and audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinicflow.ehr import open_body, sync_folder
from clinicflow.ehr.writeback import (
    EHR_WRITE_BACK,
    Change,
    WriteBack,
    apply_change,
    count_local_changes,
)
from clinicflow.engine import (
    Automation,
    EngineRuntime,
    Manual,
    Registry,
    RunContext,
    ehr_write_key,
    run_now,
)
from clinicflow.errors import InputError
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import Event
from clinicflow.store.replica import Appointment, FhirResource

APPT = {
    "resourceType": "Appointment",
    "id": "a1",
    "status": "booked",
    "start": "2026-11-25T15:00:00Z",
    "end": "2026-11-25T15:20:00Z",
    "participant": [
        {"actor": {"reference": "Patient/p1"}, "status": "needs-action"},
        {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
    ],
}


def test_confirming_sets_the_patient_participant_to_accepted(clock):
    updated = apply_change(APPT, WriteBack(Change.CONFIRM, "Appointment", "a1"), clock.now())
    assert [p["status"] for p in updated["participant"]] == ["accepted", "accepted"]
    assert updated["meta"]["lastUpdated"] == clock.now().isoformat()
    assert APPT["participant"][0]["status"] == "needs-action"  # the input is not modified


def test_cancelling_records_the_reason(clock):
    change = WriteBack(
        Change.SET_STATUS, "Appointment", "a1", status="cancelled", reason_code="pat"
    )
    updated = apply_change(APPT, change, clock.now())
    assert updated["status"] == "cancelled"
    assert updated["cancelationReason"]["coding"][0]["code"] == "pat"


def test_a_change_to_a_resource_the_replica_lacks_is_refused(clock):
    with pytest.raises(InputError, match="not in the replica"):
        apply_change(None, WriteBack(Change.CONFIRM, "Appointment", "zz"), clock.now())


def _cancel_run(ctx: RunContext) -> None:
    change = WriteBack(
        Change.SET_STATUS, "Appointment", "a1", status="cancelled", reason_code="pat"
    )
    ctx.effects.record(
        EHR_WRITE_BACK,
        key=ehr_write_key("test-cancel", "Appointment/a1", "cancel"),
        payload=change.to_payload(),
        summary="cancel Appointment/a1",
    )


CANCEL = Automation(
    name="test-cancel",
    summary="Cancel one visit (tests)",
    trigger=Manual(),
    run=_cancel_run,
    owner="front-desk",
)


def test_without_an_ehr_a_write_back_changes_the_replica_and_is_marked_local(db, clock, tmp_path):
    cipher = PhiCipher(Keyring.generate())
    start = clock.now() + timedelta(days=2)
    appt = {**APPT, "start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat()}
    (tmp_path / "a.ndjson").write_text(json.dumps(appt) + "\n")
    sync_folder(db, cipher, clock, tmp_path / "a.ndjson")
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(data_dir=tmp_path),
        clock=clock,
        cipher=cipher,
        registry=Registry([CANCEL]),
    )
    outcome = run_now(rt, "test-cancel", requested_by="test")
    assert outcome.effects == {"done": 1}
    with db.transaction() as s:
        row = s.execute(select(FhirResource).where(FhirResource.fhir_id == "a1")).scalar_one()
        assert (row.source, row.local_change) == ("local", True)
        body = open_body(cipher, row.body, "Appointment", "a1")
        assert body["status"] == "cancelled"
        assert s.execute(select(Appointment.status)).scalar_one() == "cancelled"
        events = s.execute(select(Event.type).order_by(Event.id)).scalars().all()
        assert events == ["appointment.booked", "appointment.cancelled"]
        last = s.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).one()
        assert (last.actor, last.action, last.resources) == (
            "test-cancel",
            "write",
            ["Appointment/a1"],
        )
        assert count_local_changes(s) == 1
    again = run_now(rt, "test-cancel", requested_by="test")
    assert again.effects == {}  # same key: the change is never applied twice


def _cancel_after_sync(db, clock, tmp_path, resource):
    cipher = PhiCipher(Keyring.generate())
    folder = tmp_path / "ehr"
    folder.mkdir()
    (folder / "a.ndjson").write_text(json.dumps(resource) + "\n")
    sync_folder(db, cipher, clock, folder)
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(data_dir=tmp_path),
        clock=clock,
        cipher=cipher,
        registry=Registry([CANCEL]),
    )
    assert run_now(rt, "test-cancel", requested_by="test").effects == {"done": 1}
    return cipher, folder


def _status(db):
    with db.transaction() as s:
        return s.execute(select(Appointment.status)).scalar_one()


def test_a_later_sync_of_the_same_ehr_version_leaves_the_local_change_standing(db, clock, tmp_path):
    start = clock.now() + timedelta(days=2)
    appt = {**APPT, "start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat()}
    cipher, folder = _cancel_after_sync(db, clock, tmp_path, appt)  # no meta.lastUpdated
    again = sync_folder(db, cipher, clock, folder)
    assert (again.updated, again.unchanged, again.events) == (0, 1, 0)
    assert _status(db) == "cancelled"
    changed_in_ehr = {**appt, "minutesDuration": 30}
    (folder / "a.ndjson").write_text(json.dumps(changed_in_ehr) + "\n")
    assert sync_folder(db, cipher, clock, folder).updated == 1  # the EHR's own edit wins
    with db.transaction() as s:
        assert count_local_changes(s) == 0


def test_a_write_back_applies_even_when_the_stored_copy_is_stamped_in_the_future(
    db, clock, tmp_path
):
    start = clock.now() + timedelta(days=2)
    future = (clock.now() + timedelta(minutes=5)).isoformat()
    appt = {
        **APPT,
        "meta": {"lastUpdated": future},
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=20)).isoformat(),
    }
    _cancel_after_sync(db, clock, tmp_path, appt)
    assert _status(db) == "cancelled"


def test_a_write_back_keeps_references_that_were_resolved_by_identifier(db, clock, tmp_path):
    start = clock.now() + timedelta(days=2)
    npi = "http://hl7.org/fhir/sid/us-npi|42"
    doctor = {
        "resourceType": "Practitioner",
        "id": "d1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "42"}],
    }
    appt = {
        **APPT,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=20)).isoformat(),
        "participant": [
            {"actor": {"reference": "Patient/p1"}, "status": "needs-action"},
            {"actor": {"reference": f"Practitioner?identifier={npi}"}, "status": "accepted"},
        ],
    }
    cipher = PhiCipher(Keyring.generate())
    (tmp_path / "a.ndjson").write_text(json.dumps(doctor) + "\n" + json.dumps(appt) + "\n")
    sync_folder(db, cipher, clock, tmp_path / "a.ndjson")
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(data_dir=tmp_path),
        clock=clock,
        cipher=cipher,
        registry=Registry([CANCEL]),
    )
    run_now(rt, "test-cancel", requested_by="test")
    with db.transaction() as s:
        row = s.execute(select(Appointment.status, Appointment.practitioner_id)).one()
    assert tuple(row) == ("cancelled", "d1")
