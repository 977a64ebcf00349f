"""Sign-in throttling: per-account lockouts that grow, per-address limits over a window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinicflow.security.throttle import (
    DEFAULT,
    Throttle,
    ThrottlePolicy,
    lockout_s,
    throttle_decision,
)

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _ago(*seconds: int) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds]


def _failures_ending(count: int, *, last_s_ago: int) -> list[datetime]:
    """`count` failures one second apart, the most recent `last_s_ago` seconds before NOW."""
    return _ago(*(last_s_ago + i for i in range(count)))


def test_no_failures_allow_a_sign_in() -> None:
    assert throttle_decision([], [], now=NOW) == Throttle(True, 0, None)


def test_four_failures_in_a_row_still_allow_a_sign_in() -> None:
    assert throttle_decision(_failures_ending(4, last_s_ago=0), [], now=NOW).allowed


def test_the_fifth_failure_locks_the_account_for_one_minute() -> None:
    failures = _failures_ending(5, last_s_ago=0)
    assert throttle_decision(failures, [], now=NOW) == Throttle(False, 60, "account")


def test_the_lockout_ends_a_minute_after_the_fifth_failure() -> None:
    failures = _failures_ending(5, last_s_ago=0)
    assert throttle_decision(failures, [], now=NOW + timedelta(seconds=59)).retry_after_s == 1
    assert throttle_decision(failures, [], now=NOW + timedelta(seconds=60)).allowed


def test_each_further_failure_doubles_the_lockout_up_to_fifteen_minutes() -> None:
    lockouts = [lockout_s(n) for n in range(4, 12)]
    assert lockouts == [0, 60, 120, 240, 480, 900, 900, 900]


def test_a_long_failure_history_keeps_the_lockout_at_its_cap() -> None:
    assert lockout_s(10_000) == 900


def test_the_lockout_counts_from_the_most_recent_failure_whatever_the_order() -> None:
    failures = _failures_ending(7, last_s_ago=100)  # 7 failures: 4 minutes, 100 s already gone
    decision = throttle_decision(list(reversed(failures)), [], now=NOW)
    assert decision == Throttle(False, 240 - 100, "account")


def test_a_partial_second_of_lockout_rounds_up() -> None:
    failures = [NOW - timedelta(milliseconds=500), *_failures_ending(4, last_s_ago=1)]
    assert throttle_decision(failures, [], now=NOW).retry_after_s == 60


def test_thirty_failures_from_one_address_in_fifteen_minutes_block_it() -> None:
    failures = _ago(*range(600, 570, -1))  # 30 failures, the oldest 600 s ago
    decision = throttle_decision([], failures, now=NOW)
    assert decision == Throttle(False, 900 - 600, "address")


def test_twenty_nine_failures_from_one_address_still_allow_a_sign_in() -> None:
    assert throttle_decision([], _ago(*range(29)), now=NOW).allowed


def test_the_address_is_allowed_again_once_the_oldest_failure_leaves_the_window() -> None:
    failures = _ago(*range(600, 570, -1))
    assert throttle_decision([], failures, now=NOW + timedelta(seconds=299)).retry_after_s == 1
    assert throttle_decision([], failures, now=NOW + timedelta(seconds=300)).allowed


def test_with_more_failures_than_the_limit_enough_must_leave_the_window() -> None:
    failures = _ago(*range(800, 765, -1))  # 35 failures from 800 s to 766 s ago
    # The 6th oldest (795 s ago) must leave, in 105 s, to get below 30.
    assert throttle_decision([], failures, now=NOW).retry_after_s == 105


def test_address_failures_older_than_the_window_are_ignored() -> None:
    old = _ago(*range(901, 1000))
    assert throttle_decision([], old, now=NOW).allowed


def test_when_both_limits_apply_the_longer_wait_is_reported() -> None:
    account = _failures_ending(9, last_s_ago=0)  # 15 minutes
    address = _ago(*range(600, 570, -1))  # 5 minutes
    assert throttle_decision(account, address, now=NOW) == Throttle(False, 900, "account")
    short_account = _failures_ending(5, last_s_ago=0)  # 1 minute
    assert throttle_decision(short_account, address, now=NOW).reason == "address"


def test_a_custom_policy_changes_the_limits() -> None:
    policy = ThrottlePolicy(account_free_failures=3, account_first_lockout_s=10)
    decision = throttle_decision(_failures_ending(4, last_s_ago=0), [], now=NOW, policy=policy)
    assert decision == Throttle(False, 20, "account")


def test_the_default_policy_is_stricter_than_nists_hundred_failures_but_temporary() -> None:
    assert DEFAULT.account_free_failures <= 100
    assert DEFAULT.account_max_lockout_s <= 15 * 60


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        throttle_decision([], [], now=NOW.replace(tzinfo=None))


failure_offsets = st.lists(st.integers(min_value=0, max_value=3600), max_size=60)


@given(failure_offsets, failure_offsets, st.randoms())
def test_the_decision_does_not_depend_on_the_order_of_failures(
    account_s: list[int], address_s: list[int], rng: random.Random
) -> None:
    account, address = _ago(*account_s), _ago(*address_s)
    expected = throttle_decision(account, address, now=NOW)
    rng.shuffle(account)
    rng.shuffle(address)
    assert throttle_decision(account, address, now=NOW) == expected


@given(failure_offsets, failure_offsets)
def test_a_refusal_always_says_how_long_and_why_and_waiting_that_long_is_enough(
    account_s: list[int], address_s: list[int]
) -> None:
    account, address = _ago(*account_s), _ago(*address_s)
    decision = throttle_decision(account, address, now=NOW)
    if decision.allowed:
        assert decision == Throttle(True, 0, None)
        return
    assert decision.reason in {"account", "address"}
    assert 0 < decision.retry_after_s <= DEFAULT.account_max_lockout_s
    later = NOW + timedelta(seconds=decision.retry_after_s)
    assert throttle_decision(account, address, now=later).allowed


@given(st.integers(min_value=0, max_value=500))
def test_one_more_failure_never_shortens_the_lockout(count: int) -> None:
    assert lockout_s(count + 1) >= lockout_s(count)
