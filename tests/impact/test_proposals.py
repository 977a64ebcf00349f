"""Proposals: filing, the decisions leadership takes, estimate against actual, trials."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clinicflow.clock import FakeClock
from clinicflow.engine import Automation, Manual, Registry, RunContext, Unit, run_now
from clinicflow.engine.runtime import EngineRuntime
from clinicflow.engine.switches import set_switch
from clinicflow.errors import InputError
from clinicflow.impact.proposals import (
    FLAG_WEEKS,
    NewProposal,
    decide,
    decisions_of,
    file_proposal,
    flag,
    portfolio,
    start_trial,
)
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database

MONDAY = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York


def _letters(ctx: RunContext) -> None:
    ctx.count("letter_prepared", 30)


LETTERS = Automation(
    name="referral-letters",
    summary="draft referral letters (tests)",
    trigger=Manual(),
    run=_letters,
    owner="front-desk",
    units=(Unit("letter_prepared", minutes_saved=4.0),),
)
PROPOSAL = NewProposal(
    process="Referral letters",
    department="Primary care",
    owner="Dana (practice manager)",
    role="front-desk",
    volume_per_week=100,
    minutes_per_task=4,
    share_automated=0.8,
    build_cost=6_000,
    running_cost_per_year=600,
    risks="A letter with the wrong history; a clinician signs each one.",
    clinical_signoff=True,
)


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, timezone="America/New_York")


def _engine(
    db: Database, settings: Settings, clock: FakeClock, registry: Registry
) -> EngineRuntime:
    return EngineRuntime.build(
        db=db,
        settings=settings,
        clock=clock,
        cipher=PhiCipher(Keyring.generate()),
        registry=registry,
    )


def test_flag_needs_four_full_weeks_each_under_half_the_estimate() -> None:
    assert not flag([10.0] * (FLAG_WEEKS - 1), 100.0)
    assert flag([49.0] * FLAG_WEEKS, 100.0)
    assert not flag([49.0, 49.0, 60.0, 49.0], 100.0)
    assert flag([120.0, 10.0, 10.0, 10.0, 10.0], 100.0)  # the last four count
    assert not flag([0.0] * 8, 0.0)


def test_decisions_follow_the_portfolio_rules_and_are_kept_with_who_and_why(
    sqlite_db: Database, tmp_path: Path
) -> None:
    registry = Registry([LETTERS])
    with sqlite_db.transaction() as session:
        proposal = file_proposal(session, PROPOSAL, by="pat", now=MONDAY)
        with pytest.raises(InputError, match="say why"):
            decide(session, proposal.id, "reject", by="lee", now=MONDAY)
        decide(session, proposal.id, "request-changes", by="lee", now=MONDAY, note="cost?")
        with pytest.raises(InputError, match="cannot be given 'go-live'"):
            decide(session, proposal.id, "go-live", by="lee", now=MONDAY)
        decide(session, proposal.id, "resubmit", by="pat", now=MONDAY, note="quote attached")
        with pytest.raises(InputError, match="no automation 'nothing'"):
            decide(
                session,
                proposal.id,
                "approve",
                by="lee",
                now=MONDAY,
                automation="nothing",
                registry=registry,
            )
        decide(
            session,
            proposal.id,
            "approve",
            by="lee",
            now=MONDAY,
            automation="referral-letters",
            registry=registry,
        )
        decide(session, proposal.id, "go-live", by="lee", now=MONDAY, live_on=MONDAY.date())
        trail = [
            (d.decision, d.from_state, d.to_state, d.decided_by)
            for d in decisions_of(session, proposal.id)
        ]
    assert trail == [
        ("request-changes", "proposed", "changes-requested", "lee"),
        ("resubmit", "changes-requested", "proposed", "pat"),
        ("approve", "proposed", "approved", "lee"),
        ("go-live", "approved", "live", "lee"),
    ]
    with pytest.raises(InputError, match="above 0 and at most 1"):
        replace(PROPOSAL, share_automated=0.0).check()
    with pytest.raises(InputError, match="cannot be negative"):
        replace(PROPOSAL, build_cost=-1.0).check()


def test_a_live_proposal_is_measured_against_its_estimate_and_flagged_when_it_falls_short(
    sqlite_db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    registry = Registry([LETTERS])
    clock = FakeClock(MONDAY)
    rt = _engine(sqlite_db, settings, clock, registry)
    with sqlite_db.transaction() as session:
        proposal = file_proposal(session, PROPOSAL, by="pat", now=MONDAY)
        decide(
            session,
            proposal.id,
            "approve",
            by="lee",
            now=MONDAY,
            automation="referral-letters",
            registry=registry,
        )
        decide(session, proposal.id, "go-live", by="lee", now=MONDAY, live_on=MONDAY.date())
    # Estimate: 100 x 52 x 4 x 0.8 / 60 = 277.3 h a year at $24 = $6,656 = $128 a week.
    # Each week one run counts 30 letters: 120 minutes = $48, under half of $128.
    for week in range(5):
        clock.set(MONDAY + timedelta(weeks=week))
        run_now(rt, "referral-letters", requested_by="test")
    now = MONDAY + timedelta(weeks=4, days=1)
    with sqlite_db.transaction() as session:
        (standing,) = portfolio(session, registry, settings, now=now)
    assert standing.estimate.savings_per_year == pytest.approx(6_656)
    assert [d for _, d in standing.actual_per_week] == [48.0] * 4
    assert standing.actual_total == pytest.approx(48.0 * 5)  # this week's run counts too
    assert standing.estimate_to_date == pytest.approx(6_656 / 52 * 4)
    assert standing.ratio == pytest.approx(48 * 5 / (128 * 4))
    assert standing.flagged


def test_a_trial_measures_the_dry_runs_volume_apart_from_live_savings(
    sqlite_db: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    registry = Registry([LETTERS])
    clock = FakeClock(MONDAY)
    rt = _engine(sqlite_db, settings, clock, registry)
    with sqlite_db.transaction() as session:
        proposal = file_proposal(session, PROPOSAL, by="pat", now=MONDAY)
        start_trial(
            session, proposal.id, automation="referral-letters", weeks=2, by="pat", now=MONDAY
        )
        set_switch(session, "referral-letters", dry_run=True, actor="pat", now=MONDAY)
    for day in (0, 7):
        clock.set(MONDAY + timedelta(days=day, hours=1))
        run_now(rt, "referral-letters", requested_by="test")
    with sqlite_db.transaction() as session:
        (standing,) = portfolio(session, registry, settings, now=MONDAY + timedelta(days=14))
    # Two dry runs of 30 letters x 4 min = 240 min = $96 over two weeks: $48 a week.
    assert standing.trial_per_week == pytest.approx(48.0)
    assert standing.actual_total == 0.0  # nothing live
    assert standing.proposal.state == "proposed"
