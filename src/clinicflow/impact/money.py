"""Savings arithmetic (pure): staff time and money from units of work, payback and NPV.

Hours are staff hours; money is in cents, so sums stay exact. A proposal's estimate follows the
usual business case: hours a year = volume a week x 52 x minutes a task x the share the
automation takes / 60; money = hours x the loaded hourly cost of the role doing the task today;
payback = build cost / monthly net savings; NPV over N years discounts each year's net savings
(savings less running cost) at the discount rate and subtracts the build cost up front.
"""

from __future__ import annotations

from dataclasses import dataclass

WEEKS_A_YEAR = 52


def money_cents(minutes: float, hourly_cost: float) -> int:
    """What `minutes` of a role costing `hourly_cost` dollars an hour is worth, in cents."""
    return round(minutes / 60 * hourly_cost * 100)


def payback_months(build_cost: float, annual_net_savings: float) -> float | None:
    """Months until the savings repay the build; None when they never do."""
    if annual_net_savings <= 0:
        return None
    return build_cost / (annual_net_savings / 12)


def npv(build_cost: float, annual_net_savings: float, *, rate: float, years: int = 5) -> float:
    """Net present value: the build paid now, each year's net savings at its year's end."""
    if rate <= -1:
        raise ValueError("a discount rate must be above -100%")
    return -build_cost + sum(annual_net_savings / (1 + rate) ** t for t in range(1, years + 1))


@dataclass(frozen=True, slots=True)
class ProposalInputs:
    """What a process specialist states when proposing an automation."""

    volume_per_week: float  # tasks
    minutes_per_task: float  # staff minutes each today
    share_automated: float  # 0..1: the part of the tasks the automation will take
    hourly_cost: float  # loaded cost of the role doing them today, dollars
    build_cost: float  # one-off, dollars
    running_cost_per_year: float  # dollars


@dataclass(frozen=True, slots=True)
class Estimate:
    """A proposal's estimate: hours and money a year, payback, NPV."""

    hours_per_year: float
    savings_per_year: float  # dollars, before running costs
    net_per_year: float  # dollars, after running costs
    payback_months: float | None
    npv: float
    years: int
    rate: float


def estimate(inputs: ProposalInputs, *, rate: float, years: int = 5) -> Estimate:
    """The estimate of a proposal at discount `rate` over `years`."""
    if not 0 <= inputs.share_automated <= 1:
        raise ValueError("the share automated must be between 0 and 1")
    hours = (
        inputs.volume_per_week * WEEKS_A_YEAR * inputs.minutes_per_task * inputs.share_automated
    ) / 60
    savings = hours * inputs.hourly_cost
    net = savings - inputs.running_cost_per_year
    return Estimate(
        hours_per_year=hours,
        savings_per_year=savings,
        net_per_year=net,
        payback_months=payback_months(inputs.build_cost, net),
        npv=npv(inputs.build_cost, net, rate=rate, years=years),
        years=years,
        rate=rate,
    )
