"""How visits are booked and kept: visit kinds, lead times, cancellations and no-shows (pure).

The shape follows what no-show studies report: the longer between booking and visit, the more
patients forget or stop needing it; young adults miss more and older patients fewer. Overall about
18% of visits that were not cancelled end as no-shows.
"""

from __future__ import annotations

import math
import random

# (v2-0276 code, share of past visits)
VISIT_KINDS = (("ROUTINE", 0.44), ("FOLLOWUP", 0.30), ("CHECKUP", 0.22), ("WALKIN", 0.04))
# How far ahead each kind is booked: (shortest, longest lead in days, share).
LEAD_MIXTURES = {
    "ROUTINE": ((0, 1, 0.24), (2, 7, 0.34), (8, 30, 0.28), (31, 90, 0.14)),
    "FOLLOWUP": ((0, 1, 0.05), (2, 7, 0.15), (8, 30, 0.40), (31, 120, 0.40)),
    "CHECKUP": ((0, 1, 0.03), (2, 7, 0.10), (8, 30, 0.37), (31, 180, 0.50)),
}
# Lead-time buckets (days, both ends included) that reports and tests group no-shows by.
LEAD_BUCKETS = ((0, 1), (2, 7), (8, 30), (31, 366))
HISTORY_UTILIZATION = 0.78


def visit_kind(rng: random.Random, *, walk_in_allowed: bool = True) -> str:
    """A v2-0276 appointment type; walk-ins only for visits that already happened."""
    pick = rng.random() * (1.0 if walk_in_allowed else 1.0 - VISIT_KINDS[-1][1])
    for code, share in VISIT_KINDS:
        if pick < share:
            return code
        pick -= share
    return "ROUTINE"


def lead_days(rng: random.Random, kind: str) -> int:
    """Days between booking and visit for a visit of `kind` (0 for a walk-in)."""
    if kind == "WALKIN":
        return 0
    pick = rng.random()
    for shortest, longest, share in LEAD_MIXTURES[kind]:
        if pick < share:
            return rng.randint(shortest, longest)
        pick -= share
    return rng.randint(8, 30)


def _age_factor(age: int) -> float:
    if age < 18:
        return 0.95
    if age < 30:
        return 1.35
    if age < 45:
        return 1.1
    if age < 65:
        return 0.9
    return 0.75


def noshow_probability(lead: int, age: int) -> float:
    """Chance a kept (not cancelled) booking made `lead` days ahead ends as a no-show."""
    return (0.065 + 0.30 * (1.0 - math.exp(-lead / 30.0))) * _age_factor(age)


def cancel_probability(lead: int) -> float:
    """Chance a booking made `lead` days ahead is cancelled before the visit."""
    return 0.03 + 0.12 * (1.0 - math.exp(-lead / 30.0))


def future_utilization(day: int) -> float:
    """Share of slots already booked `day` days after the anchor: fullest today and tomorrow."""
    if day <= 1:
        return 0.86
    return max(0.60, 0.84 - 0.24 * (day - 2) / 33)


def lead_bucket(lead: int) -> int:
    """Index into LEAD_BUCKETS of a lead time in days."""
    for index, (_, longest) in enumerate(LEAD_BUCKETS):
        if lead <= longest:
            return index
    return len(LEAD_BUCKETS) - 1
