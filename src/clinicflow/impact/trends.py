"""Weekly trends the Impact page shows beside the savings: no-show and confirmation rates.

From the replica (counts only): of the visits that started in a practice-local week and have an
outcome, the share marked `noshow`; of the visits of a week that got a reminder asking for a
reply, the share the patient confirmed. Both read what the EHR and our replies recorded, so a
practice sees whether its no-shows fell while its automations ran.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.automations.waitlist.freed import visit_value_cents
from clinicflow.engine.states import EffectState
from clinicflow.impact.ledger import week_of
from clinicflow.settings import Settings
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import ReminderClaim
from clinicflow.store.replica import Appointment

SEEN = ("fulfilled", "arrived", "checked-in")


@dataclass(frozen=True, slots=True)
class WeekRate:
    """A share in one week: how many of how many."""

    week_of: date
    count: int
    of: int
    # Of the `of`, how many were of each visit type (v2-0276 code; None: no type recorded).
    of_by_type: Mapping[str | None, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        """count / of, or None for an empty week."""
        return self.count / self.of if self.of else None


def _weeks(weeks: int, now: datetime, zone: ZoneInfo) -> tuple[list[date], datetime]:
    this = week_of(now, zone)
    mondays = [this - timedelta(weeks=n) for n in reversed(range(weeks))]
    return mondays, datetime.combine(mondays[0], time(0, 0), tzinfo=zone)


def noshow_rates(session: Session, *, zone: ZoneInfo, now: datetime, weeks: int) -> list[WeekRate]:
    """Per week: visits marked no-show, of those with an outcome (seen or no-show)."""
    mondays, since = _weeks(weeks, now, zone)
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    types: dict[date, Counter[str | None]] = defaultdict(Counter)
    for start, status, visit_type in session.execute(
        select(Appointment.start_at, Appointment.status, Appointment.appointment_type).where(
            Appointment.start_at >= since,
            Appointment.start_at <= now,
            Appointment.status.in_((*SEEN, "noshow")),
        )
    ):
        if start is not None:
            monday = week_of(start, zone)
            tally = counts[monday]
            tally[0] += status == "noshow"
            tally[1] += 1
            types[monday][visit_type] += 1
    return [WeekRate(m, counts[m][0], counts[m][1], dict(types[m])) for m in mondays]


def confirmation_trend(
    session: Session, *, zone: ZoneInfo, now: datetime, weeks: int
) -> list[WeekRate]:
    """Per week: reminded visits (a reminder asking a reply went out) the patient confirmed."""
    mondays, since = _weeks(weeks, now, zone)
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    rows = session.execute(
        select(Appointment.fhir_id, Appointment.start_at, Appointment.patient_status)
        .join(ReminderClaim, ReminderClaim.appointment_id == Appointment.fhir_id)
        .join(Effect, Effect.key == ReminderClaim.effect_key)
        .where(
            ReminderClaim.asks_reply.is_(True),
            Effect.state == EffectState.DONE,
            Appointment.start_at >= since,
        )
        .distinct()
    )
    for _, start, patient_status in rows:
        if start is not None:
            tally = counts[week_of(start, zone)]
            tally[0] += patient_status == "accepted"
            tally[1] += 1
    return [WeekRate(m, counts[m][0], counts[m][1]) for m in mondays]


@dataclass(frozen=True, slots=True)
class Avoided:
    """The no-shows a week was spared against the baseline rate, and what those visits earn."""

    week_of: date
    visits: int
    expected: float  # at the baseline rate
    actual: int
    revenue_cents: int

    @property
    def avoided(self) -> float:
        """Expected less actual, never below zero."""
        return max(0.0, self.expected - self.actual)


def noshows_avoided(
    rates: list[WeekRate], *, baseline: float, value_cents: Callable[[str | None], int]
) -> list[Avoided]:
    """Per week: visits x baseline rate, less the no-shows there were, each avoided one worth
    what the week's visits earn on average by type (pure; `value_cents` prices a visit type).

    The week's mix prices them, not each type's own no-shows: the baseline is one rate for the
    practice, and a type with a handful of visits a week would swing between "none avoided" and
    "all avoided" on one missed visit. Not attributed to one automation: reminders, the extra
    reminder for high-risk visits and the calls noshow-risk asks for all push the same rate down.
    """
    found = []
    for rate in rates:
        expected = rate.of * baseline
        avoided = max(0.0, expected - rate.count)
        typed = sum(rate.of_by_type.values())
        mean_cents = (
            sum(n * value_cents(t) for t, n in rate.of_by_type.items()) / typed
            if typed
            else value_cents(None)
        )
        found.append(
            Avoided(rate.week_of, rate.of, expected, rate.count, round(avoided * mean_cents))
        )
    return found


@dataclass(frozen=True, slots=True)
class Trends:
    """What the Impact page and `impact report` show beside the savings."""

    rates: dict[str, list[WeekRate]]  # "No-show rate", "Confirmation rate"
    avoided: list[Avoided]
    baseline: float

    @property
    def avoided_cents(self) -> int:
        """What the avoided no-shows of every week earn."""
        return sum(a.revenue_cents for a in self.avoided)


def practice_trends(session: Session, settings: Settings, *, now: datetime, weeks: int) -> Trends:
    """The practice's weekly rates and the no-shows avoided against its baseline rate."""
    zone = ZoneInfo(settings.timezone)
    noshows = noshow_rates(session, zone=zone, now=now, weeks=weeks)
    rates = {
        "No-show rate": noshows,
        "Confirmation rate": confirmation_trend(session, zone=zone, now=now, weeks=weeks),
    }
    avoided = noshows_avoided(
        noshows,
        baseline=settings.noshow_baseline_rate,
        value_cents=lambda visit_type: visit_value_cents(visit_type, settings.visit_values),
    )
    return Trends(rates, avoided, settings.noshow_baseline_rate)
