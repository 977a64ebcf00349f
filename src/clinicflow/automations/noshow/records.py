"""Plain records a no-show score is computed from, whatever the source (the replica or Kaggle)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """What became of a visit; only `attended` and `noshow` are outcomes a model learns from."""

    ATTENDED = "attended"
    NOSHOW = "noshow"
    CANCELLED = "cancelled"
    PENDING = "pending"  # not happened yet, or not recorded


class Sex(StrEnum):
    """Administrative sex as the source records it (FHIR Patient.gender)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Conditions:
    """Optional patient flags. Kaggle carries them; the replica may carry conditions later."""

    scholarship: bool  # Brazil's Bolsa Família welfare programme
    hypertension: bool
    diabetes: bool
    alcoholism: bool
    handicap_level: int  # Kaggle's Handcap: 0-4, the number of handicaps


@dataclass(frozen=True, slots=True)
class Visit:
    """One booked visit with what is known about its patient at the time of the visit.

    `start_at`, `booked_at`, `confirmed_at` and `reminders_sent_at` are aware instants.
    `has_time_of_day` is False when the source knows only the day (Kaggle's AppointmentDay):
    then `start_at` is midnight of that day and the hour is unknown.
    """

    visit_id: str
    patient_id: str
    start_at: datetime
    booked_at: datetime | None
    outcome: Outcome
    has_time_of_day: bool = True
    visit_type: str | None = None
    provider_id: str | None = None
    location_id: str | None = None
    age_years: int | None = None
    sex: Sex = Sex.UNKNOWN
    # The confirmation the patient gave and when; a confirmation after the prediction moment is
    # not known to the model.
    confirmation: str | None = None
    confirmed_at: datetime | None = None
    reminders_sent_at: tuple[datetime, ...] = ()
    conditions: Conditions | None = None

    @property
    def is_labelled(self) -> bool:
        """Whether the visit has an outcome a model can learn from."""
        return self.outcome in (Outcome.ATTENDED, Outcome.NOSHOW)
