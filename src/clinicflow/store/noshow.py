"""No-show scores of upcoming visits, as the `noshow-risk` automation last made them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.store.base import Base, UTCDateTime


class NoShowScore(Base):
    """A visit's no-show risk and the reasons that weighed most (ids and numbers, no identifier)."""

    __tablename__ = "noshow_scores"

    appointment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    model_trained_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)
