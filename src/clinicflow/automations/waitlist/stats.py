"""How the waitlist is filling freed slots: counts, time to fill and revenue recovered (no PHI).

From `waitlist_slots`, over the slots freed in the last `days` days: how many were freed, how
many got offers, how many were booked, left unfilled or closed another way, the median minutes
from freed to booked, and the visit value of the booked ones (Settings.visit_values).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.store.waitlist import FreedSlotRecord


@dataclass(frozen=True, slots=True)
class BackfillStats:
    """The backfill of slots freed in a window."""

    days: int
    freed: int
    offered: int  # got at least one wave of offers
    booked: int
    unfilled: int
    open: int  # offers still going out
    median_fill_min: float | None
    revenue_cents: int

    @property
    def fill_rate(self) -> float | None:
        """Booked / offered, or None before any offer."""
        return self.booked / self.offered if self.offered else None

    def to_json(self) -> dict[str, object]:
        """Plain JSON for `status --json` and the API."""
        return {
            "days": self.days,
            "freed": self.freed,
            "offered": self.offered,
            "booked": self.booked,
            "unfilled": self.unfilled,
            "open": self.open,
            "fill_rate": self.fill_rate,
            "median_fill_min": self.median_fill_min,
            "revenue_recovered": self.revenue_cents / 100,
        }


def backfill_stats(session: Session, *, now: datetime, days: int = 30) -> BackfillStats:
    """The backfill of slots freed in the `days` days up to `now`."""
    rows = list(
        session.execute(
            select(
                FreedSlotRecord.state,
                FreedSlotRecord.waves_sent,
                FreedSlotRecord.freed_at,
                FreedSlotRecord.closed_at,
                FreedSlotRecord.value_cents,
            ).where(FreedSlotRecord.freed_at >= now - timedelta(days=days))
        )
    )
    booked = [r for r in rows if r.state == "booked"]
    fill_minutes = [
        (r.closed_at - r.freed_at).total_seconds() / 60 for r in booked if r.closed_at is not None
    ]
    return BackfillStats(
        days=days,
        freed=len(rows),
        offered=sum(1 for r in rows if r.waves_sent > 0),
        booked=len(booked),
        unfilled=sum(1 for r in rows if r.state == "unfilled"),
        open=sum(1 for r in rows if r.state == "open"),
        median_fill_min=round(median(fill_minutes), 1) if fill_minutes else None,
        revenue_cents=sum(r.value_cents for r in booked),
    )
