"""Typed query columns, lookup values and references pulled out of a FHIR resource (pure).

Each extractor validates what the replica relies on (FHIR R4 cardinalities and invariants such as
app-3) and raises InputError naming the field; everything else stays in the stored body untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clinicflow.ehr.fhirtime import parse_date, parse_instant
from clinicflow.ehr.references import (
    ContainedRef,
    IdentifierRef,
    LiteralRef,
    Ref,
    contained_by_id,
    parse_reference,
)
from clinicflow.errors import InputError

TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
# Types whose identifiers are indexed so conditional references (`Type?identifier=`) can resolve.
IDENTIFIER_INDEXED = frozenset({"Patient", "Practitioner", "Organization", "Location"})

Resource = Mapping[str, Any]
# JSON parsers hand us dicts; `isinstance(x, dict)` is several times cheaper than an ABC check
# on the bulk-sync path, so element checks below test for dict rather than Mapping.


@dataclass(slots=True)
class Extracted:
    """What the replica stores beside the encrypted body."""

    row: dict[str, Any] | None
    patient_id: str | None
    lookups: list[tuple[str, str]] = field(default_factory=list)
    pending: list[tuple[str, IdentifierRef]] = field(default_factory=list)


class _Refs:
    """Resolves references of one resource into typed-column values, noting unresolved ones."""

    def __init__(self, resource: Resource) -> None:
        self.contained = contained_by_id(resource)
        self.pending: list[tuple[str, IdentifierRef]] = []

    def parse(self, reference: Any, expected_type: str | None = None) -> Ref | None:
        """Parse one Reference element (None when it is absent or not followable)."""
        if not isinstance(reference, dict):
            return None
        return parse_reference(reference, expected_type=expected_type, contained=self.contained)

    def id_of(self, reference: Any, target: str, column: str) -> str | None:
        """The FHIR id of `target` this reference points at (`#id` for a contained resource)."""
        return self.resolved_id(self.parse(reference, target), target, column)

    def resolved_id(self, ref: Ref | None, target: str, column: str) -> str | None:
        """The id of an already parsed reference if it points at `target`; conditional ones wait."""
        if ref is None or ref.resource_type != target:
            return None
        if isinstance(ref, LiteralRef):
            return ref.fhir_id
        if isinstance(ref, IdentifierRef):
            self.pending.append((column, ref))
            return None
        return f"#{ref.contained_id}"

    def type_of(self, reference: Any) -> str | None:
        """The resource type a reference points at, if it can be told."""
        ref = self.parse(reference)
        return ref.resource_type if ref is not None else None


# Typed columns are short (PostgreSQL enforces varchar lengths): codes and free text are cut to
# these, so a long free-text concept is kept whole in the body but never aborts a sync.
CODE_LENGTH = 32


def _short(value: Any, limit: int) -> str | None:
    """A short string column's value: text cut to `limit`, None for anything else."""
    return value[:limit] if isinstance(value, str) and value else None


def _literal_text(ref: Ref | None) -> str | None:
    """`Type/id` for a literal reference; the type alone otherwise (never an identifier query)."""
    if isinstance(ref, LiteralRef):
        return f"{ref.resource_type}/{ref.fhir_id}"[:140]
    return ref.resource_type if ref is not None else None


def _first_code(concepts: Any) -> str | None:
    """The first coding's code of a CodeableConcept or a list of them (else its text), cut short."""
    if isinstance(concepts, list):
        concepts = concepts[0] if concepts else None
    if not isinstance(concepts, dict):
        return None
    for coding in concepts.get("coding") or ():
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])[:CODE_LENGTH]
    text = concepts.get("text")
    return str(text)[:CODE_LENGTH] if text else None


def _status(resource: Resource, name: str = "status") -> str:
    """A required status code; FHIR codes are short tokens, so anything else is refused."""
    value = _require(resource, name)
    if not isinstance(value, str) or len(value) > 24 or " " in value:
        raise InputError(f"`{name}` is not a status code: {str(value)[:40]!r}")
    return value


def _require(resource: Resource, name: str) -> Any:
    value = resource.get(name)
    if value in (None, "", [], {}):
        raise InputError(f"`{name}` is missing")
    return value


def _extension(resource: Resource, url: str) -> Any:
    for ext in resource.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext.get("valueCode") or ext.get("valueString")
    return None


def _identifier_lookups(resource: Resource) -> list[tuple[str, str]]:
    found = []
    for ident in resource.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("value"):
            found.append(("identifier", f"{ident.get('system', '')}|{ident['value']}"))
    return found


def _language(resource: Resource) -> str | None:
    entries = [c for c in resource.get("communication") or () if isinstance(c, dict)]
    preferred = [c for c in entries if c.get("preferred")] or entries
    for entry in preferred:
        code = _first_code(entry.get("language"))
        if code:
            return code.split("-")[0].lower()[:16]
    return None


def _preferred_channel(telecoms: Sequence[Mapping[str, Any]]) -> str | None:
    """sms, email or phone, from the contact point with the lowest `rank` (FHIR: 1 = preferred)."""
    ranked = sorted(
        (t for t in telecoms if t.get("value") and t.get("system") in ("phone", "sms", "email")),
        key=lambda t: t.get("rank") or 10_000,
    )
    for telecom in ranked:
        if telecom["system"] == "email":
            return "email"
        if telecom["system"] == "sms" or telecom.get("use") == "mobile":
            return "sms"
        return "phone"
    return None


def _replaced_by(resource: Resource, refs: _Refs) -> str | None:
    """The Patient this record was merged into: the first `replaced-by` link to a Patient.

    FHIR R4 Patient.link: `replaced-by` marks this record as merged away; `replaces` is the
    survivor's side of the same merge, and `refer` / `seealso` link records that both stay in use.
    A contained Patient is no record of the EHR's, so it cannot be the one merged into.
    """
    for link in resource.get("link") or ():
        if not isinstance(link, dict) or link.get("type") != "replaced-by":
            continue
        ref = refs.parse(link.get("other"), "Patient")
        if ref is not None and ref.resource_type == "Patient" and not isinstance(ref, ContainedRef):
            return refs.resolved_id(ref, "Patient", "replaced_by")
    return None


def _patient(resource: Resource, refs: _Refs) -> Extracted:
    fhir_id = resource["id"]
    telecoms = [t for t in resource.get("telecom") or () if isinstance(t, dict)]
    lookups = _identifier_lookups(resource)
    for telecom in telecoms:
        if telecom.get("system") in ("phone", "sms") and telecom.get("value"):
            lookups.append(("phone", str(telecom["value"])))
        elif telecom.get("system") == "email" and telecom.get("value"):
            lookups.append(("email", str(telecom["value"])))
    for name in resource.get("name") or ():
        if isinstance(name, dict) and name.get("family"):
            given = " ".join(name.get("given") or ())
            lookups.append(("name", f"{given} {name['family']}"))
            lookups.append(("family", str(name["family"])))
    birth = parse_date(resource.get("birthDate"), "birthDate")
    if birth is not None:
        lookups.append(("birthdate", birth.isoformat()))
    gps = resource.get("generalPractitioner") or [None]
    row = {
        "fhir_id": fhir_id,
        "active": resource.get("active", True) is not False,
        "gender": _short(resource.get("gender"), 16),
        "birth_year": birth.year if birth else None,
        "deceased": bool(resource.get("deceasedBoolean") or resource.get("deceasedDateTime")),
        "time_zone": _short(_extension(resource, TIMEZONE_EXTENSION), 64),
        "language": _language(resource),
        "preferred_channel": _preferred_channel(telecoms),
        "general_practitioner_id": refs.id_of(gps[0], "Practitioner", "general_practitioner_id"),
        "replaced_by": _replaced_by(resource, refs),
    }
    return Extracted(row, fhir_id, lookups)


_PARTICIPANT_COLUMNS = {
    "Patient": "patient_id",
    "Practitioner": "practitioner_id",
    "Location": "location_id",
}


def _appointment(resource: Resource, refs: _Refs) -> Extracted:
    status = _status(resource)
    participants = _require(resource, "participant")
    start = parse_instant(resource.get("start"), "start")
    end = parse_instant(resource.get("end"), "end")
    if (start is None or end is None) and status not in ("proposed", "cancelled", "waitlist"):
        missing = "start" if start is None else "end"
        raise InputError(f"`{missing}` is missing (required unless proposed/cancelled/waitlist)")
    row: dict[str, Any] = {
        "fhir_id": resource["id"],
        "status": status,
        "start_at": start,
        "end_at": end,
        "minutes": minutes if isinstance(minutes := resource.get("minutesDuration"), int) else None,
        "booked_at": parse_instant(resource.get("created"), "created"),
        "appointment_type": _first_code(resource.get("appointmentType")),
        "service_type": _first_code(resource.get("serviceType")),
        "cancel_reason": _first_code(resource.get("cancelationReason")),
        "patient_id": None,
        "patient_status": None,
        "practitioner_id": None,
        "location_id": None,
        "slot_id": refs.id_of((resource.get("slot") or [None])[0], "Slot", "slot_id"),
    }
    for index, participant in enumerate(participants):
        if not isinstance(participant, dict):
            raise InputError(f"`participant[{index}]` is not an object")
        ref = refs.parse(participant.get("actor"))
        if ref is None or ref.resource_type is None:
            continue
        column = _PARTICIPANT_COLUMNS.get(ref.resource_type)
        if column and row[column] is None:
            row[column] = refs.resolved_id(ref, ref.resource_type, column)
            if column == "patient_id":
                row["patient_status"] = participant.get("status")
    periods = resource.get("requestedPeriod")
    period = periods[0] if isinstance(periods, list) and periods else {}
    row["requested_start_on"] = parse_date(period.get("start"), "requestedPeriod.start")
    row["requested_end_on"] = parse_date(period.get("end"), "requestedPeriod.end")
    return Extracted(row, row["patient_id"])


def _slot(resource: Resource, refs: _Refs) -> Extracted:
    row = {
        "fhir_id": resource["id"],
        "schedule_id": refs.id_of(_require(resource, "schedule"), "Schedule", "schedule_id"),
        "status": _status(resource),
        "start_at": parse_instant(_require(resource, "start"), "start"),
        "end_at": parse_instant(_require(resource, "end"), "end"),
    }
    return Extracted(row, None)


def _schedule(resource: Resource, refs: _Refs) -> Extracted:
    row: dict[str, Any] = {
        "fhir_id": resource["id"],
        "active": resource.get("active", True) is not False,
        "practitioner_id": None,
        "location_id": None,
        "service_type": _first_code(resource.get("serviceType")),
    }
    for actor in _require(resource, "actor"):
        kind = refs.type_of(actor)
        if kind == "Practitioner" and row["practitioner_id"] is None:
            row["practitioner_id"] = refs.id_of(actor, kind, "practitioner_id")
        elif kind == "Location" and row["location_id"] is None:
            row["location_id"] = refs.id_of(actor, kind, "location_id")
    return Extracted(row, None)


def _communication(resource: Resource, refs: _Refs) -> Extracted:
    sender = resource.get("sender")
    replies = resource.get("inResponseTo") or [None]
    row = {
        "fhir_id": resource["id"],
        "status": _status(resource),
        "category": _first_code(resource.get("category")),
        "medium": _first_code(resource.get("medium")),
        "sent_at": parse_instant(resource.get("sent"), "sent"),
        "received_at": parse_instant(resource.get("received"), "received"),
        "patient_id": refs.id_of(resource.get("subject"), "Patient", "patient_id"),
        "from_patient": refs.type_of(sender) in ("Patient", "RelatedPerson"),
        "sender_ref": _literal_text(refs.parse(sender)),
        "recipient_ref": _literal_text(refs.parse((resource.get("recipient") or [None])[0])),
        "in_response_to": refs.id_of(replies[0], "Communication", "in_response_to"),
    }
    return Extracted(row, row["patient_id"])


def _coverage(resource: Resource, refs: _Refs) -> Extracted:
    period = resource.get("period") or {}
    payors = _require(resource, "payor")
    row = {
        "fhir_id": resource["id"],
        "status": _status(resource),
        "patient_id": refs.id_of(_require(resource, "beneficiary"), "Patient", "patient_id"),
        "payor_id": refs.id_of(payors[0], "Organization", "payor_id"),
        "period_start_on": parse_date(period.get("start"), "period.start"),
        "period_end_on": parse_date(period.get("end"), "period.end"),
    }
    return Extracted(row, row["patient_id"])


def _encounter(resource: Resource, refs: _Refs) -> Extracted:
    period = resource.get("period") or {}
    klass = _require(resource, "class")
    practitioner = None
    for participant in resource.get("participant") or ():
        if isinstance(participant, dict) and practitioner is None:
            practitioner = refs.id_of(
                participant.get("individual"), "Practitioner", "practitioner_id"
            )
    location = (resource.get("location") or [{}])[0] or {}
    row = {
        "fhir_id": resource["id"],
        "status": _status(resource),
        "class_code": klass.get("code") if isinstance(klass, dict) else None,
        "patient_id": refs.id_of(resource.get("subject"), "Patient", "patient_id"),
        "practitioner_id": practitioner,
        "location_id": refs.id_of(location.get("location"), "Location", "location_id"),
        "start_at": parse_instant(period.get("start"), "period.start"),
        "end_at": parse_instant(period.get("end"), "period.end"),
    }
    return Extracted(row, row["patient_id"])


def _practitioner_role(resource: Resource, refs: _Refs) -> Extracted:
    row = {
        "fhir_id": resource["id"],
        "practitioner_id": refs.id_of(
            resource.get("practitioner"), "Practitioner", "practitioner_id"
        ),
        "organization_id": refs.id_of(
            resource.get("organization"), "Organization", "organization_id"
        ),
        "location_id": refs.id_of(
            (resource.get("location") or [None])[0], "Location", "location_id"
        ),
        "specialty_code": _first_code(resource.get("specialty")),
        "active": resource.get("active", True) is not False,
    }
    return Extracted(row, None)


def _practitioner(resource: Resource, refs: _Refs) -> Extracted:  # noqa: ARG001  (uniform)
    row = {"fhir_id": resource["id"], "active": resource.get("active", True) is not False}
    return Extracted(row, None)


def _organization(resource: Resource, refs: _Refs) -> Extracted:  # noqa: ARG001  (uniform)
    row = {
        "fhir_id": resource["id"],
        "type_code": _first_code(resource.get("type")),
        "active": resource.get("active", True) is not False,
    }
    return Extracted(row, None)


def _location(resource: Resource, refs: _Refs) -> Extracted:
    org = resource.get("managingOrganization")
    row = {
        "fhir_id": resource["id"],
        "status": resource.get("status"),
        "time_zone": _short(_extension(resource, TIMEZONE_EXTENSION), 64),
        "organization_id": refs.id_of(org, "Organization", "organization_id"),
    }
    return Extracted(row, None)


_EXTRACTORS: dict[str, Callable[[Resource, _Refs], Extracted]] = {
    "Patient": _patient,
    "Practitioner": _practitioner,
    "PractitionerRole": _practitioner_role,
    "Organization": _organization,
    "Location": _location,
    "Schedule": _schedule,
    "Slot": _slot,
    "Appointment": _appointment,
    "Communication": _communication,
    "Coverage": _coverage,
    "Encounter": _encounter,
}

# Elements that put a resource of another type into a patient's compartment.
_COMPARTMENT_ELEMENTS = ("subject", "patient", "beneficiary")


def _compartment(resource: Resource, refs: _Refs) -> str | None:
    for element in _COMPARTMENT_ELEMENTS:
        value = resource.get(element)
        if isinstance(value, dict) and refs.type_of(value) == "Patient":
            found = refs.id_of(value, "Patient", "_compartment")
            if found:
                return found
    return None


def extract(resource: Resource) -> Extracted:
    """Typed row, compartment, lookups and unresolved references of a checked resource."""
    refs = _Refs(resource)
    extractor = _EXTRACTORS.get(resource["resourceType"])
    if extractor is None:
        result = Extracted(None, _compartment(resource, refs))
    else:
        result = extractor(resource, refs)
    if resource["resourceType"] in IDENTIFIER_INDEXED and resource["resourceType"] != "Patient":
        result.lookups.extend(_identifier_lookups(resource))
    result.pending = [(col, ref) for col, ref in refs.pending if col != "_compartment"]
    return result


def last_updated_of(resource: Resource) -> datetime | None:
    """`meta.lastUpdated` as an aware UTC instant, if present."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return None
    return parse_instant(meta.get("lastUpdated"), "meta.lastUpdated")


def version_of(resource: Resource) -> str | None:
    """`meta.versionId`, if present."""
    meta = resource.get("meta")
    value = meta.get("versionId") if isinstance(meta, dict) else None
    return str(value)[:64] if value is not None else None
