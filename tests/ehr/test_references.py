"""Parsing FHIR references: literal, absolute, versioned, conditional, logical, contained and
urn:uuid."""

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.ehr.references import (
    ContainedRef,
    IdentifierRef,
    LiteralRef,
    bundle_urn_map,
    parse_reference,
    rewrite_references,
)

fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


def test_relative_absolute_and_versioned_references_name_the_same_resource():
    for text in (
        "Patient/123",
        "https://ehr.example.org/fhir/R4/Patient/123",
        "Patient/123/_history/4",
    ):
        assert parse_reference({"reference": text}) == LiteralRef("Patient", "123")


def test_a_conditional_reference_becomes_an_identifier_lookup():
    ref = parse_reference(
        {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493"}
    )
    assert ref == IdentifierRef("Practitioner", "http://hl7.org/fhir/sid/us-npi", "9999974493")
    assert ref.lookup_value == "http://hl7.org/fhir/sid/us-npi|9999974493"


def test_a_logical_reference_uses_the_expected_type_when_none_is_written():
    ref = parse_reference(
        {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1"}},
        expected_type="Practitioner",
    )
    assert ref == IdentifierRef("Practitioner", "http://hl7.org/fhir/sid/us-npi", "1")


def test_a_contained_reference_takes_its_type_from_the_contained_resource():
    contained = {"loc1": {"resourceType": "Location", "id": "loc1"}}
    assert parse_reference({"reference": "#loc1"}, contained=contained) == ContainedRef(
        "loc1", "Location"
    )


def test_references_that_point_nowhere_followable_are_none():
    assert parse_reference(None) is None
    assert parse_reference({"display": "Dr. Who"}) is None
    assert parse_reference({"reference": "Practitioner?name=smith"}) is None


def test_urn_uuid_references_in_a_bundle_are_rewritten_to_type_and_id():
    entries = [
        {"fullUrl": "urn:uuid:aaa", "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "urn:uuid:bbb", "resource": {"resourceType": "Encounter"}},
    ]
    mapping = bundle_urn_map(entries)
    assert mapping == {"urn:uuid:aaa": "Patient/p1", "urn:uuid:bbb": "Encounter/bbb"}
    obs = {"subject": {"reference": "urn:uuid:aaa"}, "x": [{"reference": "urn:uuid:bbb"}]}
    assert rewrite_references(obs, mapping) == {
        "subject": {"reference": "Patient/p1"},
        "x": [{"reference": "Encounter/bbb"}],
    }


@given(rtype=st.sampled_from(["Patient", "Slot", "Appointment"]), rid=fhir_ids)
def test_any_valid_literal_reference_round_trips(rtype, rid):
    assert parse_reference({"reference": f"{rtype}/{rid}"}) == LiteralRef(rtype, rid)
