"""FHIR R4 Appointment (booked, past, waitlist) and Communication resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

from clinicflow.synth.anomalies import SQUEEZE_IN_NOTE
from clinicflow.synth.codes import (
    APPOINTMENT_TYPE,
    APPOINTMENT_TYPES,
    CANCEL_REASON,
    CANCEL_REASONS,
    PARTICIPATION_MODE,
    PORTAL_TOPIC,
    PORTAL_TOPICS,
)
from clinicflow.synth.elements import (
    Resource,
    concept,
    meta,
    ref,
    service_concept,
    specialty_concept,
)
from clinicflow.synth.messages import Message
from clinicflow.synth.people import Patient
from clinicflow.synth.practice import Practice
from clinicflow.synth.timeline import LocalDay, utc_text
from clinicflow.synth.visits import Visit
from clinicflow.synth.waitlist import WaitlistEntry


@cache
def _kind(code: str) -> dict[str, object]:
    return concept(APPOINTMENT_TYPE, code, APPOINTMENT_TYPES[code])


def _participant(resource_type: str, fhir_id: str, status: str = "accepted") -> dict[str, object]:
    return {"actor": ref(resource_type, fhir_id), "status": status}


# Shares of upcoming visits the patient has already confirmed (self-scheduled online, said yes on
# a call): most have not, which is what reminders are for. Visits of the next two days have had
# the practice's own calls; later ones mostly not yet.
CONFIRMED_SOON_PERCENT = 40
CONFIRMED_LATER_PERCENT = 10
_SOON_DAYS = 2


def patient_participation(visit: Visit) -> str:
    """`accepted` for a past visit or a confirmed upcoming one, else `needs-action`.

    Drawn from the visit's id rather than the practice's random stream, so adding this left every
    other byte of a seeded practice as it was.
    """
    if visit.status not in ("booked", "pending") or visit.day < 0:
        return "accepted"
    share = CONFIRMED_SOON_PERCENT if visit.day < _SOON_DAYS else CONFIRMED_LATER_PERCENT
    return "accepted" if int(visit.id[:8], 16) % 100 < share else "needs-action"


def appointment(
    visit: Visit, patients: Sequence[Patient], practice: Practice, days: Mapping[int, LocalDay]
) -> Resource:
    """A booked, fulfilled, missed or cancelled visit; those holding a slot name it."""
    clinician = practice.clinicians[visit.clinician]
    day = days[visit.day]
    resource: Resource = {
        "resourceType": "Appointment",
        "id": visit.id,
        "meta": meta(visit.updated_s),
        "status": visit.status,
    }
    if visit.cancel_reason:
        reason = CANCEL_REASONS[visit.cancel_reason]
        resource["cancelationReason"] = concept(CANCEL_REASON, visit.cancel_reason, reason)
    resource |= {
        "serviceType": [service_concept(clinician.specialty)],
        "specialty": [specialty_concept(clinician.specialty)],
        "appointmentType": _kind(visit.kind),
        "start": day.local_text(visit.minute),
        "end": day.local_text(visit.minute + visit.minutes),
        "minutesDuration": visit.minutes,
    }
    if visit.slot_id:
        resource["slot"] = [ref("Slot", visit.slot_id)]
    resource["created"] = utc_text(visit.created_s)
    if visit.squeezed_in:
        resource["comment"] = SQUEEZE_IN_NOTE
    resource["participant"] = [
        _participant("Patient", patients[visit.patient].id, patient_participation(visit)),
        _participant("Practitioner", clinician.id),
        _participant("Location", practice.sites[clinician.site_index].id),
    ]
    return resource


def waitlist_appointment(
    entry: WaitlistEntry, patients: Sequence[Patient], practice: Practice
) -> Resource:
    """A waitlist request: the dates the patient can come, and the practitioner they asked for."""
    participants: list[dict[str, object]] = [_participant("Patient", patients[entry.patient].id)]
    if entry.clinician is not None:
        clinician_id = practice.clinicians[entry.clinician].id
        participants.append(_participant("Practitioner", clinician_id, "needs-action"))
    return {
        "resourceType": "Appointment",
        "id": entry.id,
        "meta": meta(entry.created_s),
        "status": "waitlist",
        "serviceType": [service_concept(entry.specialty)],
        "specialty": [specialty_concept(entry.specialty)],
        "appointmentType": _kind(entry.kind),
        "minutesDuration": entry.specialty.slot_minutes,
        "created": utc_text(entry.created_s),
        "participant": participants,
        "requestedPeriod": [
            {"start": entry.wanted_from.isoformat(), "end": entry.wanted_until.isoformat()}
        ],
    }


def communication(message: Message, patients: Sequence[Patient], practice: Practice) -> Resource:
    """A portal message from a patient to their clinician, or the clinic's answer."""
    patient = ref("Patient", patients[message.patient].id)
    clinician = ref("Practitioner", practice.clinicians[message.clinician].id)
    resource: Resource = {
        "resourceType": "Communication",
        "id": message.id,
        "meta": meta(message.sent_s),
        "language": message.language,
    }
    if message.reply_to:
        resource["inResponseTo"] = [ref("Communication", message.reply_to)]
    resource |= {
        "status": "completed",
        "category": [concept(PORTAL_TOPIC, message.topic, PORTAL_TOPICS[message.topic])],
        "medium": [concept(PARTICIPATION_MODE, "ONLINEWRIT", "online written")],
        "subject": patient,
        "sent": utc_text(message.sent_s),
        "recipient": [clinician if message.from_patient else patient],
        "sender": patient if message.from_patient else clinician,
        "payload": [{"contentString": message.text}],
    }
    return resource
