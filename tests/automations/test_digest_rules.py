"""daily-digest decisions: which provider sessions tomorrow are overbooked or empty."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.automations.digest.rules import (
    Half,
    Problem,
    SlotTime,
    Visit,
    describe,
    flagged_sessions,
    session_loads,
)

NY = ZoneInfo("America/New_York")
DAY = date(2026, 11, 24)


def at(hour, minute=0, day=DAY):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).astimezone(UTC)


def test_a_session_with_more_visits_than_slots_is_overbooked():
    slots = [SlotTime("dr1", at(9)), SlotTime("dr1", at(9, 30))]
    visits = [Visit("dr1", at(9)), Visit("dr1", at(9)), Visit("dr1", at(9, 30))]
    (load,) = session_loads(slots, visits, DAY, NY)
    assert (load.half, load.slots, load.booked, load.problem) == (
        Half.MORNING,
        2,
        3,
        Problem.OVERBOOKED,
    )


def test_an_afternoon_with_slots_and_no_visits_is_empty_and_a_full_morning_is_fine():
    slots = [SlotTime("dr1", at(9)), SlotTime("dr1", at(14))]
    visits = [Visit("dr1", at(9))]
    flagged = flagged_sessions(session_loads(slots, visits, DAY, NY))
    assert [(s.half, s.problem) for s in flagged["dr1"]] == [(Half.AFTERNOON, Problem.EMPTY)]


def test_sessions_are_counted_in_the_practice_time_zone_not_utc():
    # 19:30 in New York is already the next day in UTC; it still belongs to DAY's afternoon.
    slots = [SlotTime("dr1", at(19, 30))]
    (load,) = session_loads(slots, [], DAY, NY)
    assert load.day_on == DAY
    assert load.half is Half.AFTERNOON


def test_other_days_are_ignored():
    slots = [SlotTime("dr1", at(9, day=DAY + timedelta(days=1)))]
    assert session_loads(slots, [], DAY, NY) == []


def test_the_description_says_what_is_wrong_in_plain_words():
    slots = [SlotTime("dr1", at(9))]
    visits = [Visit("dr1", at(9)), Visit("dr1", at(9))]
    text = describe("Dr. Ana Ortiz", flagged_sessions(session_loads(slots, visits, DAY, NY))["dr1"])
    assert text == (
        "Dr. Ana Ortiz, Tue 24 Nov: morning overbooked (2 visits for 1 slots). "
        "Please review the schedule."
    )


minutes = st.integers(min_value=7 * 60, max_value=18 * 60)


@given(slot_minutes=st.lists(minutes, max_size=30), visit_minutes=st.lists(minutes, max_size=30))
def test_counts_add_up_and_input_order_does_not_matter(slot_minutes, visit_minutes):
    slots = [SlotTime("dr1", at(m // 60, m % 60)) for m in slot_minutes]
    visits = [Visit("dr1", at(m // 60, m % 60)) for m in visit_minutes]
    loads = session_loads(slots, visits, DAY, NY)
    assert sum(x.slots for x in loads) == len(slots)
    assert sum(x.booked for x in loads) == len(visits)
    assert session_loads(slots[::-1], visits[::-1], DAY, NY) == loads


def test_a_provider_with_visits_but_no_calendar_is_not_flagged():
    visits = [Visit("dr9", at(9)), Visit("dr9", at(9, 30))]
    loads = session_loads([], visits, DAY, NY)
    assert [(x.slots, x.booked) for x in loads] == [(0, 2)]
    assert flagged_sessions(loads) == {}
