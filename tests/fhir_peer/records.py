"""One stored resource version: its JSON bytes plus the few fields searches and exports need.

Resources are kept as serialized bytes, not dicts: a parsed FHIR resource costs several times
its JSON size in Python objects, and a 50,000-patient practice (~290,000 resources, ~250 MB of
NDJSON) must fit one process. Each Record is an immutable tuple, so an export job can hold the
exact versions it snapshotted at kick-off while later writes replace them in the store.
"""

from __future__ import annotations

import re
import sys
from typing import Any, NamedTuple

from tests.fhir_peer.fhirtime import point_micros

# Elements whose reference puts a resource into a Patient's compartment (for Patient and Group
# exports and the Appointment `patient` search): Appointment.participant.actor,
# Coverage.beneficiary, Communication.subject, Encounter.subject and the like.
_PATIENT_ELEMENTS = ("patient", "subject", "beneficiary")
# "Patient/123", "Patient/123/_history/2" or an absolute ".../fhir/Patient/123".
_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


class Record(NamedTuple):
    """A stored resource version and its search index fields."""

    resource_type: str
    id: str
    version: int
    last_updated: int  # microseconds since the epoch (meta.lastUpdated)
    raw: bytes  # exactly what reads, searches and export files serve
    is_json: bool  # False for put_raw bytes that are not JSON at all
    status: str | None
    start: int | None  # Appointment.start (and any top-level `start`) in microseconds
    patients: tuple[str, ...]  # ids of Patients this resource references (compartment)
    identifiers: tuple[str, ...]  # "system|value" (system empty when absent)

    @property
    def key(self) -> tuple[int, str]:
        """Search and export order: by lastUpdated, then id, so paging is deterministic."""
        return (self.last_updated, self.id)


def patient_reference_id(reference: object) -> str | None:
    """The Patient id a Reference object points to, or None (not a Patient reference)."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    match = _PATIENT_REF.search(text)
    # Interned: each patient is referenced by many appointments, coverages and messages.
    return sys.intern(match.group(1)) if match else None


def patient_ids(resource: dict[str, Any]) -> tuple[str, ...]:
    """Patients referenced from patient/subject/beneficiary/participant.actor, in order."""
    found: list[str] = []
    for element in _PATIENT_ELEMENTS:
        patient = patient_reference_id(resource.get(element))
        if patient is not None:
            found.append(patient)
    participants = resource.get("participant")
    if isinstance(participants, list):
        for participant in participants:
            if isinstance(participant, dict):
                patient = patient_reference_id(participant.get("actor"))
                if patient is not None:
                    found.append(patient)
    return tuple(dict.fromkeys(found))


def identifier_tokens(resource: dict[str, Any]) -> tuple[str, ...]:
    """`identifier` entries as "system|value" tokens for conditional create."""
    identifiers = resource.get("identifier")
    if isinstance(identifiers, dict):  # some resources (Appointment R5-style) have one
        identifiers = [identifiers]
    if not isinstance(identifiers, list):
        return ()
    tokens: list[str] = []
    for item in identifiers:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            system = item.get("system")
            tokens.append(f"{system if isinstance(system, str) else ''}|{item['value']}")
    return tuple(tokens)


def make_record(
    resource_type: str,
    fhir_id: str,
    version: int,
    last_updated: int,
    raw: bytes,
    parsed: object,
    is_json: bool = True,
) -> Record:
    """A Record for `raw`, indexing what can be read from `parsed` (any shape is tolerated)."""
    status: str | None = None
    start: int | None = None
    patients: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    if isinstance(parsed, dict):
        value = parsed.get("status")
        # Interned: a few distinct statuses shared by hundreds of thousands of records.
        status = sys.intern(value) if isinstance(value, str) else None
        start = point_micros(parsed.get("start"))
        patients = patient_ids(parsed)
        identifiers = identifier_tokens(parsed)
    return Record(
        resource_type=sys.intern(resource_type),
        id=fhir_id,
        version=version,
        last_updated=last_updated,
        raw=raw,
        is_json=is_json,
        status=status,
        start=start,
        patients=patients,
        identifiers=identifiers,
    )


def version_of(meta: object) -> int:
    """meta.versionId as an int; 1 when absent or not a number (loaded data may lack it)."""
    if isinstance(meta, dict):
        value = meta.get("versionId")
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return 1
