"""No-show scores of upcoming visits, as the `noshow-risk` automation last made them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, Float, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from clinicflow.store.base import Base, UTCDateTime


class NoShowScore(Base):
    """A visit's no-show risk and the reasons that weighed most (ids and numbers, no identifier)."""

    __tablename__ = "noshow_scores"

    appointment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    probability: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    model_trained_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)


_CHUNK = 500


def scored_at_least(session: Session, appointment_ids: Sequence[str], at: float) -> set[str]:
    """Those of `appointment_ids` whose latest no-show score is at least `at`."""
    wanted = sorted(set(appointment_ids))
    found: set[str] = set()
    for first in range(0, len(wanted), _CHUNK):
        found.update(
            session.scalars(
                select(NoShowScore.appointment_id).where(
                    NoShowScore.appointment_id.in_(wanted[first : first + _CHUNK]),
                    NoShowScore.probability >= at,
                )
            )
        )
    return found
