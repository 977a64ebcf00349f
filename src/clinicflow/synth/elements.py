"""FHIR data types as JSON-ready dicts: references, codings, meta."""

from __future__ import annotations

from functools import cache

from clinicflow.synth.codes import NUCC_TAXONOMY, SERVICE_TYPE
from clinicflow.synth.specialties import Specialty
from clinicflow.synth.timeline import utc_text

Resource = dict[str, object]


def ref(resource_type: str, fhir_id: str) -> dict[str, str]:
    """A literal reference (`Patient/ID`)."""
    return {"reference": f"{resource_type}/{fhir_id}"}


def concept(system: str, code: str, display: str) -> dict[str, object]:
    """A CodeableConcept with one coding."""
    return {"coding": [{"system": system, "code": code, "display": display}]}


def meta(updated_s: int) -> dict[str, str]:
    """`meta` with `lastUpdated`."""
    return {"lastUpdated": utc_text(updated_s)}


# Cached: every appointment and slot of a specialty shares one (never mutated) dict.
@cache
def specialty_concept(specialty: Specialty) -> dict[str, object]:
    """The specialty as a NUCC provider taxonomy coding."""
    return concept(NUCC_TAXONOMY, specialty.nucc_code, specialty.display)


@cache
def service_concept(specialty: Specialty) -> dict[str, object]:
    """The specialty's HL7 service type."""
    return concept(SERVICE_TYPE, specialty.service_code, specialty.service_display)
