"""The pools a patient's message can land in, who answers each and how fast (pure data).

Clinical pools are answered by a nurse or clinician and get only a receipt from the machine;
administrative pools may get an acknowledgement that says when to expect an answer. The
service levels are the practice's promise to patients and can be changed in settings
(`triage_service_minutes`); these defaults follow common primary-care practice: urgent at once,
clinical questions within the working day, the rest within two working days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

URGENT = "urgent"
CLINICAL_QUESTION = "clinical-question"
MEDICATION = "medication"
RESULTS = "results"
APPOINTMENT = "appointment"
BILLING = "billing"
RECORDS_FORMS = "records-forms"
OTHER = "other"
POOLS = (URGENT, CLINICAL_QUESTION, MEDICATION, RESULTS, APPOINTMENT, BILLING, RECORDS_FORMS, OTHER)


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """Whether the pool is clinical (receipt only) and its default service level."""

    clinical: bool
    answer_within: timedelta


POLICIES: dict[str, PoolPolicy] = {
    URGENT: PoolPolicy(True, timedelta(minutes=15)),
    CLINICAL_QUESTION: PoolPolicy(True, timedelta(hours=8)),
    MEDICATION: PoolPolicy(True, timedelta(hours=24)),
    RESULTS: PoolPolicy(True, timedelta(hours=48)),
    APPOINTMENT: PoolPolicy(False, timedelta(hours=8)),
    BILLING: PoolPolicy(False, timedelta(hours=48)),
    RECORDS_FORMS: PoolPolicy(False, timedelta(hours=48)),
    OTHER: PoolPolicy(False, timedelta(hours=48)),
}


def is_clinical(pool: str) -> bool:
    """True when only a person may answer what the message asks (receipt template only)."""
    return POLICIES[pool].clinical


def answer_within(pool: str, overrides: Mapping[str, int]) -> timedelta:
    """The pool's service level: the practice's minutes where set, else the default."""
    minutes = overrides.get(pool)
    return timedelta(minutes=minutes) if minutes else POLICIES[pool].answer_within
