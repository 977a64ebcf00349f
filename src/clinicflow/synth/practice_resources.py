"""FHIR R4 resources of the practice: Organization, Location, Practitioner(Role), Schedule, Slot."""

from __future__ import annotations

from collections.abc import Mapping

from clinicflow.synth.codes import (
    NPI_SYSTEM,
    ORGANIZATION_TYPE,
    PAYER_ID_SYSTEM,
    PRACTITIONER_ROLE,
    TIMEZONE_EXTENSION,
)
from clinicflow.synth.elements import (
    Resource,
    concept,
    meta,
    ref,
    service_concept,
    specialty_concept,
)
from clinicflow.synth.practice import Clinician, Payer, Practice, Site
from clinicflow.synth.schedule import FIRST_SLOT_DAY, LAST_SLOT_DAY, Slot
from clinicflow.synth.timeline import LocalDay

_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def organization(practice: Practice, updated_s: int) -> Resource:
    """The practice as a healthcare provider Organization."""
    main = practice.sites[0]
    return {
        "resourceType": "Organization",
        "id": practice.id,
        "meta": meta(updated_s),
        "identifier": [{"system": NPI_SYSTEM, "value": practice.npi}],
        "active": True,
        "type": [concept(ORGANIZATION_TYPE, "prov", "Healthcare Provider")],
        "name": practice.name,
        "telecom": [{"system": "phone", "value": practice.phone, "use": "work"}],
        "address": [_address(main)],
    }


def payer_organization(payer: Payer, updated_s: int) -> Resource:
    """An insurer as a payer Organization."""
    return {
        "resourceType": "Organization",
        "id": payer.id,
        "meta": meta(updated_s),
        "identifier": [{"system": PAYER_ID_SYSTEM, "value": payer.payer_code}],
        "active": True,
        "type": [concept(ORGANIZATION_TYPE, "pay", "Payer")],
        "name": payer.name,
    }


def _address(site: Site) -> dict[str, object]:
    return {
        "use": "work",
        "line": [site.line],
        "city": site.city,
        "state": site.state,
        "postalCode": site.postal_code,
        "country": "US",
    }


def location(site: Site, practice: Practice, updated_s: int) -> Resource:
    """A clinic site with its address, opening hours and the practice's time zone."""
    return {
        "resourceType": "Location",
        "id": site.id,
        "meta": meta(updated_s),
        "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": practice.zone}],
        "status": "active",
        "name": site.name,
        "mode": "instance",
        "telecom": [{"system": "phone", "value": site.phone, "use": "work"}],
        "address": _address(site),
        "managingOrganization": ref("Organization", practice.id),
        "hoursOfOperation": [
            {"daysOfWeek": _WEEKDAYS, "openingTime": "08:00:00", "closingTime": "17:00:00"}
        ],
    }


def practitioner(clinician: Clinician, updated_s: int) -> Resource:
    """A practitioner with NPI, name and credential."""
    name: dict[str, object] = {"use": "official", "family": clinician.family}
    name["given"] = [clinician.given]
    if clinician.specialty.credential != "NP":  # FHIR JSON forbids empty arrays, so no []
        name["prefix"] = ["Dr."]
    name["suffix"] = [clinician.specialty.credential]
    return {
        "resourceType": "Practitioner",
        "id": clinician.id,
        "meta": meta(updated_s),
        "identifier": [{"system": NPI_SYSTEM, "value": clinician.npi}],
        "active": True,
        "name": [name],
        "gender": clinician.gender,
    }


def practitioner_role(clinician: Clinician, practice: Practice, updated_s: int) -> Resource:
    """The practitioner's role at the practice: specialty (NUCC), site and organization."""
    role = ("nurse", "Nurse") if clinician.specialty.credential == "NP" else ("doctor", "Doctor")
    return {
        "resourceType": "PractitionerRole",
        "id": clinician.role_id,
        "meta": meta(updated_s),
        "active": True,
        "practitioner": ref("Practitioner", clinician.id),
        "organization": ref("Organization", practice.id),
        "code": [concept(PRACTITIONER_ROLE, *role)],
        "specialty": [specialty_concept(clinician.specialty)],
        "location": [ref("Location", practice.sites[clinician.site_index].id)],
    }


def schedule(
    clinician: Clinician, practice: Practice, days: Mapping[int, LocalDay], updated_s: int
) -> Resource:
    """The practitioner's schedule at their site over the slot window."""
    return {
        "resourceType": "Schedule",
        "id": clinician.schedule_id,
        "meta": meta(updated_s),
        "active": True,
        "serviceType": [service_concept(clinician.specialty)],
        "specialty": [specialty_concept(clinician.specialty)],
        "actor": [
            ref("Practitioner", clinician.id),
            ref("Location", practice.sites[clinician.site_index].id),
        ],
        "planningHorizon": {
            "start": days[FIRST_SLOT_DAY].local_text(0),
            "end": days[LAST_SLOT_DAY].local_text(23 * 60 + 59),
        },
    }


def slot(
    item: Slot, clinician: Clinician, days: Mapping[int, LocalDay], busy: bool, updated_s: int
) -> Resource:
    """A slot, `busy` when an appointment holds it."""
    day = days[item.day]
    return {
        "resourceType": "Slot",
        "id": item.id,
        "meta": meta(updated_s),
        "serviceType": [service_concept(clinician.specialty)],
        "specialty": [specialty_concept(clinician.specialty)],
        "schedule": ref("Schedule", clinician.schedule_id),
        "status": "busy" if busy else "free",
        "start": day.local_text(item.minute),
        "end": day.local_text(item.minute + item.minutes),
    }
