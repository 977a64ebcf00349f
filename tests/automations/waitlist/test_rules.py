"""waitlist-backfill decisions: who may be offered a freed slot, in what order, in which waves."""

import itertools
import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.automations.waitlist import (
    Availability,
    EntryId,
    FreedSlot,
    Ineligible,
    PatientId,
    RankingPolicy,
    WaitlistEntry,
    WaitlistIndex,
    eligible,
    offer_waves,
    rank,
)

NY = ZoneInfo("America/New_York")
POLICY = RankingPolicy()


def local(day, hour, minute=0):
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY).astimezone(UTC)


TUESDAY = date(2026, 11, 24)
NOW = local(date(2026, 11, 23), 9)


def a_slot(**changes):
    slot = FreedSlot(
        start_at=local(TUESDAY, 10),
        minutes=20,
        practitioner_id="dr-lee",
        specialty="family",
        location_id="main",
        visit_type="ROUTINE",
        zone=NY,
    )
    return replace(slot, **changes)


def an_entry(**changes):
    entry = WaitlistEntry(
        id=EntryId("w1"),
        patient_id=PatientId("p1"),
        practitioner_id=None,
        specialty="family",
        visit_type="ROUTINE",
        minutes=20,
        location_id="main",
        earliest_on=date(2026, 11, 20),
        latest_on=date(2026, 12, 20),
        listed_at=NOW - timedelta(days=10),
    )
    return replace(entry, **changes)


def reasons(entry, slot=None, now=NOW):
    return eligible(entry, slot or a_slot(), now=now, policy=POLICY)


def test_an_entry_for_the_slots_specialty_type_and_dates_is_eligible():
    assert reasons(an_entry()) == ()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"opted_out": True}, Ineligible.OPTED_OUT),
        ({"last_contacted_at": NOW - timedelta(hours=47)}, Ineligible.RECENTLY_CONTACTED),
        ({"practitioner_id": "dr-ortiz"}, Ineligible.WRONG_PRACTITIONER),
        ({"specialty": "cardiology"}, Ineligible.WRONG_SPECIALTY),
        ({"visit_type": "CHECKUP"}, Ineligible.VISIT_TYPE_MISMATCH),
        ({"minutes": 30}, Ineligible.SLOT_TOO_SHORT),
        ({"location_id": "north", "other_locations_ok": False}, Ineligible.WRONG_LOCATION),
        ({"earliest_on": date(2026, 11, 25)}, Ineligible.OUTSIDE_DATES),
        ({"latest_on": date(2026, 11, 23)}, Ineligible.OUTSIDE_DATES),
        (
            {"availability": (Availability(1, time(13), time(17)),)},  # Tuesday afternoons only
            Ineligible.OUTSIDE_TIMES,
        ),
    ],
)
def test_each_reason_an_entry_cannot_be_offered_the_slot(changes, reason):
    assert reasons(an_entry(**changes)) == (reason,)


def test_a_slot_within_the_minimum_lead_time_is_offered_to_nobody():
    soon = a_slot(start_at=NOW + timedelta(hours=1, minutes=59))
    assert reasons(an_entry(), soon) == (Ineligible.TOO_CLOSE,)
    assert reasons(an_entry(), a_slot(start_at=NOW + timedelta(hours=2))) == ()


def test_a_patient_last_contacted_two_days_ago_may_be_offered_again():
    assert reasons(an_entry(last_contacted_at=NOW - timedelta(hours=48))) == ()


def test_a_patient_who_asked_for_a_practitioner_is_offered_only_that_practitioners_slots():
    assert reasons(an_entry(practitioner_id="dr-lee", specialty="other")) == ()


def test_a_follow_up_fits_a_routine_slot_and_anything_fits_a_slot_of_no_type():
    assert reasons(an_entry(visit_type="FOLLOWUP")) == ()
    assert reasons(an_entry(visit_type="CHECKUP"), a_slot(visit_type=None)) == ()


def test_a_shorter_visit_fits_and_another_site_is_fine_unless_the_patient_said_no():
    assert reasons(an_entry(minutes=15, location_id="north")) == ()


def test_every_reason_is_reported_not_just_the_first():
    entry = an_entry(opted_out=True, minutes=40, specialty="cardiology")
    assert reasons(entry) == (
        Ineligible.OPTED_OUT,
        Ineligible.WRONG_SPECIALTY,
        Ineligible.SLOT_TOO_SHORT,
    )


def test_time_windows_are_read_on_the_practice_clock_on_each_side_of_the_fall_dst_change():
    # New York leaves daylight time on 2026-11-01: 14:00 UTC is 10:00 before it, 09:00 after.
    mondays_at_nine = an_entry(
        availability=(Availability(0, time(9), time(10)),),
        earliest_on=date(2026, 10, 1),
    )
    before = a_slot(start_at=datetime(2026, 10, 26, 14, tzinfo=UTC))
    after = a_slot(start_at=datetime(2026, 11, 2, 14, tzinfo=UTC))
    now = datetime(2026, 10, 20, tzinfo=UTC)
    assert reasons(mondays_at_nine, before, now) == (Ineligible.OUTSIDE_TIMES,)
    assert reasons(mondays_at_nine, after, now) == ()


def test_a_slot_on_the_spring_dst_day_is_matched_by_its_wall_clock_time():
    # 2026-03-08: clocks jump from 02:00 to 03:00; a Sunday slot at 08:00 EDT is 12:00 UTC.
    sundays = an_entry(
        availability=(Availability(6, time(8), time(8, 20)),),
        earliest_on=date(2026, 3, 1),
        latest_on=date(2026, 3, 31),
    )
    slot = a_slot(start_at=datetime(2026, 3, 8, 12, tzinfo=UTC))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert reasons(sundays, slot, now) == ()
    assert reasons(sundays, replace(slot, start_at=slot.start_at - timedelta(hours=1)), now) == (
        Ineligible.OUTSIDE_TIMES,
    )


def test_a_slot_that_runs_past_the_end_of_the_patients_window_is_outside_their_times():
    entry = an_entry(availability=(Availability(1, time(9), time(10, 10)),))
    assert reasons(entry) == (Ineligible.OUTSIDE_TIMES,)


def test_higher_priority_outranks_longer_waiting_with_the_default_weights():
    urgent = an_entry(id=EntryId("urgent"), priority=1, listed_at=NOW - timedelta(days=1))
    patient = an_entry(id=EntryId("patient"), priority=0, listed_at=NOW - timedelta(days=50))
    ranked = rank([patient, urgent], a_slot(), now=NOW, policy=POLICY)
    assert [r.entry.id for r in ranked] == ["urgent", "patient"]


def test_equal_scores_go_to_whoever_was_listed_first_then_by_id():
    listed = NOW - timedelta(days=100)  # past the waiting horizon: same score for all three
    entries = [
        an_entry(id=EntryId("c"), listed_at=listed - timedelta(days=1)),
        an_entry(id=EntryId("b"), listed_at=listed),
        an_entry(id=EntryId("a"), listed_at=listed),
    ]
    ranked = rank(entries, a_slot(), now=NOW, policy=POLICY)
    assert [r.entry.id for r in ranked] == ["c", "a", "b"]


def test_the_score_shows_its_parts():
    (ranked,) = rank([an_entry(minutes=15, priority=1)], a_slot(), now=NOW, policy=POLICY)
    assert ranked.fit.priority == 1.0
    assert ranked.fit.duration == 0.75
    assert ranked.fit.location == 1.0
    assert ranked.fit.availability == 0.5  # no days or times given


def test_waves_of_three_every_fifteen_minutes_stop_before_the_lead_time():
    entries = [an_entry(id=EntryId(f"w{n}"), patient_id=PatientId(f"p{n}")) for n in range(10)]
    ranked = rank(entries, a_slot(), now=NOW, policy=POLICY)
    waves = offer_waves(ranked, start=NOW, stop_before=NOW + timedelta(minutes=31))
    assert [(w.number, w.send_at - NOW, len(w.offers)) for w in waves] == [
        (0, timedelta(0), 3),
        (1, timedelta(minutes=15), 3),
        (2, timedelta(minutes=30), 3),
    ]


def test_a_patient_on_the_list_twice_is_offered_the_slot_once():
    twice = [an_entry(id=EntryId("w1")), an_entry(id=EntryId("w2"), minutes=15)]
    ranked = rank(twice, a_slot(), now=NOW, policy=POLICY)
    (wave,) = offer_waves(ranked, start=NOW, stop_before=NOW + timedelta(hours=1))
    assert [o.entry.id for o in wave.offers] == ["w1"]


# Properties -------------------------------------------------------------------------------------

DAYS = st.dates(date(2026, 11, 20), date(2026, 12, 10))
WINDOWS = st.builds(
    Availability,
    st.integers(0, 6),
    st.sampled_from([time(8), time(10), time(13)]),
    st.sampled_from([time(12), time(17)]),
)
ENTRY = st.builds(
    WaitlistEntry,
    id=st.just(EntryId("")),
    patient_id=st.sampled_from([PatientId(f"p{n}") for n in range(6)]),
    practitioner_id=st.sampled_from([None, "dr-lee", "dr-ortiz"]),
    specialty=st.sampled_from(["family", "cardiology"]),
    visit_type=st.sampled_from(["ROUTINE", "FOLLOWUP", "CHECKUP"]),
    minutes=st.sampled_from([15, 20, 30]),
    location_id=st.sampled_from([None, "main", "north"]),
    earliest_on=st.none() | DAYS,
    latest_on=st.none() | DAYS,
    listed_at=st.integers(0, 90 * 24).map(lambda h: NOW - timedelta(hours=h)),
    availability=st.lists(WINDOWS, max_size=2).map(tuple),
    other_locations_ok=st.booleans(),
    priority=st.integers(0, 9),
    last_contacted_at=st.none() | st.integers(1, 96).map(lambda h: NOW - timedelta(hours=h)),
    opted_out=st.booleans(),
)
ENTRIES = st.lists(ENTRY, max_size=40).map(
    lambda found: [replace(e, id=EntryId(f"w{n:03}")) for n, e in enumerate(found)]
)
SLOT = st.builds(
    FreedSlot,
    start_at=st.integers(0, 14 * 24 * 4).map(lambda q: NOW + timedelta(minutes=15 * q)),
    minutes=st.sampled_from([15, 20, 30]),
    practitioner_id=st.sampled_from(["dr-lee", "dr-ortiz"]),
    specialty=st.sampled_from(["family", "cardiology"]),
    location_id=st.sampled_from(["main", "north"]),
    visit_type=st.sampled_from([None, "ROUTINE", "FOLLOWUP", "CHECKUP"]),
    zone=st.just(NY),
)


def ids(ranked):
    return [r.entry.id for r in ranked]


@given(ENTRIES, SLOT)
def test_the_ranking_holds_exactly_the_eligible_entries(entries, slot):
    ranked = rank(entries, slot, now=NOW, policy=POLICY)
    expected = [e.id for e in entries if not eligible(e, slot, now=NOW, policy=POLICY)]
    assert sorted(ids(ranked)) == sorted(expected)


@given(ENTRIES, SLOT)
def test_the_ranking_never_holds_an_opted_out_or_recently_contacted_patient(entries, slot):
    for ranked in rank(entries, slot, now=NOW, policy=POLICY):
        assert not ranked.entry.opted_out
        contacted = ranked.entry.last_contacted_at
        assert contacted is None or NOW - contacted >= POLICY.recontact_after


@given(ENTRIES, SLOT, st.randoms(use_true_random=False))
def test_the_ranking_is_the_same_whatever_order_the_waitlist_comes_in(entries, slot, rng):
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert rank(shuffled, slot, now=NOW, policy=POLICY) == rank(
        entries, slot, now=NOW, policy=POLICY
    )


@given(ENTRIES, SLOT)
def test_the_index_gives_the_same_ranking_as_the_whole_waitlist(entries, slot):
    index = WaitlistIndex(entries)
    assert rank(index.candidates(slot, POLICY), slot, now=NOW, policy=POLICY) == rank(
        entries, slot, now=NOW, policy=POLICY
    )


@given(ENTRIES, ENTRY, SLOT, st.integers(1, 9), st.integers(0, 9))
def test_an_entry_differing_only_by_a_higher_priority_never_ranks_below(
    others, entry, slot, better, worse
):
    better_urgency = 9 - better
    worse_urgency = 9 - (worse if worse else 5)
    if better_urgency <= worse_urgency:
        better, worse = 1, 9
    low = replace(entry, id=EntryId("low"), priority=worse)
    high = replace(entry, id=EntryId("high"), priority=better)
    order = ids(rank([*others, low, high], slot, now=NOW, policy=POLICY))
    if "low" in order:
        assert order.index("high") < order.index("low")


@given(
    ENTRIES,
    SLOT,
    st.integers(1, 5),
    st.integers(1, 60).map(lambda m: timedelta(minutes=m)),
    st.integers(0, 300).map(lambda m: NOW + timedelta(minutes=m)),
)
def test_waves_never_overlap_and_never_go_out_at_or_after_stop_before(
    entries, slot, size, gap, stop_before
):
    ranked = rank(entries, slot, now=NOW, policy=POLICY)
    waves = offer_waves(ranked, start=NOW, stop_before=stop_before, wave_size=size, wave_gap=gap)
    offered = [o.entry.patient_id for w in waves for o in w.offers]
    assert len(offered) == len(set(offered))
    assert all(w.send_at < stop_before and 1 <= len(w.offers) <= size for w in waves)
    for earlier, later in itertools.pairwise(waves):
        assert later.send_at - earlier.send_at >= gap
    best_first = list(dict.fromkeys(r.entry.patient_id for r in ranked))
    assert offered == best_first[: len(offered)]


def test_waves_refuse_an_empty_wave_size():
    with pytest.raises(ValueError, match="at least one patient"):
        offer_waves([], start=NOW, stop_before=NOW, wave_size=0)


def test_ranking_is_reproducible_from_a_seeded_waitlist():
    rng = random.Random(7)
    entries = [
        an_entry(id=EntryId(f"w{n}"), priority=rng.randint(0, 9), minutes=rng.choice([15, 20]))
        for n in range(50)
    ]
    first = ids(rank(entries, a_slot(), now=NOW, policy=POLICY))
    assert first == ids(rank(list(reversed(entries)), a_slot(), now=NOW, policy=POLICY))
