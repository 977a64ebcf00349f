"""A scheduler's answer to a day's overbooking suggestion for one provider (no PHI)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.engine import IdType


class OverbookDecision(Base):
    """Accepted or dismissed: the suggestion as it stood when the person decided."""

    __tablename__ = "overbook_decisions"
    __table_args__ = (UniqueConstraint("practitioner_id", "day"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    practitioner_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)  # practice-local
    decision: Mapped[str] = mapped_column(String(16))  # accepted | dismissed
    expected_noshows: Mapped[float] = mapped_column(Float)
    room: Mapped[int] = mapped_column(Integer)  # extra visits suggested
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
