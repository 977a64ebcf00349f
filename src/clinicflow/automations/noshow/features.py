"""Pure: the features of one visit as they stand at its prediction moment, and nothing later.

The prediction moment is midnight (practice time) at the start of the day before the visit, or
the booking itself for a visit booked later than that. A model may only see what was known then:

- a prior visit counts only if it was on a day before the prediction moment's day (its outcome is
  recorded by then, and a visit earlier the same day might still be open);
- the visit's own outcome is never read;
- confirmations and reminders count only if they happened at or before the moment.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from clinicflow.automations.noshow.records import Conditions, Outcome, Visit

UNKNOWN = "unknown"
# Smoothing of the prior no-show rate toward the population rate (~20% in the Kaggle data and the
# synthetic practice): a patient with one missed visit out of one is not a 100% risk.
BASE_NOSHOW_RATE = 0.2
PRIOR_WEIGHT = 2.0
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (5, "0-4"),
    (13, "5-12"),
    (18, "13-17"),
    (30, "18-29"),
    (45, "30-44"),
    (65, "45-64"),
    (200, "65+"),
)


@dataclass(frozen=True, slots=True)
class NoShowFeatures:
    """What the model sees about one visit at its prediction moment."""

    lead_days: int | None  # booking day to visit day; None when the booking time is unknown
    weekday: int  # 0 = Monday, practice time
    hour: int | None  # practice time; None when the source has only the day
    age_years: int | None
    age_band: str
    visit_type: str
    provider: str
    location: str
    prior_visits: int  # attended or missed, on days before the prediction moment's day
    prior_noshows: int
    prior_noshow_rate: float  # smoothed toward BASE_NOSHOW_RATE
    days_since_last_visit: int | None
    confirmation: str  # as of the moment: the patient's answer, "needs-action", or "unknown"
    reminders_sent: int  # reminders sent at or before the moment
    conditions: Conditions | None  # optional; only where the source carries them


def age_band(age_years: int | None) -> str:
    """The reporting band of an age ("unknown" when it is not known)."""
    if age_years is None or age_years < 0:
        return UNKNOWN
    return next(label for upper, label in AGE_BANDS if age_years < upper)


def prediction_moment(visit: Visit, zone: ZoneInfo) -> datetime:
    """Midnight at the start of the day before the visit, or the booking if that is later."""
    visit_day = visit.start_at.astimezone(zone).date()
    day_before = datetime.combine(visit_day - timedelta(days=1), time(0), tzinfo=zone)
    if visit.booked_at is not None and visit.booked_at > day_before:
        return visit.booked_at
    return day_before


@dataclass(frozen=True, slots=True)
class _History:
    """One patient's visits with a known outcome, by day, with running counts for bisecting."""

    days: tuple[date, ...]
    noshows_through: tuple[int, ...]  # no-shows among days[: i + 1]

    @classmethod
    def of(cls, visits: Iterable[Visit], zone: ZoneInfo) -> _History:
        known = sorted(
            (v.start_at.astimezone(zone).date(), v.outcome is Outcome.NOSHOW)
            for v in visits
            if v.is_labelled
        )
        return cls(
            days=tuple(day for day, _ in known),
            noshows_through=tuple(accumulate(int(missed) for _, missed in known)),
        )

    def before(self, day: date) -> tuple[int, int, date | None]:
        """Visits, no-shows and the last visit day strictly before `day`."""
        n = bisect.bisect_left(self.days, day)
        if n == 0:
            return 0, 0, None
        return n, self.noshows_through[n - 1], self.days[n - 1]


def _confirmation_at(visit: Visit, moment: datetime) -> str:
    if visit.confirmation is None:
        return UNKNOWN  # the source does not track confirmations (Kaggle)
    if visit.confirmed_at is not None and visit.confirmed_at <= moment:
        return visit.confirmation
    return "needs-action"


def _features(visit: Visit, history: _History, zone: ZoneInfo) -> NoShowFeatures:
    moment = prediction_moment(visit, zone)
    local_start = visit.start_at.astimezone(zone)
    moment_day = moment.astimezone(zone).date()
    prior_visits, prior_noshows, last_day = history.before(moment_day)
    lead_days = (
        (local_start.date() - visit.booked_at.astimezone(zone).date()).days
        if visit.booked_at is not None
        else None
    )
    return NoShowFeatures(
        lead_days=lead_days,
        weekday=local_start.weekday(),
        hour=local_start.hour if visit.has_time_of_day else None,
        age_years=visit.age_years,
        age_band=age_band(visit.age_years),
        visit_type=visit.visit_type or UNKNOWN,
        provider=visit.provider_id or UNKNOWN,
        location=visit.location_id or UNKNOWN,
        prior_visits=prior_visits,
        prior_noshows=prior_noshows,
        prior_noshow_rate=(prior_noshows + PRIOR_WEIGHT * BASE_NOSHOW_RATE)
        / (prior_visits + PRIOR_WEIGHT),
        days_since_last_visit=(moment_day - last_day).days if last_day is not None else None,
        confirmation=_confirmation_at(visit, moment),
        reminders_sent=sum(1 for sent_at in visit.reminders_sent_at if sent_at <= moment),
        conditions=visit.conditions,
    )


def features_for(visit: Visit, history: Sequence[Visit], zone: ZoneInfo) -> NoShowFeatures:
    """The visit's features at its prediction moment; `history` is the patient's other visits
    (it may include this visit and later ones: they are ignored)."""
    same_patient = (v for v in history if v.patient_id == visit.patient_id)
    return _features(visit, _History.of(same_patient, zone), zone)


def features_for_all(visits: Sequence[Visit], zone: ZoneInfo) -> list[NoShowFeatures]:
    """Features of every visit, each against the others of its patient (same as `features_for`,
    in one pass per patient)."""
    by_patient: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_patient[visit.patient_id].append(visit)
    histories = {pid: _History.of(vs, zone) for pid, vs in by_patient.items()}
    return [_features(v, histories[v.patient_id], zone) for v in visits]
