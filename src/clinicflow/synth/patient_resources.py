"""FHIR R4 Patient and Coverage resources."""

from __future__ import annotations

from clinicflow.synth.codes import (
    BCP47,
    COVERAGE_CLASS,
    MRN_SYSTEM,
    SUBSCRIBER_RELATIONSHIP,
    TIMEZONE_EXTENSION,
)
from clinicflow.synth.coverage import Policy
from clinicflow.synth.elements import Resource, concept, meta, ref
from clinicflow.synth.people import Patient
from clinicflow.synth.practice import Practice

_RELATIONSHIPS = {"self": "Self", "spouse": "Spouse", "child": "Child"}


def telecom(patient: Patient) -> list[dict[str, object]]:
    """Phones and email, ranked so that rank 1 is the channel the patient prefers."""
    points: list[dict[str, object]] = []
    if patient.mobile:
        points.append({"system": "phone", "value": patient.mobile, "use": "mobile"})
    if patient.home_phone:
        points.append({"system": "phone", "value": patient.home_phone, "use": "home"})
    if patient.email:
        email: dict[str, object] = {"system": "email", "value": patient.email, "use": "home"}
        points.insert(0 if patient.prefers_email else len(points), email)
    for rank, point in enumerate(points, start=1):
        point["rank"] = rank
    return points


def patient_resource(patient: Patient, practice: Practice) -> Resource:
    """A patient; the time zone extension only for those living outside the practice's zone."""
    resource: Resource = {
        "resourceType": "Patient",
        "id": patient.id,
        "meta": meta(patient.updated_s),
    }
    if patient.time_zone:
        resource["extension"] = [{"url": TIMEZONE_EXTENSION, "valueCode": patient.time_zone}]
    resource |= {
        "identifier": [{"system": MRN_SYSTEM, "value": patient.mrn}],
        "active": True,
        "name": [{"use": "official", "family": patient.family, "given": list(patient.given)}],
        "telecom": telecom(patient),
        "gender": patient.gender,
        "birthDate": patient.birth_on.isoformat(),
        "address": [
            {
                "use": "home",
                "line": list(patient.address),
                "city": patient.city,
                "state": patient.state,
                "postalCode": patient.postal_code,
                "country": "US",
            }
        ],
    }
    if patient.language:
        language = {"coding": [{"system": BCP47, "code": patient.language}]}
        resource["communication"] = [{"language": language, "preferred": True}]
    resource["generalPractitioner"] = [
        ref("Practitioner", practice.clinicians[patient.gp_index].id)
    ]
    resource["managingOrganization"] = ref("Organization", practice.id)
    return resource


def coverage_resource(policy: Policy, patients: list[Patient], practice: Practice) -> Resource:
    """An active Coverage: beneficiary, subscriber, payer and plan."""
    payer = practice.payers[policy.payer_index]
    return {
        "resourceType": "Coverage",
        "id": policy.id,
        "meta": meta(policy.updated_s),
        "status": "active",
        "subscriber": ref("Patient", patients[policy.subscriber_index].id),
        "subscriberId": policy.subscriber_id,
        "beneficiary": ref("Patient", patients[policy.patient_index].id),
        "relationship": concept(
            SUBSCRIBER_RELATIONSHIP, policy.relationship, _RELATIONSHIPS[policy.relationship]
        ),
        "period": {"start": policy.start_on.isoformat()},
        "payor": [ref("Organization", payer.id)],
        "class": [
            {
                "type": concept(COVERAGE_CLASS, "plan", "Plan"),
                "value": policy.plan[0],
                "name": policy.plan[1],
            }
        ],
    }
