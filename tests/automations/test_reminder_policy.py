"""The touchpoint policy and quiet hours (pure): examples a front desk would check by hand, and
properties over time zones, DST and closure days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from clinicflow.automations.reminders.policy import (
    MIN_NOTICE,
    ON_TIME,
    Planned,
    Policy,
    Touchpoint,
    Visit,
    due_now,
    next_look,
    plan,
    policy_fingerprint,
)
from clinicflow.channels.quiet_hours import QuietHours, is_allowed, next_allowed
from clinicflow.engine.payloads import MessageChannel

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
ZONES = [NY, LA, ZoneInfo("America/Chicago"), ZoneInfo("Pacific/Honolulu"), ZoneInfo("UTC")]
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Monday 9:00 in New York


def _at(day: int, hour: int, minute: int = 0, zone: ZoneInfo = NY) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=zone).astimezone(UTC)


def _names(planned: list[Planned]) -> list[str]:
    return [p.touchpoint.name for p in planned]


def test_a_visit_booked_weeks_ahead_gets_the_three_default_touchpoints_minus_same_day():
    visit = Visit("a1", _at(30, 10), booked_at=NOW - timedelta(days=20))
    planned = plan(visit, Policy(), NOW, practice_zone=NY)
    assert _names(planned) == ["email-7d", "sms-2d"]
    assert planned[0].send_at == _at(23, 10)
    assert planned[1].send_at == datetime(2026, 11, 28, 10, 0, tzinfo=NY).astimezone(UTC)
    assert planned[1].touchpoint.asks_reply


def test_a_visit_booked_three_days_ahead_skips_the_missed_email_and_gets_the_sms():
    visit = Visit("a1", _at(26, 15), booked_at=NOW)
    planned = plan(visit, Policy(), NOW, practice_zone=NY)
    assert _names(planned) == ["sms-2d"]
    assert not planned[0].catch_up


def test_a_visit_booked_for_tomorrow_gets_one_catch_up_now_not_a_burst():
    visit = Visit("a1", _at(24, 15), booked_at=NOW)
    planned = plan(visit, Policy(), NOW, practice_zone=NY)
    assert [(p.touchpoint.name, p.send_at, p.catch_up) for p in planned] == [("sms-2d", NOW, True)]


def test_a_visit_booked_for_this_afternoon_gets_only_the_two_hour_sms():
    visit = Visit("a1", _at(23, 15), booked_at=NOW)
    planned = plan(visit, Policy(), NOW, practice_zone=NY)
    assert [(p.touchpoint.name, p.send_at) for p in planned] == [("sms-2h", _at(23, 13))]


def test_a_visit_too_close_gets_nothing():
    assert plan(Visit("a1", NOW + MIN_NOTICE, booked_at=NOW), Policy(), NOW, practice_zone=NY) == []


def test_an_sms_due_before_eight_waits_for_eight_in_the_patients_zone():
    visit = Visit("a1", _at(27, 7, 30, zone=LA), booked_at=NOW - timedelta(days=30))
    planned = plan(visit, Policy(), NOW, practice_zone=NY, patient_zone=LA)
    sms = next(p for p in planned if p.touchpoint.name == "sms-2d")
    assert sms.send_at == _at(25, 8, 0, zone=LA)


def test_a_closure_day_moves_the_reminder_to_the_last_open_day_before_it():
    thanksgiving = date(2026, 11, 26)
    visit = Visit("a1", _at(28, 10), booked_at=NOW - timedelta(days=30))
    planned = plan(visit, Policy(closed_on={thanksgiving}), NOW, practice_zone=NY)
    sms = next(p for p in planned if p.touchpoint.name == "sms-2d")
    assert sms.send_at == _at(25, 10)


def test_the_most_specific_policy_wins():
    one = (Touchpoint("sms-1d", MessageChannel.SMS, timedelta(days=1), asks_reply=True),)
    three = (Touchpoint("email-3d", MessageChannel.EMAIL, timedelta(days=3)),)
    policy = Policy(by_specialty={"dermatology": one}, by_appointment_type={"procedure": three})
    derm = Visit("a1", _at(30, 10), specialty="dermatology", appointment_type="followup")
    procedure = Visit("a2", _at(30, 10), specialty="dermatology", appointment_type="procedure")
    assert _names(plan(derm, policy, NOW, practice_zone=NY)) == ["sms-1d"]
    assert _names(plan(procedure, policy, NOW, practice_zone=NY)) == ["email-3d"]


def test_what_fell_due_a_few_minutes_ago_is_sent_on_time_not_as_a_catch_up():
    visit = Visit(
        "a1", NOW + timedelta(days=2) - timedelta(minutes=4), booked_at=NOW - timedelta(days=9)
    )
    planned = plan(visit, Policy(), NOW, practice_zone=NY)
    assert [(p.touchpoint.name, p.catch_up) for p in due_now(planned, NOW)] == [("sms-2d", False)]


def test_next_allowed_on_the_day_new_york_falls_back():
    # 2026-11-01: clocks go from 2:00 back to 1:00; 8:00 is still 8:00 wall-clock.
    at = datetime(2026, 11, 1, 5, 30, tzinfo=NY)
    assert next_allowed(at, QuietHours(), NY) == datetime(2026, 11, 1, 8, 0, tzinfo=NY)
    late = datetime(2026, 3, 7, 22, 0, tzinfo=NY)  # the night before spring forward
    assert next_allowed(late, QuietHours(), NY) == datetime(2026, 3, 8, 8, 0, tzinfo=NY)


instants = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001  (hypothesis takes naive bounds)
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
closures = st.frozensets(
    st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 1, 31)), max_size=40
)
# A visit some time ahead, booked some time before, in two zones, with some closure days.
visit_cases = {
    "now": instants,
    "ahead": st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
    "booked_before": st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)),
    "practice_zone": st.sampled_from(ZONES),
    "patient_zone": st.sampled_from(ZONES),
    "closed": closures,
}


@settings(max_examples=400, deadline=None)
@given(**visit_cases)
def test_every_plan_keeps_the_rules(now, ahead, booked_before, practice_zone, patient_zone, closed):
    start = now + ahead
    visit = Visit("a1", start, booked_at=min(now, start) - booked_before)
    policy = Policy(closed_on=closed)
    planned = plan(visit, policy, now, practice_zone=practice_zone, patient_zone=patient_zone)
    names = _names(planned)
    assert len(names) == len(set(names))  # each touchpoint at most once
    assert sum(p.catch_up for p in planned) <= 1  # never a burst of catch-ups
    assert [p.send_at for p in planned] == sorted(p.send_at for p in planned)
    for p in planned:
        assert now - ON_TIME <= p.send_at <= start - MIN_NOTICE
        assert p.send_at.astimezone(practice_zone).date() not in closed
        if p.touchpoint.channel is MessageChannel.SMS:
            assert is_allowed(p.send_at, QuietHours(), patient_zone)
        if p.touchpoint.same_day_only:
            assert visit.booked_at is not None
            assert (
                visit.booked_at.astimezone(practice_zone).date()
                == start.astimezone(practice_zone).date()
            )


@settings(max_examples=300, deadline=None)
@given(at=instants, zone=st.sampled_from(ZONES), opens=st.integers(5, 11), hours=st.integers(6, 14))
def test_next_allowed_is_the_first_allowed_moment_at_or_after(at, zone, opens, hours):
    quiet = QuietHours(time(opens), time(min(opens + hours, 23)))
    allowed = next_allowed(at, quiet, zone)
    assert allowed >= at
    assert is_allowed(allowed, quiet, zone)
    assert allowed - at < timedelta(hours=25)
    if allowed > at:  # nothing earlier was allowed: an hour before opening is still quiet
        assert not is_allowed(max(at, allowed - timedelta(minutes=1)), quiet, zone)


@settings(max_examples=400, deadline=None)
@given(**visit_cases, fraction=st.floats(min_value=0.0, max_value=0.999))
def test_nothing_new_falls_due_before_the_next_look(
    now, ahead, booked_before, practice_zone, patient_zone, closed, fraction
):
    # The incremental planner plans an unchanged visit again only at `next_look`: planning it
    # at any moment before must find nothing due that was not sent already.
    start = now + ahead
    visit = Visit("a1", start, booked_at=min(now, start) - booked_before)
    policy = Policy(closed_on=closed)
    zones = {"practice_zone": practice_zone, "patient_zone": patient_zone}
    planned = plan(visit, policy, now, **zones)
    sent = {p.touchpoint.name for p in due_now(planned, now)}
    look = next_look(visit, planned, sent, policy, now, practice_zone=practice_zone)
    assert look is None or look > now
    until = look or start
    moment = now + (until - now) * fraction
    later = plan(visit, policy, moment, **zones)
    assert {p.touchpoint.name for p in due_now(later, moment)} <= sent


def test_on_a_closure_day_a_visit_with_every_touchpoint_passed_is_looked_at_tomorrow():
    visit = Visit("a1", NOW + timedelta(days=1), booked_at=NOW - timedelta(hours=1))
    policy = Policy(closed_on=frozenset({date(2026, 11, 23)}))
    planned = plan(visit, policy, NOW, practice_zone=NY)
    assert planned == []  # closed today: no catch-up now
    look = next_look(visit, planned, set(), policy, NOW, practice_zone=NY)
    assert look == datetime(2026, 11, 24, 0, 0, tzinfo=NY)
    tomorrow = plan(visit, policy, look, practice_zone=NY)
    assert [(p.touchpoint.name, p.catch_up) for p in tomorrow] == [("sms-2d", True)]


def test_the_next_look_is_the_next_touchpoint_not_yet_sent():
    visit = Visit("a1", NOW + timedelta(days=7), booked_at=NOW - timedelta(days=30))
    planned = plan(visit, Policy(), NOW, practice_zone=NY)
    look = next_look(visit, planned, {"email-7d"}, Policy(), NOW, practice_zone=NY)
    assert look == NOW + timedelta(days=5)  # sms-2d
    everything = {"email-7d", "sms-2d"}
    assert next_look(visit, planned, everything, Policy(), NOW, practice_zone=NY) is None


def test_a_policy_change_changes_its_fingerprint():
    closed = Policy(closed_on=frozenset({date(2026, 12, 25)}))
    assert policy_fingerprint(Policy()) == policy_fingerprint(Policy())
    assert policy_fingerprint(closed) != policy_fingerprint(Policy())


def test_a_high_risk_visit_adds_the_extra_touchpoints_once_and_others_do_not() -> None:
    start = NOW + timedelta(days=5)
    names = [p.touchpoint.name for p in plan(Visit("a", start), Policy(), NOW, practice_zone=NY)]
    assert names == ["sms-2d"]  # the 7-day e-mail has passed; a later touchpoint is ahead
    risky = plan(Visit("a", start, high_risk=True), Policy(), NOW, practice_zone=NY)
    assert [p.touchpoint.name for p in risky] == ["sms-2d", "sms-1d-risk"]
    same_name = Policy(high_risk=(Touchpoint("sms-2d", MessageChannel.SMS, timedelta(days=1)),))
    again = plan(Visit("a", start, high_risk=True), same_name, NOW, practice_zone=NY)
    assert [p.touchpoint.name for p in again].count("sms-2d") == 1
    assert policy_fingerprint(Policy()) != policy_fingerprint(Policy(high_risk_at=0.5))


def test_a_text_held_by_quiet_hours_into_a_closure_day_goes_on_the_next_open_morning() -> None:
    # Found by the property above: the 2-day text falls due on New Year's Day (closed), moves
    # to 21:00 the evening before, is held by quiet hours to 8:00 on New Year's Day, and was
    # dropped; planned again a day later it became a catch-up. Now it goes at 8:00 on Jan 2.
    now = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # 19:00 on Dec 31 in New York
    visit = Visit("a1", now + timedelta(days=3, hours=2), booked_at=now)
    planned = plan(visit, Policy(closed_on={date(2026, 1, 1)}), now, practice_zone=NY)
    assert [(p.touchpoint.name, p.send_at) for p in planned] == [
        ("sms-2d", datetime(2026, 1, 2, 8, 0, tzinfo=NY))
    ]
