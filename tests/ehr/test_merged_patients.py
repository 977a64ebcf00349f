"""Merged patients (Patient.link replaced-by) and resources that come back after removal, written
through a real sync on SQLite and PostgreSQL: automations see the surviving patient, a merge can be
undone, and a returning resource is stored again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from clinicflow.ehr import sync_folder
from clinicflow.ehr.merges import PATIENT_TABLES, merged_into, survivor
from clinicflow.store.engine import Event
from clinicflow.store.replica import (
    Appointment,
    Communication,
    Coverage,
    Encounter,
    FhirResource,
    Patient,
)


@pytest.fixture
def sync(db, cipher, clock, tmp_path):
    """Sync the given resources as one NDJSON file (one batch), as `sync folder` would."""
    calls = iter(range(1_000))

    def run(*resources: dict):
        path = tmp_path / f"sync-{next(calls)}.ndjson"
        path.write_text("".join(json.dumps(r) + "\n" for r in resources))
        report = sync_folder(db, cipher, clock, path)
        assert report.rejected == []
        return report

    return run


def patient(fhir_id: str, replaced_by: str | None = None, *, via: str = "replaced-by") -> dict:
    res: dict = {"resourceType": "Patient", "id": fhir_id, "gender": "female"}
    if replaced_by is not None:
        res["link"] = [{"other": {"reference": f"Patient/{replaced_by}"}, "type": via}]
    return res


def appointment(fhir_id: str, patient_id: str, start: str) -> dict:
    end = start.replace(":00:00", ":20:00")
    return {
        "resourceType": "Appointment",
        "id": fhir_id,
        "status": "booked",
        "start": start,
        "end": end,
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    }


def coverage(fhir_id: str, patient_id: str) -> dict:
    return {
        "resourceType": "Coverage",
        "id": fhir_id,
        "status": "active",
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "payor": [{"reference": "Organization/payer1"}],
    }


def communication(fhir_id: str, patient_id: str) -> dict:
    return {
        "resourceType": "Communication",
        "id": fhir_id,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def encounter(fhir_id: str, patient_id: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": fhir_id,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


@pytest.fixture
def start(clock) -> str:
    return (clock.now() + timedelta(days=2)).replace(minute=0).isoformat()


def patient_of(db, model, fhir_id: str) -> str | None:
    with db.transaction() as s:
        return s.execute(select(model.patient_id).where(model.fhir_id == fhir_id)).scalar_one()


def compartment_of(db, resource_type: str, fhir_id: str) -> str | None:
    with db.transaction() as s:
        return s.execute(
            select(FhirResource.patient_id).where(
                FhirResource.resource_type == resource_type, FhirResource.fhir_id == fhir_id
            )
        ).scalar_one()


def test_an_appointment_stored_before_the_merge_names_the_survivor_once_the_merge_arrives(
    db, sync, start
):
    sync(patient("a"), patient("b"), appointment("appt1", "a", start))
    assert patient_of(db, Appointment, "appt1") == "a"
    report = sync(patient("a", replaced_by="b"))
    assert report.updated == 1
    assert patient_of(db, Appointment, "appt1") == "b"
    with db.transaction() as s:
        assert s.get(Patient, "a").replaced_by == "b"
    assert compartment_of(db, "Appointment", "appt1") == "a"  # as the EHR wrote it


def test_an_appointment_stored_after_the_merge_names_the_survivor_and_so_does_its_event(
    db, sync, start
):
    sync(patient("a", replaced_by="b"), patient("b"))
    report = sync(appointment("appt1", "a", start))
    assert report.events == 1
    assert patient_of(db, Appointment, "appt1") == "b"
    with db.transaction() as s:
        event = s.execute(select(Event).where(Event.resource_id == "appt1")).scalar_one()
    assert event.type == "appointment.booked"
    assert event.payload["patient_id"] == "b"


def test_a_merge_and_a_new_appointment_in_the_same_batch_name_the_survivor(db, sync, start):
    sync(appointment("appt1", "a", start), patient("a", replaced_by="b"), patient("b"))
    assert patient_of(db, Appointment, "appt1") == "b"
    with db.transaction() as s:
        payload = s.execute(select(Event.payload)).scalar_one()
    assert payload["patient_id"] == "b"


def test_every_typed_table_with_a_patient_follows_a_chain_of_merges_to_its_end(db, sync, start):
    sync(
        appointment("appt1", "a", start),
        coverage("cov1", "a"),
        communication("msg1", "b"),
        encounter("enc1", "a"),
    )
    sync(patient("a", replaced_by="b"))
    sync(patient("b", replaced_by="c"))
    for model, fhir_id in [
        (Appointment, "appt1"),
        (Coverage, "cov1"),
        (Communication, "msg1"),
        (Encounter, "enc1"),
    ]:
        assert patient_of(db, model, fhir_id) == "c", model.__tablename__
    sync(appointment("appt2", "a", start))
    assert patient_of(db, Appointment, "appt2") == "c"


def test_a_cycle_of_merges_ends_the_sync_and_names_a_patient_of_the_cycle(db, sync, start):
    sync(appointment("appt1", "a", start), patient("self", replaced_by="self"))
    sync(patient("a", replaced_by="b"), patient("b", replaced_by="a"))
    assert patient_of(db, Appointment, "appt1") in {"a", "b"}
    sync(appointment("appt2", "self", start))
    assert patient_of(db, Appointment, "appt2") == "self"


def test_undoing_a_merge_gives_the_patient_and_those_merged_into_it_their_rows_back(
    db, sync, start
):
    sync(
        patient("a", replaced_by="b"),
        patient("x", replaced_by="a"),
        appointment("appt-a", "a", start),
        appointment("appt-x", "x", start),
        appointment("appt-b", "b", start),
    )
    assert {patient_of(db, Appointment, f"appt-{p}") for p in "axb"} == {"b"}
    sync(patient("a"))
    assert patient_of(db, Appointment, "appt-a") == "a"
    assert patient_of(db, Appointment, "appt-x") == "a"
    assert patient_of(db, Appointment, "appt-b") == "b"


def test_a_link_that_is_not_replaced_by_leaves_the_rows_with_their_patient(db, sync, start):
    sync(appointment("appt1", "a", start), patient("a", replaced_by="b", via="seealso"))
    assert patient_of(db, Appointment, "appt1") == "a"


def test_a_merge_to_a_survivor_found_by_identifier_renames_rows_once_it_resolves(db, sync, start):
    survivor_record = {
        **patient("b"),
        "identifier": [{"system": "http://hospital.example.org/mrn", "value": "MRN-2"}],
    }
    merged_away = {
        **patient("a"),
        "link": [
            {
                "other": {"reference": "Patient?identifier=http://hospital.example.org/mrn|MRN-2"},
                "type": "replaced-by",
            }
        ],
    }
    report = sync(appointment("appt1", "a", start), merged_away, survivor_record)
    assert report.unresolved_references == 0
    assert patient_of(db, Appointment, "appt1") == "b"


def test_a_removed_appointment_that_comes_back_unchanged_is_stored_again(db, sync, start):
    appt = appointment("appt1", "a", start)
    sync(appt)
    with db.transaction() as s:
        s.execute(
            update(FhirResource)
            .where(FhirResource.fhir_id == "appt1")
            .values(removed_at=FhirResource.updated_at)
        )
        s.execute(delete(Appointment).where(Appointment.fhir_id == "appt1"))
    report = sync(appt)
    assert (report.updated, report.unchanged) == (1, 0)
    assert patient_of(db, Appointment, "appt1") == "a"
    with db.transaction() as s:
        removed_at = s.execute(
            select(FhirResource.removed_at).where(FhirResource.fhir_id == "appt1")
        ).scalar_one()
    assert removed_at is None
    assert sync(appt).unchanged == 1  # and, stored again, it is current


merge_maps = st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from("abcdefgh"), max_size=8)


@given(merge_maps, st.sampled_from("abcdefgh"))
def test_the_survivor_is_on_the_patients_chain_and_nobody_on_it_was_left_before_it(
    replaced_by, start_id
):
    end = survivor(start_id, replaced_by)
    chain = [start_id]
    while chain[-1] != end:
        chain.append(replaced_by[chain[-1]])
    assert len(chain) == len(set(chain))  # it got there without going round a cycle
    if end in replaced_by:  # only a cycle (or a self-link) stops at a merged-away record
        assert replaced_by[end] in chain


@given(merge_maps, st.sets(st.sampled_from("abcdefgh"), max_size=3))
def test_merged_into_finds_exactly_the_patients_whose_chain_passes_through_the_given_ones(
    replaced_by, targets
):
    def passes(patient_id: str) -> bool:
        seen = {patient_id}
        current = patient_id
        while current not in targets and replaced_by.get(current) not in (None, *seen):
            current = replaced_by[current]
            seen.add(current)
        return current in targets

    everyone = set(replaced_by) | set(replaced_by.values()) | targets
    assert merged_into(targets, replaced_by) == {p for p in everyone if passes(p)}


def test_the_tables_renamed_are_those_with_a_patient_column_except_patients_itself():
    assert set(PATIENT_TABLES) == {"Appointment", "Communication", "Coverage", "Encounter"}
