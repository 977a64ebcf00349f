"""Pure decisions of the effect protocol: when to retry, and what an ambiguous crash means."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from clinicflow.engine.states import Delivery


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a retryable failure is tried again."""

    max_attempts: int = 5
    base_delay_s: float = 10.0
    max_delay_s: float = 900.0


def retry_delay_s(attempt: int, policy: RetryPolicy) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): doubling, capped."""
    exponent = max(attempt - 1, 0)
    if exponent > 30:  # 2**30 times any sane base is past every cap; avoids float overflow
        return policy.max_delay_s
    return float(min(policy.base_delay_s * 2**exponent, policy.max_delay_s))


def may_retry(*, retryable: bool, attempt: int, policy: RetryPolicy) -> bool:
    """True when a failure on attempt `attempt` should be tried again."""
    return retryable and attempt < policy.max_attempts


class Resolution(StrEnum):
    """What becomes of an effect whose call may or may not have happened."""

    DONE = "done"  # it happened
    RETRY = "retry"  # it provably did not happen: back to pending
    ASK_PERSON = "ask_person"  # nobody can tell: stays unknown, a work item asks a person


def resolve_ambiguous(*, transactional: bool, answer: Delivery) -> Resolution:
    """Decide an effect left in flight by a crash.

    A transactional handler's work commits with `done`, so no `done` means it did not happen.
    Anything else is decided by the handler's own answer, and "can't tell" is never retried:
    a patient must not get the same message twice because a worker died.
    """
    if transactional:
        return Resolution.RETRY
    if answer is Delivery.DELIVERED:
        return Resolution.DONE
    if answer is Delivery.NOT_DELIVERED:
        return Resolution.RETRY
    return Resolution.ASK_PERSON
