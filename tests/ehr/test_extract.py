"""Typed columns and lookups pulled from resources; errors for what the replica cannot take."""

from datetime import UTC, date, datetime

import pytest

from clinicflow.ehr.extract import extract
from clinicflow.ehr.validate import check_resource
from clinicflow.errors import InputError

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Rivera", "given": ["Juana"]}],
    "birthDate": "1980-04-02",
    "gender": "female",
    "telecom": [
        {"system": "email", "value": "j@example.org", "rank": 2},
        {"system": "phone", "value": "+1 555 010 0001", "use": "mobile", "rank": 1},
    ],
    "communication": [
        {
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]},
            "preferred": True,
        }
    ],
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "America/Chicago"}
    ],
}


def test_patient_columns_hold_no_direct_identifiers():
    ex = extract(PATIENT)
    assert ex.row == {
        "fhir_id": "p1",
        "active": True,
        "gender": "female",
        "birth_year": 1980,
        "deceased": False,
        "time_zone": "America/Chicago",
        "language": "es",
        "preferred_channel": "sms",
        "general_practitioner_id": None,
        "replaced_by": None,
    }
    assert "Rivera" not in repr(ex.row)
    kinds = {kind for kind, _ in ex.lookups}
    assert kinds == {"phone", "email", "name", "family", "birthdate"}


def merged(*links: dict) -> dict:
    return {"resourceType": "Patient", "id": "p1", "active": False, "link": list(links)}


def test_a_merged_away_patient_names_the_record_it_was_replaced_by():
    ex = extract(merged({"other": {"reference": "Patient/p2"}, "type": "replaced-by"}))
    assert ex.row is not None
    assert ex.row["replaced_by"] == "p2"


def test_the_first_replaced_by_link_to_a_patient_wins():
    ex = extract(
        merged(
            {"other": {"reference": "RelatedPerson/r1"}, "type": "replaced-by"},
            {
                "other": {"reference": "https://ehr.example.org/fhir/Patient/p2"},
                "type": "replaced-by",
            },
            {"other": {"reference": "Patient/p3"}, "type": "replaced-by"},
        )
    )
    assert ex.row is not None
    assert ex.row["replaced_by"] == "p2"


@pytest.mark.parametrize("link_type", ["replaces", "refer", "seealso"])
def test_links_other_than_replaced_by_do_not_merge_this_record(link_type):
    ex = extract(merged({"other": {"reference": "Patient/p2"}, "type": link_type}))
    assert ex.row is not None
    assert ex.row["replaced_by"] is None


def test_a_replaced_by_link_to_a_contained_patient_is_not_a_merge():
    resource = merged({"other": {"reference": "#old"}, "type": "replaced-by"})
    ex = extract({**resource, "contained": [{"resourceType": "Patient", "id": "old"}]})
    assert ex.row is not None
    assert ex.row["replaced_by"] is None


def test_a_replaced_by_link_by_identifier_waits_for_the_surviving_record():
    other = {"reference": "Patient?identifier=http://hospital.example.org/mrn|MRN-2"}
    ex = extract(merged({"other": other, "type": "replaced-by"}))
    assert ex.row is not None
    assert ex.row["replaced_by"] is None
    assert [(col, ref.value) for col, ref in ex.pending] == [("replaced_by", "MRN-2")]


def test_appointment_columns_come_from_participants_and_slot():
    ex = extract(
        {
            "resourceType": "Appointment",
            "id": "a1",
            "status": "booked",
            "start": "2026-11-24T09:00:00-05:00",
            "end": "2026-11-24T09:20:00-05:00",
            "created": "2026-11-01T12:00:00Z",
            "slot": [{"reference": "Slot/s1"}],
            "appointmentType": {"coding": [{"code": "FOLLOWUP"}]},
            "participant": [
                {"actor": {"reference": "Patient/p1"}, "status": "needs-action"},
                {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
                {"actor": {"reference": "Location/l1"}, "status": "accepted"},
            ],
        }
    )
    assert ex.row is not None
    assert ex.row["start_at"] == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert ex.row["patient_id"] == "p1"
    assert ex.row["patient_status"] == "needs-action"
    assert ex.row["practitioner_id"] == "dr1"
    assert ex.row["location_id"] == "l1"
    assert ex.row["slot_id"] == "s1"
    assert ex.row["appointment_type"] == "FOLLOWUP"
    assert ex.patient_id == "p1"


def test_a_waitlist_entry_needs_no_start_but_keeps_its_requested_period():
    ex = extract(
        {
            "resourceType": "Appointment",
            "id": "w1",
            "status": "waitlist",
            "requestedPeriod": [{"start": "2026-11-25", "end": "2026-12-05"}],
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}],
        }
    )
    assert ex.row is not None
    assert ex.row["requested_start_on"] == date(2026, 11, 25)
    assert ex.row["start_at"] is None


def test_a_booked_appointment_without_start_is_rejected_naming_the_field():
    with pytest.raises(InputError, match="`start` is missing"):
        extract(
            {
                "resourceType": "Appointment",
                "id": "a2",
                "status": "booked",
                "participant": [{"actor": {"reference": "Patient/p1"}}],
            }
        )


def test_a_time_without_offset_is_rejected_rather_than_guessed():
    with pytest.raises(InputError, match="no time zone offset"):
        extract(
            {
                "resourceType": "Slot",
                "id": "s1",
                "schedule": {"reference": "Schedule/x"},
                "status": "free",
                "start": "2026-11-24T09:00:00",
                "end": "2026-11-24T09:20:00Z",
            }
        )


def test_a_conditional_reference_is_left_pending_for_later_resolution():
    ex = extract(
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "participant": [
                {
                    "individual": {
                        "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|42"
                    }
                }
            ],
        }
    )
    assert ex.row is not None
    assert ex.row["practitioner_id"] is None
    assert [(col, ref.value) for col, ref in ex.pending] == [("practitioner_id", "42")]


def test_a_contained_location_is_resolved_inside_its_resource():
    ex = extract(
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": {"code": "AMB"},
            "contained": [{"resourceType": "Location", "id": "loc1"}],
            "location": [{"location": {"reference": "#loc1"}}],
        }
    )
    assert ex.row is not None
    assert ex.row["location_id"] == "#loc1"


def test_other_resource_types_are_kept_with_their_patient_compartment():
    ex = extract({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p9"}})
    assert ex.row is None
    assert ex.patient_id == "p9"


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ([], "expected a JSON object"),
        ({"id": "x"}, "`resourceType` is missing"),
        ({"resourceType": "Pateint", "id": "x"}, "not a FHIR R4 resource type"),
        ({"resourceType": "Patient"}, "`id` is missing"),
        ({"resourceType": "Patient", "id": "has space"}, "not a valid FHIR id"),
    ],
)
def test_malformed_resources_are_rejected_with_what_is_wrong(resource, message):
    with pytest.raises(InputError, match=message):
        check_resource(resource)


def test_long_free_text_codes_are_cut_to_their_column_and_identifier_queries_are_not_kept():
    ex = extract(
        {
            "resourceType": "Communication",
            "id": "c1",
            "status": "completed",
            "medium": [{"text": "Patient portal secure message via the mobile application"}],
            "sender": {
                "reference": "Patient?identifier=http://hospital.example.org/mrn|MRN-4471902"
            },
            "recipient": [{"reference": "Practitioner/d1"}],
        }
    )
    assert ex.row is not None
    assert ex.row["medium"] == "Patient portal secure message via"[:32]
    assert ex.row["sender_ref"] == "Patient"
    assert ex.row["recipient_ref"] == "Practitioner/d1"
    assert "MRN" not in repr(ex.row)


def test_an_impossible_calendar_date_is_an_input_error_not_a_crash():
    with pytest.raises(InputError, match="not a real calendar date"):
        extract(
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "finished",
                "class": {"code": "AMB"},
                "period": {"start": "2024-02-30"},
            }
        )


def test_a_status_that_is_not_a_code_is_refused():
    with pytest.raises(InputError, match="not a status code"):
        extract(
            {
                "resourceType": "Coverage",
                "id": "v1",
                "status": "active but with a long free-text explanation",
                "beneficiary": {"reference": "Patient/p1"},
                "payor": [{"reference": "Organization/o1"}],
            }
        )
