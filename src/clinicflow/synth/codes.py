"""Code systems, identifier systems and extension URLs the synthetic practice writes."""

from __future__ import annotations

from typing import Final

MRN_SYSTEM: Final = "urn:oid:2.16.840.1.113883.3.clinicflow.mrn"
PAYER_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.3.clinicflow.payer-id"
NPI_SYSTEM: Final = "http://hl7.org/fhir/sid/us-npi"
TIMEZONE_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/timezone"
BCP47: Final = "urn:ietf:bcp:47"

NUCC_TAXONOMY: Final = "http://nucc.org/provider-taxonomy"
SERVICE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/service-type"
APPOINTMENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0276"
CANCEL_REASON: Final = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
ORGANIZATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/organization-type"
PRACTITIONER_ROLE: Final = "http://terminology.hl7.org/CodeSystem/practitioner-role"
COVERAGE_CLASS: Final = "http://terminology.hl7.org/CodeSystem/coverage-class"
SUBSCRIBER_RELATIONSHIP: Final = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
PARTICIPATION_MODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
# The topic a patient picks in the portal's "new message" form; ours, as no standard one fits.
PORTAL_TOPIC: Final = "https://clinicflow.org/fhir/CodeSystem/portal-topic"

# HL7 v2 table 0276 (appointment reason codes) used by Appointment.appointmentType in R4.
APPOINTMENT_TYPES: Final = {
    "ROUTINE": "Routine appointment - default if not valued",
    "FOLLOWUP": "A follow up visit from a previous appointment",
    "CHECKUP": "A routine check-up, such as an annual physical",
    "WALKIN": "A previously unscheduled walk-in visit",
}

CANCEL_REASONS: Final = {
    "pat": "Patient",
    "pat-crs": "Patient: Canceled via automated reminder system",
    "pat-cpp": "Patient: Canceled via Patient Portal",
    "pat-fb": "Patient: Feeling Better",
    "pat-lt": "Patient: Lack of Transportation",
    "prov-pers": "Provider: Personal",
    "oth-weath": "Other: Weather",
}

PORTAL_TOPICS: Final = {
    "appointment": "Appointment request",
    "refill": "Prescription refill",
    "billing": "Billing question",
    "results": "Test results question",
    "symptom": "Medical question",
}
