"""The pure parts of the generator: sizes, schedules, attendance, identifiers, time, determinism."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from clinicflow.synth import practitioner_count
from clinicflow.synth.attendance import (
    HISTORY_UTILIZATION,
    future_utilization,
    lead_days,
    noshow_probability,
    visit_kind,
)
from clinicflow.synth.catalog import resource_files
from clinicflow.synth.identifiers import luhn_check_digit, mbi, npi, stream
from clinicflow.synth.patient_resources import telecom
from clinicflow.synth.people import Patient
from clinicflow.synth.plan import plan_practice
from clinicflow.synth.schedule import AFTERNOON, MORNING, sessions_on, slot_starts
from clinicflow.synth.specialties import BASE_ROSTER, roster
from clinicflow.synth.timeline import local_day, utc_text


def test_a_practice_has_at_least_twelve_practitioners_and_one_per_1500_patients() -> None:
    assert practitioner_count(1) == 12
    assert practitioner_count(18_000) == 12
    assert practitioner_count(18_001) == 13
    assert practitioner_count(50_000) == 34


@given(st.integers(min_value=1, max_value=1_000_000))
def test_practitioner_count_covers_every_1500_patients_without_spare_ones(patients: int) -> None:
    count = practitioner_count(patients)
    assert count >= 12
    assert count * 1500 >= patients
    assert count == 12 or (count - 1) * 1500 < patients


def test_the_roster_starts_with_the_base_twelve_and_grows_across_specialties() -> None:
    assert [s.key for s in roster(12)] == list(BASE_ROSTER)
    grown = roster(34)
    assert len(grown) == 34
    assert len({s.key for s in grown}) >= 10
    assert {s.slot_minutes for s in grown} == {15, 20, 30}


@given(
    st.lists(st.integers(min_value=0, max_value=23 * 60), min_size=2, max_size=8, unique=True),
    st.sampled_from([15, 20, 30]),
)
def test_slots_never_overlap_and_stay_inside_their_sessions(
    bounds: list[int], minutes: int
) -> None:
    edges = sorted(bounds)
    sessions = list(pairwise(edges))[::2]
    starts = slot_starts(sessions, minutes)
    assert all(a + minutes <= b for a, b in pairwise(starts))
    for start in starts:
        assert any(begin <= start and start + minutes <= end for begin, end in sessions)


@given(
    st.integers(0, 6),
    st.tuples(st.integers(0, 4), st.integers(0, 1)),
    st.sampled_from([15, 20, 30]),
)
def test_a_clinician_works_weekdays_in_two_sessions_minus_one_half_day(
    weekday: int, day_off: tuple[int, int], minutes: int
) -> None:
    sessions = sessions_on(weekday, day_off)
    if weekday >= 5:
        assert sessions == ()
    else:
        expected = 1 if day_off[0] == weekday else 2
        assert len(sessions) == expected
        assert set(sessions) <= {MORNING, AFTERNOON}
    starts = slot_starts(sessions, minutes)
    assert len(starts) == len(sessions) * (240 // minutes)


@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 100))
def test_no_shows_get_likelier_the_further_ahead_a_visit_was_booked(
    lead: int, later: int, age: int
) -> None:
    sooner, further = sorted((lead, later))
    assert noshow_probability(sooner, age) <= noshow_probability(further, age) < 0.5


def test_future_slots_are_fullest_today_and_tomorrow_and_never_below_60_percent() -> None:
    shares = [future_utilization(day) for day in range(36)]
    assert shares == sorted(shares, reverse=True)
    assert min(shares) >= 0.6
    assert max(shares) <= 0.86
    assert shares[0] == shares[1] > shares[7]
    assert shares[0] > HISTORY_UTILIZATION


@given(st.integers())
def test_walk_ins_are_booked_the_same_day_and_never_in_advance(seed: int) -> None:
    rng = random.Random(seed)
    kind = visit_kind(rng)
    assert lead_days(rng, "WALKIN") == 0
    assert visit_kind(rng, walk_in_allowed=False) != "WALKIN"
    assert kind in {"ROUTINE", "FOLLOWUP", "CHECKUP", "WALKIN"}


def test_npi_check_digit_matches_the_cms_example() -> None:
    assert luhn_check_digit("80840" + "123456789") == 3


@given(st.integers())
def test_every_npi_passes_the_luhn_check_with_the_80840_prefix(seed: int) -> None:
    rng = random.Random(seed)
    for organization in (False, True):
        number = npi(rng, organization=organization)
        assert len(number) == 10
        assert number[0] == ("2" if organization else "1")
        assert luhn_check_digit("80840" + number[:9]) == int(number[9])


@given(st.integers())
def test_medicare_ids_follow_the_mbi_format(seed: int) -> None:
    letters = "ACDEFGHJKMNPQRTUVWXY"
    pattern = rf"[1-9][{letters}][{letters}0-9]\d[{letters}][{letters}0-9]\d[{letters}]{{2}}\d{{2}}"
    assert re.fullmatch(pattern, mbi(random.Random(seed)))


def test_streams_for_different_purposes_differ_and_repeat() -> None:
    assert stream(7, "patients").random() == stream(7, "patients").random()
    assert stream(7, "patients").random() != stream(7, "history").random()


def test_clinic_hours_keep_their_local_time_on_the_days_the_clocks_change() -> None:
    zone = ZoneInfo("America/New_York")
    fall_back = local_day(date(2026, 11, 1), 0, zone)
    spring_forward = local_day(date(2026, 3, 8), 0, zone)
    assert utc_text(fall_back.instant_s(8 * 60)) == "2026-11-01T13:00:00Z"
    assert utc_text(spring_forward.instant_s(8 * 60)) == "2026-03-08T12:00:00Z"
    assert spring_forward.local_text(8 * 60) == "2026-03-08T08:00:00-04:00"


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_utc_text_writes_the_same_instant_as_strftime(instant_s: int) -> None:
    expected = datetime.fromtimestamp(instant_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert utc_text(instant_s) == expected


def _patient(mobile: str | None, email: str | None, prefers_email: bool) -> Patient:
    return Patient(
        index=0, id="p", mrn="1", given=("Ana",), family="Ruiz", gender="female",
        birth_on=date(1980, 1, 1), language="es", address=("1 Main St",), city="Riverton",
        state="NY", postal_code="12210", mobile=mobile, home_phone=None if mobile else "+1",
        email=email, prefers_email=prefers_email, time_zone=None, household=0,
        relationship="self", gp_index=0, updated_s=0,
    )  # fmt: skip


def test_the_preferred_channel_gets_rank_one() -> None:
    by_sms = telecom(_patient("+15185550123", "a@example.com", prefers_email=False))
    by_email = telecom(_patient("+15185550123", "a@example.com", prefers_email=True))
    landline = telecom(_patient(None, None, prefers_email=False))
    assert [(t["system"], t["rank"]) for t in by_sms] == [("phone", 1), ("email", 2)]
    assert [(t["system"], t["rank"]) for t in by_email] == [("email", 1), ("phone", 2)]
    assert [(t["use"], t["rank"]) for t in landline] == [("home", 1)]


def _bytes_of(seed: int, patients: int) -> list[bytes]:
    plan = plan_practice(
        seed=seed, patients=patients, anchor_on=date(2026, 11, 23), timezone="America/Chicago",
        history_days=3,
    )  # fmt: skip
    return [b"".join(orjson.dumps(r) for r in f.resources) for f in resource_files(plan)]


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**63), st.integers(min_value=1, max_value=60))
def test_any_seed_and_size_give_the_same_bytes_twice(seed: int, patients: int) -> None:
    assert _bytes_of(seed, patients) == _bytes_of(seed, patients)
