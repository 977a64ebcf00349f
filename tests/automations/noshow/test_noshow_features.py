"""No-show features: a visit as seen at its prediction moment, and nothing later leaks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.automations.noshow import (
    Outcome,
    Visit,
    age_band,
    features_for,
    features_for_all,
    prediction_moment,
)

ZONE = ZoneInfo("America/New_York")
MONDAY_9AM = datetime(2026, 3, 2, 9, 30, tzinfo=ZONE)


def _visit(start_at: datetime, outcome: Outcome = Outcome.PENDING, **kw: object) -> Visit:
    fields: dict[str, object] = {
        "visit_id": f"v-{start_at.isoformat()}",
        "patient_id": "p1",
        "start_at": start_at,
        "booked_at": start_at - timedelta(days=10),
        "outcome": outcome,
    }
    return Visit(**(fields | kw))  # type: ignore[arg-type]


def test_the_prediction_moment_is_midnight_the_day_before_for_a_visit_booked_early() -> None:
    visit = _visit(MONDAY_9AM)
    assert prediction_moment(visit, ZONE) == datetime(2026, 3, 1, 0, 0, tzinfo=ZONE)


def test_the_prediction_moment_is_the_booking_for_a_visit_booked_the_day_before_or_later() -> None:
    booked_at = MONDAY_9AM - timedelta(hours=2)
    assert prediction_moment(_visit(MONDAY_9AM, booked_at=booked_at), ZONE) == booked_at


def test_a_visit_has_lead_time_weekday_hour_and_age_band_in_practice_time() -> None:
    visit = _visit(MONDAY_9AM, age_years=67, provider_id="dr-a", visit_type="FOLLOWUP")
    f = features_for(visit, [visit], ZONE)
    assert (f.lead_days, f.weekday, f.hour, f.age_band) == (10, 0, 9, "65+")
    assert (f.provider, f.visit_type, f.location) == ("dr-a", "FOLLOWUP", "unknown")


def test_a_day_only_visit_has_no_hour() -> None:
    visit = _visit(datetime(2016, 5, 2, tzinfo=UTC), has_time_of_day=False)
    assert features_for(visit, [], ZoneInfo("UTC")).hour is None


def test_prior_visits_count_only_days_before_the_moment_and_skip_cancellations() -> None:
    visit = _visit(MONDAY_9AM)
    history = [
        _visit(MONDAY_9AM - timedelta(days=30), Outcome.NOSHOW),
        _visit(MONDAY_9AM - timedelta(days=20), Outcome.ATTENDED),
        _visit(MONDAY_9AM - timedelta(days=15), Outcome.CANCELLED),
        # The day before: its outcome is not known at midnight starting that day.
        _visit(MONDAY_9AM - timedelta(days=1), Outcome.NOSHOW),
        _visit(MONDAY_9AM - timedelta(days=25), Outcome.NOSHOW, patient_id="someone-else"),
    ]
    f = features_for(visit, [visit, *history], ZONE)
    assert (f.prior_visits, f.prior_noshows) == (2, 1)
    assert f.days_since_last_visit == 19  # from 1 March back to 10 February
    assert f.prior_noshow_rate == (1 + 2 * 0.2) / (2 + 2)


def test_reminders_and_confirmations_count_only_up_to_the_moment() -> None:
    moment = datetime(2026, 3, 1, 0, 0, tzinfo=ZONE)
    visit = _visit(
        MONDAY_9AM,
        reminders_sent_at=(moment - timedelta(days=5), moment, moment + timedelta(hours=8)),
        confirmation="accepted",
        confirmed_at=moment + timedelta(hours=9),
    )
    f = features_for(visit, [], ZONE)
    assert (f.reminders_sent, f.confirmation) == (2, "needs-action")
    early = replace(visit, confirmed_at=moment - timedelta(days=1))
    assert features_for(early, [], ZONE).confirmation == "accepted"


def test_age_bands_cover_children_adults_and_unknown_ages() -> None:
    assert [age_band(a) for a in (0, 4, 5, 17, 18, 44, 64, 65, None)] == [
        "0-4", "0-4", "5-12", "13-17", "18-29", "30-44", "45-64", "65+", "unknown",
    ]  # fmt: skip


# --- the leakage property ------------------------------------------------------------------

OUTCOMES = st.sampled_from(list(Outcome))
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def histories(draw: st.DrawFn) -> list[Visit]:
    """One patient's visits over ~60 days, with random bookings, outcomes and reminders."""
    visits = []
    for i in range(draw(st.integers(1, 12))):
        start_at = BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 60)))
        booked_at = start_at - timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
        sent = draw(st.lists(st.integers(0, 60 * 24 * 30), max_size=3))
        visits.append(
            Visit(
                visit_id=f"v{i}",
                patient_id="p1",
                start_at=start_at,
                booked_at=booked_at,
                outcome=draw(OUTCOMES),
                age_years=draw(st.none() | st.integers(0, 100)),
                confirmation=draw(st.none() | st.just("accepted")),
                confirmed_at=booked_at + timedelta(hours=draw(st.integers(0, 24 * 30))),
                reminders_sent_at=tuple(booked_at + timedelta(minutes=m) for m in sent),
            )
        )
    return visits


@given(histories(), st.data())
def test_no_feature_sees_the_visits_own_outcome_or_anything_from_its_moment_on(
    visits: list[Visit], data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(visits))
    zone = data.draw(st.sampled_from([ZoneInfo("UTC"), ZONE]))
    before = features_for(target, visits, zone)
    moment = prediction_moment(target, zone)
    moment_day = moment.astimezone(zone).date()

    def is_unknown_at_moment(v: Visit) -> bool:
        return v.start_at.astimezone(zone).date() >= moment_day

    # Rewrite the future: every other visit from the moment's day on gets another outcome and
    # moves anywhere later; a new later visit appears; the target's own outcome changes.
    changed = []
    for v in visits:
        if v is target:
            changed.append(replace(v, outcome=data.draw(OUTCOMES)))
        elif is_unknown_at_moment(v):
            later = timedelta(days=data.draw(st.integers(0, 30)))
            changed.append(replace(v, outcome=data.draw(OUTCOMES), start_at=v.start_at + later))
        else:
            changed.append(v)
    changed.append(replace(target, visit_id="new", start_at=moment + timedelta(days=2)))
    new_target = changed[visits.index(target)]
    # Later reminders and confirmations of the target itself are unknown at the moment, too.
    new_target = replace(
        new_target,
        reminders_sent_at=(*new_target.reminders_sent_at, moment + timedelta(seconds=1)),
        confirmed_at=(
            moment + timedelta(hours=1)
            if new_target.confirmed_at is None or new_target.confirmed_at > moment
            else new_target.confirmed_at
        ),
    )
    assert features_for(new_target, changed, zone) == before


@given(histories())
def test_features_of_all_visits_at_once_match_one_at_a_time(visits: list[Visit]) -> None:
    assert features_for_all(visits, ZONE) == [features_for(v, visits, ZONE) for v in visits]
