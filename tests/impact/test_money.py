"""The savings arithmetic against hand-worked examples."""

from __future__ import annotations

import pytest

from clinicflow.impact.money import ProposalInputs, estimate, money_cents, npv, payback_months


def test_the_published_case_pays_back_in_about_3_8_months() -> None:
    # A $75,000 build saving $239,000 a year: 75,000 / (239,000 / 12) = 3.77 months.
    months = payback_months(75_000, 239_000)
    assert months == pytest.approx(3.7657, abs=1e-4)
    assert round(months, 1) == 3.8


def test_savings_that_never_repay_have_no_payback() -> None:
    assert payback_months(10_000, 0) is None
    assert payback_months(10_000, -500) is None


def test_npv_discounts_each_years_savings_and_pays_the_build_now() -> None:
    # 5,000 a year for 5 years at 10%: 5,000 x (1 - 1.1^-5) / 0.1 = 18,953.93; less 10,000.
    assert npv(10_000, 5_000, rate=0.10, years=5) == pytest.approx(8_953.93, abs=0.01)
    assert npv(10_000, 5_000, rate=0.0, years=5) == pytest.approx(15_000)
    with pytest.raises(ValueError, match="above -100%"):
        npv(1, 1, rate=-1.0)


def test_a_proposals_estimate_by_hand() -> None:
    # 200 reminder calls a week, 3 minutes each, 75% taken by the automation, front desk at $24:
    # 200 x 52 x 3 x 0.75 / 60 = 390 hours = $9,360 a year; less $1,200 running = $8,160 net;
    # a $5,000 build pays back in 5,000 / (8,160 / 12) = 7.35 months.
    inputs = ProposalInputs(
        volume_per_week=200,
        minutes_per_task=3,
        share_automated=0.75,
        hourly_cost=24,
        build_cost=5_000,
        running_cost_per_year=1_200,
    )
    found = estimate(inputs, rate=0.08)
    assert found.hours_per_year == pytest.approx(390)
    assert found.savings_per_year == pytest.approx(9_360)
    assert found.net_per_year == pytest.approx(8_160)
    assert found.payback_months == pytest.approx(7.3529, abs=1e-4)
    # 8,160 x 3.99271 (5 years at 8%) - 5,000 = 27,580.5
    assert found.npv == pytest.approx(27_580.5, abs=0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        estimate(ProposalInputs(1, 1, 1.5, 1, 1, 1), rate=0.08)


def test_money_is_minutes_at_the_roles_hourly_cost_in_cents() -> None:
    assert money_cents(90, 24.0) == 3600
    assert money_cents(1, 52.0) == 87  # 86.67 cents, rounded
