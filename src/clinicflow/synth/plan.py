"""The whole synthetic practice as plain data, from a seed, a size and an anchor date (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clinicflow.errors import InputError
from clinicflow.synth.anomalies import plan_anomalies
from clinicflow.synth.bookings import plan_future
from clinicflow.synth.coverage import Policy, build_policies
from clinicflow.synth.history import HISTORY_DAYS, LONGEST_LEAD_DAYS, plan_history
from clinicflow.synth.identifiers import stream
from clinicflow.synth.messages import Message, plan_messages
from clinicflow.synth.people import Patient, build_patients
from clinicflow.synth.practice import Practice, build_practice
from clinicflow.synth.schedule import LAST_SLOT_DAY, Slot, build_slots, weekly_grid
from clinicflow.synth.timeline import AS_OF_MINUTE, LocalDay, local_days
from clinicflow.synth.visits import PatientPicker, Visit
from clinicflow.synth.waitlist import WaitlistEntry, plan_waitlist

MAX_PATIENTS = 100_000


@dataclass(frozen=True, slots=True)
class PracticePlan:
    """Everything the writer turns into FHIR resources; visits are in start order."""

    anchor_on: date
    as_of_s: int
    days: Mapping[int, LocalDay]
    practice: Practice
    patients: list[Patient]
    policies: list[Policy]
    slots: list[Slot]
    visits: list[Visit]
    waitlist: list[WaitlistEntry]
    messages: list[Message]


def practice_zone(timezone: str) -> ZoneInfo:
    """The practice's zone, or an InputError a person can act on."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(
            f"{timezone!r} is not an IANA time zone; use a name like America/Chicago",
            where="timezone",
            code="synth.bad_timezone",
        ) from exc


def plan_practice(
    *,
    seed: int,
    patients: int,
    anchor_on: date,
    timezone: str,
    history_days: int = HISTORY_DAYS,
) -> PracticePlan:
    """The practice for `seed`: the same arguments always give the same plan."""
    zone = practice_zone(timezone)
    if not 1 <= patients <= MAX_PATIENTS:
        raise InputError(
            f"the number of patients must be between 1 and {MAX_PATIENTS:,}, not {patients:,}",
            where="patients",
            code="synth.bad_patients",
        )
    days = local_days(anchor_on, zone, -(history_days + LONGEST_LEAD_DAYS), LAST_SLOT_DAY)
    as_of_s = days[0].instant_s(AS_OF_MINUTE)
    practice = build_practice(stream(seed, "practice"), patients, timezone)
    clinicians = practice.clinicians
    grids = [weekly_grid(clinician) for clinician in clinicians]
    slots = build_slots(stream(seed, "slots"), clinicians, grids, days)
    slot_ids = {slot.key: slot.id for slot in slots}
    anomalies = plan_anomalies(stream(seed, "anomalies"), clinicians, grids, days)
    people = build_patients(stream(seed, "patients"), patients, practice, anchor_on, as_of_s)
    policies = build_policies(stream(seed, "coverage"), people, practice.payers, anchor_on)
    picker = PatientPicker(people, practice, anchor_on)
    history = plan_history(
        stream(seed, "history"), clinicians, grids, days, slot_ids, picker, anomalies, history_days
    )
    future = plan_future(
        stream(seed, "future"), clinicians, grids, days, slot_ids, picker, people, as_of_s,
        anomalies,
    )  # fmt: skip
    visits = history + future
    visits.sort(key=lambda v: (v.day, v.minute, v.clinician, v.id))
    return PracticePlan(
        anchor_on=anchor_on,
        as_of_s=as_of_s,
        days=days,
        practice=practice,
        patients=people,
        policies=policies,
        slots=slots,
        visits=visits,
        waitlist=plan_waitlist(
            stream(seed, "waitlist"), people, clinicians, picker, anchor_on, as_of_s
        ),
        messages=plan_messages(stream(seed, "messages"), people, anchor_on, as_of_s),
    )
