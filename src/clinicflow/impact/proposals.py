"""The automation portfolio: proposals, their estimates, decisions, and estimate against actual.

A process specialist files a proposal; clinicflow computes its estimate (`money.estimate`).
Leadership approves, rejects or asks for changes; each decision is kept with who made it and why
(`proposal_decisions`) and audited by the caller. An approved proposal is linked to the
automation that implements it and is live from a day; from then on its measured savings
(`ledger.weekly_lines` of that automation) stand beside the estimate, and a proposal whose
actual has been below `FLAG_SHARE` of the estimate for `FLAG_WEEKS` full weeks in a row is
flagged. Before approval a proposal may be trialled: its automation runs in dry run for a set
period, and the volume those dry runs counted gives a trial estimate, shown apart from live
savings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.engine import Registry
from clinicflow.errors import InputError
from clinicflow.impact.ledger import WeekLine, week_of, weekly_lines
from clinicflow.impact.money import WEEKS_A_YEAR, Estimate, ProposalInputs, estimate
from clinicflow.settings import Settings
from clinicflow.store.proposals import Proposal, ProposalDecision

FLAG_SHARE = 0.5  # actual under half the estimate ...
FLAG_WEEKS = 4  # ... for four full weeks in a row

# decision -> (the states it may be taken from, the state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"proposed", "changes-requested"}), "approved"),
    "reject": (frozenset({"proposed", "changes-requested"}), "rejected"),
    "request-changes": (frozenset({"proposed"}), "changes-requested"),
    "resubmit": (frozenset({"changes-requested"}), "proposed"),
    "go-live": (frozenset({"approved"}), "live"),
    "retire": (frozenset({"live", "approved"}), "retired"),
}
LEADERSHIP_DECISIONS = frozenset({"approve", "reject", "request-changes", "retire"})


@dataclass(frozen=True, slots=True)
class NewProposal:
    """What the filing form asks for."""

    process: str
    department: str
    owner: str
    role: str
    volume_per_week: float
    minutes_per_task: float
    share_automated: float
    build_cost: float
    running_cost_per_year: float
    risks: str = ""
    clinical_signoff: bool = False

    def check(self) -> None:
        """InputError naming the first field that cannot be right."""
        if not self.process.strip():
            raise InputError("say which process this automates", where="process")
        for name in ("volume_per_week", "minutes_per_task", "build_cost", "running_cost_per_year"):
            if getattr(self, name) < 0:
                raise InputError(f"{name.replace('_', ' ')} cannot be negative", where=name)
        if not 0 < self.share_automated <= 1:
            raise InputError(
                "the share the automation takes must be above 0 and at most 1 (e.g. 0.7)",
                where="share_automated",
            )


def inputs_of(proposal: Proposal, settings: Settings) -> ProposalInputs:
    """A stored proposal as the arithmetic takes it (the role's hourly cost from settings)."""
    costs = settings.role_hourly_cost
    return ProposalInputs(
        volume_per_week=proposal.volume_per_week,
        minutes_per_task=proposal.minutes_per_task,
        share_automated=proposal.share_automated,
        hourly_cost=costs.get(proposal.role, costs.get("front-desk", 0.0)),
        build_cost=proposal.build_cost,
        running_cost_per_year=proposal.running_cost_per_year,
    )


def estimate_of(proposal: Proposal, settings: Settings) -> Estimate:
    """The proposal's estimate at the practice's discount rate."""
    return estimate(inputs_of(proposal, settings), rate=settings.impact_discount_rate)


def file_proposal(session: Session, new: NewProposal, *, by: str, now: datetime) -> Proposal:
    """Record a proposal as `proposed`; InputError says what to correct."""
    new.check()
    proposal = Proposal(
        process=new.process.strip(),
        department=new.department.strip(),
        owner=new.owner.strip(),
        role=new.role,
        volume_per_week=new.volume_per_week,
        minutes_per_task=new.minutes_per_task,
        share_automated=new.share_automated,
        build_cost=new.build_cost,
        running_cost_per_year=new.running_cost_per_year,
        risks=new.risks.strip(),
        clinical_signoff=new.clinical_signoff,
        state="proposed",
        filed_by=by,
        filed_at=now,
        updated_at=now,
    )
    session.add(proposal)
    session.flush()
    return proposal


def decide(
    session: Session,
    proposal_id: int,
    decision: str,
    *,
    by: str,
    now: datetime,
    note: str = "",
    automation: str | None = None,
    registry: Registry | None = None,
    live_on: date | None = None,
) -> Proposal:
    """Move a proposal on by `decision` (approve, reject, request-changes, resubmit, go-live,
    retire), kept with who and why; approving names the automation that implements it."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise InputError(f"there is no proposal {proposal_id}", where="proposal")
    if decision not in TRANSITIONS:
        raise InputError(f"unknown decision {decision!r}", where="decision")
    allowed, to_state = TRANSITIONS[decision]
    if proposal.state not in allowed:
        raise InputError(
            f"a proposal that is {proposal.state} cannot be given {decision!r}", where="decision"
        )
    if decision in ("reject", "request-changes") and not note.strip():
        raise InputError("say why, so the person who filed it can act on it", where="note")
    if decision == "approve":
        if not automation:
            raise InputError("name the automation that implements it", where="automation")
        if registry is not None and registry.find(automation) is None:
            raise InputError(f"there is no automation {automation!r}", where="automation")
        proposal.automation = automation
    if decision == "go-live":
        proposal.live_on = live_on or now.date()
    session.add(
        ProposalDecision(
            proposal_id=proposal.id,
            decision=decision,
            from_state=proposal.state,
            to_state=to_state,
            note=note.strip(),
            decided_by=by,
            decided_at=now,
        )
    )
    proposal.state = to_state
    proposal.updated_at = now
    return proposal


def start_trial(
    session: Session, proposal_id: int, *, automation: str, weeks: int, by: str, now: datetime
) -> Proposal:
    """Trial a proposal: its automation's dry runs from now for `weeks` weeks count as the
    trial (the caller switches the automation to dry run)."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise InputError(f"there is no proposal {proposal_id}", where="proposal")
    if proposal.state not in ("proposed", "changes-requested"):
        raise InputError("only a proposal not yet decided can be trialled", where="trial")
    if not 1 <= weeks <= 26:
        raise InputError("a trial lasts 1 to 26 weeks", where="weeks")
    proposal.automation = automation
    proposal.trial_from = now
    proposal.trial_until = now + timedelta(weeks=weeks)
    proposal.updated_at = now
    session.add(
        ProposalDecision(
            proposal_id=proposal.id,
            decision="trial",
            from_state=proposal.state,
            to_state=proposal.state,
            note=f"dry run of {automation}",
            decided_by=by,
            decided_at=now,
            weeks=weeks,
        )
    )
    return proposal


@dataclass(frozen=True, slots=True)
class Standing:
    """A proposal in the portfolio: its estimate, and what was measured since go-live."""

    proposal: Proposal
    estimate: Estimate
    actual_per_week: tuple[tuple[date, float], ...]  # dollars saved, full weeks since go-live
    actual_total: float  # dollars since go-live (this week included)
    estimate_to_date: float  # what the estimate promised over the same weeks
    flagged: bool
    trial_per_week: float | None  # dollars a week the trial's dry runs measured

    @property
    def ratio(self) -> float | None:
        """Actual over estimate since go-live."""
        return self.actual_total / self.estimate_to_date if self.estimate_to_date else None


def flag(weekly_actual: Sequence[float], weekly_estimate: float) -> bool:
    """True when the last `FLAG_WEEKS` full weeks were each below `FLAG_SHARE` of the estimate."""
    if weekly_estimate <= 0 or len(weekly_actual) < FLAG_WEEKS:
        return False
    return all(a < FLAG_SHARE * weekly_estimate for a in weekly_actual[-FLAG_WEEKS:])


def standing(
    session: Session,
    proposal: Proposal,
    registry: Registry,
    settings: Settings,
    *,
    now: datetime,
) -> Standing:
    """Where one proposal stands: estimate, actual since go-live, flag, trial estimate."""
    found = estimate_of(proposal, settings)
    weekly_estimate = found.savings_per_year / WEEKS_A_YEAR
    zone = ZoneInfo(settings.timezone)
    actual: list[tuple[date, float]] = []
    total = 0.0
    promised = 0.0
    if proposal.automation and proposal.live_on and proposal.state in ("live", "retired"):
        first = proposal.live_on - timedelta(days=proposal.live_on.weekday())
        this_week = week_of(now, zone)
        weeks = (this_week - first).days // 7 + 1
        lines = [
            line
            for line in weekly_lines(session, registry, settings, weeks=weeks, now=now)
            if line.automation == proposal.automation
        ]
        by_week = {line.week_of: line.money_cents / 100 for line in lines}
        monday = first
        while monday <= this_week:
            dollars = by_week.get(monday, 0.0)
            total += dollars
            if monday < this_week:  # a full week
                actual.append((monday, dollars))
                promised += weekly_estimate
            monday += timedelta(weeks=1)
    return Standing(
        proposal=proposal,
        estimate=found,
        actual_per_week=tuple(actual),
        actual_total=total,
        estimate_to_date=promised,
        flagged=flag([a for _, a in actual], weekly_estimate),
        trial_per_week=_trial(session, proposal, registry, settings, now=now),
    )


def _trial(
    session: Session, proposal: Proposal, registry: Registry, settings: Settings, *, now: datetime
) -> float | None:
    if not (proposal.automation and proposal.trial_from and proposal.trial_until):
        return None
    until = min(now, proposal.trial_until)
    days = max((until - proposal.trial_from).total_seconds() / 86400, 1.0)
    weeks = int(days // 7) + 2
    lines: list[WeekLine] = [
        line
        for line in weekly_lines(
            session,
            registry,
            settings,
            weeks=weeks,
            now=until,
            dry_run=True,
            since=proposal.trial_from,
        )
        if line.automation == proposal.automation
    ]
    dollars = sum(line.money_cents for line in lines) / 100
    return dollars / (days / 7)


def portfolio(
    session: Session, registry: Registry, settings: Settings, *, now: datetime
) -> list[Standing]:
    """Every proposal, newest first, with where it stands."""
    proposals = session.scalars(select(Proposal).order_by(Proposal.filed_at.desc()))
    return [standing(session, p, registry, settings, now=now) for p in proposals]


def decisions_of(session: Session, proposal_id: int) -> list[ProposalDecision]:
    """A proposal's decisions, oldest first."""
    return list(
        session.scalars(
            select(ProposalDecision)
            .where(ProposalDecision.proposal_id == proposal_id)
            .order_by(ProposalDecision.id)
        )
    )
