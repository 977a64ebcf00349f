"""Cron instants on the practice's wall clock, across DST changes (pure, no I/O)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.engine.cron import due_instants, parse_cron

NEW_YORK = ZoneInfo("America/New_York")
SPRING_FORWARD_UTC = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # midnight EST, 8 March 2026
FALL_BACK_UTC = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # midnight EDT, 1 November 2026


def _local(instants: list[datetime]) -> list[str]:
    return [i.astimezone(NEW_YORK).strftime("%H:%M%z") for i in instants]


def test_a_quarter_hourly_schedule_fires_on_the_quarter_hours() -> None:
    start = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    due = due_instants(parse_cron("*/15 * * * *"), NEW_YORK, start, start + timedelta(hours=1))
    assert _local(due) == ["09:15-0500", "09:30-0500", "09:45-0500", "10:00-0500"]


def test_a_weekday_schedule_is_read_in_the_practice_zone() -> None:
    # 07:00 in New York is 12:00 UTC in winter: a UTC reading would fire five hours early.
    spec = parse_cron("0 7 * * 1-5")
    friday = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    due = due_instants(spec, NEW_YORK, friday, friday + timedelta(days=4))
    assert due == [
        datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    ]


def test_a_time_skipped_by_spring_forward_runs_once_when_the_clocks_jump() -> None:
    due = due_instants(
        parse_cron("30 2 * * *"),
        NEW_YORK,
        SPRING_FORWARD_UTC,
        SPRING_FORWARD_UTC + timedelta(hours=6),
    )
    assert _local(due) == ["03:00-0400"]


def test_an_every_half_hour_schedule_keeps_real_intervals_over_spring_forward() -> None:
    due = due_instants(
        parse_cron("*/30 * * * *"),
        NEW_YORK,
        SPRING_FORWARD_UTC + timedelta(hours=1),
        SPRING_FORWARD_UTC + timedelta(hours=3),
    )
    assert _local(due) == ["01:30-0500", "03:00-0400", "03:30-0400", "04:00-0400"]


def test_a_daily_time_in_the_repeated_hour_runs_once_on_fall_back() -> None:
    due = due_instants(
        parse_cron("30 1 * * *"), NEW_YORK, FALL_BACK_UTC, FALL_BACK_UTC + timedelta(hours=6)
    )
    assert _local(due) == ["01:30-0400"]


def test_an_hourly_schedule_runs_in_both_passes_of_the_repeated_hour() -> None:
    due = due_instants(
        parse_cron("0 * * * *"), NEW_YORK, FALL_BACK_UTC, FALL_BACK_UTC + timedelta(hours=4)
    )
    assert _local(due) == ["01:00-0400", "01:00-0500", "02:00-0500", "03:00-0500"]


@pytest.mark.parametrize("expression", ["* * *", "0 0 L * *", "0 9 * * 1#2", "61 * * * *"])
def test_unsupported_or_invalid_expressions_are_refused_with_the_expression(
    expression: str,
) -> None:
    with pytest.raises(ValueError, match="cron expression"):
        parse_cron(expression)


EXPRESSIONS = st.sampled_from(
    ["*/15 * * * *", "30 2 * * *", "30 1 * * *", "0 * * * *", "0 7 * * 1-5", "5 9 1,15 * mon"]
)
ZONES = st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"])
# hypothesis takes naive bounds and attaches the zone itself.
FIRST = datetime(2026, 1, 1)  # noqa: DTZ001  (hypothesis wants naive bounds)
LAST = datetime(2027, 1, 1)  # noqa: DTZ001  (hypothesis wants naive bounds)
INSTANTS = st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC))


@given(EXPRESSIONS, ZONES, INSTANTS, st.lists(st.integers(1, 3000), min_size=1, max_size=6))
def test_ticks_at_any_moments_see_each_instant_exactly_once(
    expression: str, zone: str, start: datetime, gaps_s: list[int]
) -> None:
    spec, tz = parse_cron(expression), ZoneInfo(zone)
    ticks = [start]
    for gap in gaps_s:
        ticks.append(ticks[-1] + timedelta(seconds=gap * 7))
    pieces = [i for a, b in itertools.pairwise(ticks) for i in due_instants(spec, tz, a, b)]
    assert pieces == due_instants(spec, tz, ticks[0], ticks[-1])
    assert len(pieces) == len(set(pieces))
    assert all(ticks[0] < i <= ticks[-1] for i in pieces)


@given(EXPRESSIONS, st.datetimes(min_value=FIRST, max_value=LAST))
def test_wall_clock_matching_agrees_with_croniter(expression: str, wall: datetime) -> None:
    wall = wall.replace(second=0, microsecond=0)
    assert parse_cron(expression).matches(wall) == croniter.match(expression, wall)


@given(ZONES, INSTANTS)
def test_a_daily_schedule_fires_once_per_local_day(zone: str, start: datetime) -> None:
    tz = ZoneInfo(zone)
    due = due_instants(parse_cron("30 2 * * *"), tz, start, start + timedelta(days=3))
    days = [i.astimezone(tz).date() for i in due]
    assert len(days) == len(set(days))
    assert len(due) in (2, 3)
