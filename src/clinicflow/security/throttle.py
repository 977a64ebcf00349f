"""Whether a sign-in attempt may go ahead, given recent failures (NIST SP 800-63B 5.2.2).

Two limits: one per account, against guessing one person's password, and one per network
address, against trying a few common passwords on many accounts (which never trips the first).
Only an attempt whose password was actually checked and found wrong counts as a failure; an
attempt refused here must not be recorded, or an attacker could keep someone locked out for good.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["DEFAULT", "Throttle", "ThrottlePolicy", "lockout_s", "throttle_decision"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The limits; the defaults are explained field by field."""

    # 800-63B 5.2.2 allows up to 100 consecutive failures. We hold PHI, so we are stricter,
    # but each lockout is short and temporary: a real user locked out by typos is back within
    # minutes, and an attacker gets about 100 guesses a day once the lockout is at its cap.
    account_free_failures: int = 5
    account_first_lockout_s: int = 60
    account_max_lockout_s: int = 15 * 60
    # A practice's front desk often shares one public address; 30 failures in 15 minutes
    # leaves room for many staff mistyping while stopping password spraying across accounts.
    address_max_failures: int = 30
    address_window_s: int = 15 * 60


DEFAULT = ThrottlePolicy()


@dataclass(frozen=True, slots=True)
class Throttle:
    """Whether to check the password now, and if not, how long to wait and which limit hit."""

    allowed: bool
    retry_after_s: int
    reason: Literal["account", "address"] | None


_ALLOWED = Throttle(allowed=True, retry_after_s=0, reason=None)


def throttle_decision(
    account_failures: Sequence[datetime],
    address_failures: Sequence[datetime],
    *,
    now: datetime,
    policy: ThrottlePolicy = DEFAULT,
) -> Throttle:
    """Whether a sign-in may be attempted at `now`, given the failure times in any order.

    `account_failures`: this account's failures since its last successful sign-in.
    `address_failures`: this address's failures, at least those within the policy's window
    (older ones are ignored).
    """
    if now.tzinfo is None:
        raise ValueError("throttle_decision needs an aware datetime")
    account_wait_s = _account_wait_s(account_failures, now=now, policy=policy)
    address_wait_s = _address_wait_s(address_failures, now=now, policy=policy)
    # Report the longer wait: retrying any earlier would be refused by the other limit.
    if account_wait_s == address_wait_s == 0:
        return _ALLOWED
    if account_wait_s >= address_wait_s:
        return Throttle(allowed=False, retry_after_s=account_wait_s, reason="account")
    return Throttle(allowed=False, retry_after_s=address_wait_s, reason="address")


def lockout_s(failure_count: int, *, policy: ThrottlePolicy = DEFAULT) -> int:
    """How long an account is locked after `failure_count` consecutive failures (0: not locked).

    The 5th failure locks for 1 minute, each further one doubles it, up to 15 minutes.
    """
    excess = failure_count - policy.account_free_failures
    if excess < 0:
        return 0
    # Cap the exponent first so a long history doesn't build a huge integer.
    doublings = min(excess, policy.account_max_lockout_s.bit_length())
    return min(policy.account_first_lockout_s << doublings, policy.account_max_lockout_s)


def _account_wait_s(failures: Sequence[datetime], *, now: datetime, policy: ThrottlePolicy) -> int:
    duration_s = lockout_s(len(failures), policy=policy)
    if duration_s == 0:
        return 0
    locked_until = max(failures) + timedelta(seconds=duration_s)
    return _seconds_until(locked_until, now=now)


def _address_wait_s(failures: Sequence[datetime], *, now: datetime, policy: ThrottlePolicy) -> int:
    window = timedelta(seconds=policy.address_window_s)
    recent = sorted(t for t in failures if now - window < t <= now)
    excess = len(recent) - policy.address_max_failures
    if excess < 0:
        return 0
    # Allowed again once enough of the oldest have left the window to get below the limit.
    return _seconds_until(recent[excess] + window, now=now)


def _seconds_until(instant: datetime, *, now: datetime) -> int:
    """Whole seconds until `instant`, rounded up so a client that waits that long gets in."""
    return max(0, math.ceil((instant - now).total_seconds()))
