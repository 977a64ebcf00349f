"""Pure parts of the effect protocol: keys, backoff, and what an ambiguous crash means."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.engine import Delivery, compose_key, ehr_write_key, message_key, work_item_key
from clinicflow.engine.keys import MAX_KEY_LENGTH
from clinicflow.engine.rules import (
    Resolution,
    RetryPolicy,
    may_retry,
    resolve_ambiguous,
    retry_delay_s,
)

PARTS = st.text(min_size=0, max_size=120)


def test_keys_read_like_what_they_name() -> None:
    assert message_key("reminders", "Appointment/9", "48h") == "message:reminders:Appointment/9:48h"
    assert work_item_key("triage", "urgent", "Communication/4") == (
        "work-item:triage:urgent:Communication/4"
    )
    assert ehr_write_key("confirm", "Appointment/9", "status=booked") == (
        "ehr-write:confirm:Appointment/9:status=booked"
    )


@given(PARTS, PARTS, PARTS)
def test_a_key_is_the_same_on_every_run(a: str, b: str, c: str) -> None:
    assert message_key(a, b, c) == message_key(a, b, c)


@given(st.lists(PARTS, min_size=1, max_size=4), st.lists(PARTS, min_size=1, max_size=4))
def test_different_parts_never_make_the_same_key(left: list[str], right: list[str]) -> None:
    if left != right:
        assert compose_key("k", *left) != compose_key("k", *right)


@given(st.lists(PARTS, min_size=1, max_size=8))
def test_a_key_always_fits_its_column(parts: list[str]) -> None:
    assert len(compose_key("message", *parts)) <= MAX_KEY_LENGTH


@given(st.integers(1, 10_000))
def test_backoff_grows_and_never_passes_its_cap(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_s=10.0, max_delay_s=900.0)
    delay = retry_delay_s(attempt, policy)
    assert 10.0 <= delay <= 900.0
    assert retry_delay_s(attempt + 1, policy) >= delay


def test_backoff_doubles_from_its_base() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_s=10.0, max_delay_s=900.0)
    assert [retry_delay_s(n, policy) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]


def test_a_failure_is_retried_only_if_retryable_and_attempts_remain() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert may_retry(retryable=True, attempt=2, policy=policy)
    assert not may_retry(retryable=True, attempt=3, policy=policy)
    assert not may_retry(retryable=False, attempt=1, policy=policy)


@given(st.sampled_from(list(Delivery)))
def test_a_transactional_effect_is_always_safe_to_retry(answer: Delivery) -> None:
    assert resolve_ambiguous(transactional=True, answer=answer) is Resolution.RETRY


def test_an_external_effect_is_never_retried_when_nobody_can_tell() -> None:
    assert resolve_ambiguous(transactional=False, answer=Delivery.UNKNOWN) is (
        Resolution.ASK_PERSON
    )
    assert resolve_ambiguous(transactional=False, answer=Delivery.DELIVERED) is Resolution.DONE
    assert resolve_ambiguous(transactional=False, answer=Delivery.NOT_DELIVERED) is (
        Resolution.RETRY
    )
