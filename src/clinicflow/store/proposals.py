"""Automation proposals and the decisions on them (the portfolio; no PHI)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.engine import IdType


class Proposal(Base):
    """A process someone proposes to automate, with what they expect it to save.

    `state`: proposed | changes-requested | approved | rejected | live | retired. An approved
    proposal names the automation that implements it; it is live from `live_on`.
    """

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_state", "state"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    process: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))  # whose time it saves (role_hourly_cost)
    volume_per_week: Mapped[float] = mapped_column(Float)
    minutes_per_task: Mapped[float] = mapped_column(Float)
    share_automated: Mapped[float] = mapped_column(Float)
    build_cost: Mapped[float] = mapped_column(Float)
    running_cost_per_year: Mapped[float] = mapped_column(Float)
    risks: Mapped[str] = mapped_column(Text, default="")
    clinical_signoff: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(24))
    automation: Mapped[str | None] = mapped_column(String(100))
    live_on: Mapped[date | None] = mapped_column(Date)
    trial_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trial_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    filed_by: Mapped[str] = mapped_column(String(64))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProposalDecision(Base):
    """Who decided what about a proposal, when, and why (every change of state)."""

    __tablename__ = "proposal_decisions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), index=True)
    decision: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    weeks: Mapped[int | None] = mapped_column(Integer)  # a trial's length, when one is set
