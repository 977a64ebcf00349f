"""Confirmation rate of reminded visits, per visit day and per provider (counts only, no PHI).

A visit counts as reminded once a reminder that asked for a reply went out for it, and as
confirmed when the patient's participation is `accepted` (a "C" reply, the reminder page, or the
front desk confirming in the EHR: the patient confirmed, whoever recorded it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.engine.states import EffectState
from clinicflow.security.phi import PhiCipher
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import ReminderClaim
from clinicflow.store.replica import Appointment
from clinicflow.store.schedule_queries import practitioner_names


@dataclass(frozen=True, slots=True)
class Rate:
    """Reminded and confirmed visits of one day or one provider."""

    label: str
    reminded: int
    confirmed: int

    @property
    def rate(self) -> float | None:
        """Confirmed / reminded, or None when nothing was reminded."""
        return self.confirmed / self.reminded if self.reminded else None

    def to_json(self) -> dict[str, object]:
        """Plain JSON."""
        rate = self.rate
        return {
            "label": self.label,
            "reminded": self.reminded,
            "confirmed": self.confirmed,
            "rate": round(rate, 3) if rate is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ConfirmationRates:
    """Rates over visits from `since` on, by day and by provider."""

    by_day: list[Rate]
    by_provider: list[Rate]

    def to_json(self) -> dict[str, object]:
        """Plain JSON for `status --json`."""
        return {
            "by_day": [r.to_json() for r in self.by_day],
            "by_provider": [r.to_json() for r in self.by_provider],
        }


def confirmation_rates(
    session: Session, cipher: PhiCipher, *, zone: ZoneInfo, now: datetime, days: int = 7
) -> ConfirmationRates:
    """Visits of the past `days` days and the coming ones that got a reminder asking a reply."""
    since = now - timedelta(days=days)
    rows = session.execute(
        select(
            Appointment.fhir_id,
            Appointment.start_at,
            Appointment.practitioner_id,
            Appointment.patient_status,
        )
        .join(ReminderClaim, ReminderClaim.appointment_id == Appointment.fhir_id)
        .join(Effect, Effect.key == ReminderClaim.effect_key)
        .where(
            ReminderClaim.asks_reply.is_(True),
            Effect.state == EffectState.DONE,
            Appointment.start_at >= since,
        )
        .distinct()
    ).all()
    days_seen: dict[date, list[bool]] = defaultdict(list)
    providers: dict[str, list[bool]] = defaultdict(list)
    for _, start, practitioner, patient_status in rows:
        if start is None:
            continue
        confirmed = patient_status == "accepted"
        days_seen[start.astimezone(zone).date()].append(confirmed)
        providers[practitioner or "unknown"].append(confirmed)
    names = practitioner_names(session, cipher, [p for p in providers if p != "unknown"])
    return ConfirmationRates(
        by_day=[
            Rate(day.isoformat(), len(seen), sum(seen)) for day, seen in sorted(days_seen.items())
        ],
        by_provider=[
            Rate(names.get(pid, pid), len(seen), sum(seen))
            for pid, seen in sorted(providers.items(), key=lambda kv: names.get(kv[0], kv[0]))
        ],
    )
