"""`sync folder` into a real replica, on SQLite and PostgreSQL: idempotent, encrypted, audited,
bad input reported with where it was and the rest stored."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clinicflow.ehr import body_aad, open_body, sync_folder
from clinicflow.security.audit_verify import verify_chain
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import Event
from clinicflow.store.replica import (
    Appointment,
    Encounter,
    FhirResource,
    LookupIndex,
    PendingReference,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "synthea-sample"


def count(db, model, *where):
    with db.transaction() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def write_ndjson(path: Path, resources: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def appointment(status: str, start: str, updated: str | None = None, **extra) -> dict:
    res = {
        "resourceType": "Appointment",
        "id": "a1",
        "status": status,
        "start": start,
        "end": start.replace(":00:00", ":20:00"),
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}],
        **extra,
    }
    if updated:
        res["meta"] = {"lastUpdated": updated}
    return res


def test_the_sample_is_stored_whole_and_conditional_references_resolve(db, cipher, clock):
    report = sync_folder(db, cipher, clock, SAMPLE)
    assert report.rejected == []
    lines = sum(1 for p in SAMPLE.glob("*.ndjson") if p.name != "log.ndjson" for _ in p.open())
    assert report.created == lines == count(db, FhirResource)
    assert report.by_type["Patient"] == 13
    # Synthea writes `Practitioner?identifier=...|NPI`; every one is in the folder.
    assert report.unresolved_references == 0
    assert count(db, Encounter, Encounter.practitioner_id.is_(None)) == 0
    assert count(db, PendingReference) == 0


def test_a_second_sync_changes_nothing_and_raises_no_events(db, cipher, clock):
    sync_folder(db, cipher, clock, SAMPLE)
    audit_rows = count(db, audit_log)
    events = count(db, Event)
    again = sync_folder(db, cipher, clock, SAMPLE)
    assert (again.created, again.updated, again.events) == (0, 0, 0)
    assert again.unchanged == count(db, FhirResource)
    assert count(db, audit_log) == audit_rows
    assert count(db, Event) == events


def test_each_batch_writes_one_audit_row_naming_its_resources(db, cipher, clock):
    report = sync_folder(db, cipher, clock, SAMPLE, batch_size=100)
    with db.transaction() as s:
        rows = s.execute(select(audit_log.c.action, audit_log.c.resources)).all()
        assert verify_chain(s).ok
    named = [ref for action, refs in rows if action == "sync" for ref in refs]
    assert len(rows) >= report.created // 100
    assert sorted(named) == sorted(set(named))
    assert len(named) == report.created


def test_bodies_decrypt_only_on_their_own_row(db, cipher, clock):
    sync_folder(db, cipher, clock, SAMPLE)
    with db.transaction() as s:
        row = (
            s.execute(select(FhirResource).where(FhirResource.resource_type == "Patient"))
            .scalars()
            .first()
        )
        body = open_body(cipher, row.body, "Patient", row.fhir_id)
    assert body["id"] == row.fhir_id
    with pytest.raises(Exception, match="integrity"):
        cipher.decrypt(row.body, body_aad("Patient", "someone-else"))


def test_a_bad_line_is_reported_with_file_and_line_and_the_rest_is_stored(
    db, cipher, clock, tmp_path
):
    folder = tmp_path / "in"
    folder.mkdir()
    good = {"resourceType": "Patient", "id": "p1"}
    path = folder / "Patient.ndjson"
    path.write_text(
        json.dumps(good)
        + "\n{not json\n"
        + json.dumps({"resourceType": "Patient", "id": "bad id"})
        + "\n"
        + json.dumps(appointment("booked", "2026-11-24T10:00:00"))
        + "\n"
        + json.dumps({**good, "id": "p2"})
        + "\n"
    )
    report = sync_folder(db, cipher, clock, folder)
    reasons = {r.where: r.reason for r in report.rejected}
    assert set(reasons) == {"Patient.ndjson:2", "Patient.ndjson:3", "Patient.ndjson:4"}
    assert "not valid JSON" in reasons["Patient.ndjson:2"]
    assert "not a valid FHIR id" in reasons["Patient.ndjson:3"]
    assert reasons["Patient.ndjson:4"].startswith(
        "Appointment/a1: `start` has a time but no time zone"
    )
    assert report.created == 2


def test_a_bundle_resolves_urn_uuid_references_and_names_bad_entries(db, cipher, clock, tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b7b2f30-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:0b7b2f30-0000-4000-8000-000000000002",
                "resource": {
                    "resourceType": "Appointment",
                    "status": "booked",
                    "start": "2026-11-24T15:00:00Z",
                    "end": "2026-11-24T15:20:00Z",
                    "participant": [
                        {"actor": {"reference": "urn:uuid:0b7b2f30-0000-4000-8000-000000000001"}}
                    ],
                },
                "request": {"method": "POST", "url": "Appointment"},
            },
            {"resource": {"resourceType": "Slot", "id": "s1"}},
        ],
    }
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    report = sync_folder(db, cipher, clock, tmp_path)
    assert [(r.where, r.reason) for r in report.rejected] == [
        ("bundle.json entry 3", "Slot/s1: `schedule` is missing")
    ]
    with db.transaction() as s:
        appt = s.execute(select(Appointment)).scalar_one()
    assert appt.patient_id == "0b7b2f30-0000-4000-8000-000000000001"


def test_the_newer_last_updated_wins_and_an_older_copy_is_ignored(db, cipher, clock, tmp_path):
    path = tmp_path / "a.ndjson"
    write_ndjson(path, [appointment("booked", "2026-11-24T15:00:00Z", "2026-11-20T10:00:00Z")])
    sync_folder(db, cipher, clock, path)
    write_ndjson(path, [appointment("cancelled", "2026-11-24T15:00:00Z", "2026-11-19T10:00:00Z")])
    older = sync_folder(db, cipher, clock, path)
    assert (older.updated, older.unchanged) == (0, 1)
    write_ndjson(path, [appointment("cancelled", "2026-11-24T15:00:00Z", "2026-11-21T10:00:00Z")])
    newer = sync_folder(db, cipher, clock, path)
    assert newer.updated == 1
    with db.transaction() as s:
        assert s.execute(select(Appointment.status)).scalar_one() == "cancelled"


def test_without_last_updated_the_content_decides(db, cipher, clock, tmp_path):
    path = tmp_path / "a.ndjson"
    write_ndjson(path, [appointment("booked", "2026-11-24T15:00:00Z")])
    sync_folder(db, cipher, clock, path)
    assert sync_folder(db, cipher, clock, path).unchanged == 1
    write_ndjson(path, [appointment("booked", "2026-11-24T16:00:00Z")])
    assert sync_folder(db, cipher, clock, path).updated == 1


def test_a_cancellation_is_written_as_an_event_with_the_change(db, cipher, clock, tmp_path):
    start = (clock.now() + timedelta(days=2)).isoformat()
    path = tmp_path / "a.ndjson"
    write_ndjson(path, [appointment("booked", start)])
    first = sync_folder(db, cipher, clock, path)
    write_ndjson(path, [appointment("cancelled", start)])
    second = sync_folder(db, cipher, clock, path)
    assert (first.events, second.events) == (1, 1)
    with db.transaction() as s:
        types = s.execute(select(Event.type).order_by(Event.id)).scalars().all()
    assert types == ["appointment.booked", "appointment.cancelled"]


def test_lookups_by_phone_use_keyed_hashes(db, cipher, clock, tmp_path):
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "telecom": [{"system": "phone", "value": "(555) 010-0199", "use": "mobile"}],
    }
    write_ndjson(tmp_path / "p.ndjson", [patient])
    sync_folder(db, cipher, clock, tmp_path)
    digest = cipher.blind_index("phone", "+1 555 010 0199")
    with db.transaction() as s:
        found = s.execute(select(LookupIndex.fhir_id).where(LookupIndex.digest == digest)).all()
    assert [f.fhir_id for f in found] == ["p1"]


def test_no_identifier_is_readable_in_the_sqlite_files(sqlite_db, cipher, clock, tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "in")
    sync_folder(sqlite_db, cipher, clock, tmp_path / "in")
    identifiers = set()
    for line in (SAMPLE / "Patient.000.ndjson").open():
        patient = json.loads(line)
        identifiers.update(n["family"] for n in patient["name"])
        identifiers.update(t["value"] for t in patient.get("telecom", []))
        identifiers.add(patient["birthDate"])
        identifiers.update(a["line"][0] for a in patient.get("address", []))
    db_file = Path(sqlite_db.engine.url.database)
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert len(identifiers) > 30
    assert [i for i in identifiers if i.encode() in raw] == []


def test_the_audit_log_finds_a_sync_by_the_patient_whose_data_it_wrote(db, cipher, clock):
    from clinicflow.store.audit import audit_resource

    sync_folder(db, cipher, clock, SAMPLE)
    with db.transaction() as s:
        patient_id = s.execute(select(Encounter.patient_id).limit(1)).scalar_one()
        seqs = (
            s.execute(
                select(audit_resource.c.seq).where(audit_resource.c.ref == f"Patient/{patient_id}")
            )
            .scalars()
            .all()
        )
        actions = s.execute(select(audit_log.c.action).where(audit_log.c.seq.in_(seqs))).scalars()
        assert set(actions) == {"sync"}
    assert seqs


def test_an_edit_with_the_same_last_updated_but_new_content_is_taken(db, cipher, clock, tmp_path):
    path = tmp_path / "a.ndjson"
    stamp = "2026-11-20T10:00:00Z"
    write_ndjson(path, [appointment("booked", "2026-11-24T15:00:00Z", stamp)])
    sync_folder(db, cipher, clock, path)
    write_ndjson(path, [appointment("cancelled", "2026-11-24T15:00:00Z", stamp)])
    assert sync_folder(db, cipher, clock, path).updated == 1


def test_long_free_text_never_aborts_a_sync_on_either_database(db, cipher, clock, tmp_path):
    long_text = "Follow-up visit for hypertension review and medication check"
    res = appointment("booked", "2026-11-24T15:00:00Z", appointmentType={"text": long_text})
    write_ndjson(tmp_path / "a.ndjson", [res])
    report = sync_folder(db, cipher, clock, tmp_path)
    assert (report.created, report.rejected) == (1, [])
    with db.transaction() as s:
        assert s.execute(select(Appointment.appointment_type)).scalar_one() == long_text[:32]


def _schema_differences(db) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from clinicflow.store.models import metadata

    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_a_first_load_builds_its_indexes_at_the_end_and_leaves_the_schema_whole(db, cipher, clock):
    sync_folder(db, cipher, clock, SAMPLE)
    assert _schema_differences(db) == []


def test_an_index_lost_by_an_interrupted_load_is_rebuilt_by_the_next_sync(
    db, cipher, clock, tmp_path
):
    from sqlalchemy import text

    sync_folder(db, cipher, clock, SAMPLE)
    with db.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_appointments_patient_start"))
    assert _schema_differences(db) != []
    sync_folder(db, cipher, clock, SAMPLE)
    assert _schema_differences(db) == []
