"""Overbooking suggestions on the Today board, and the scheduler's answers to them.

Per provider and day: the expected no-shows of the scored visits (`expected_noshows`) and the
room that leaves, rounded down. A suggestion is only that: a scheduler accepts it (and books the
extra visits in the EHR) or dismisses it, and the answer is kept with who gave it and the
figures they saw. clinicflow books nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.boards.today import TodayVisit, expected_noshows
from clinicflow.errors import InputError
from clinicflow.store.conflicts import upsert_insert
from clinicflow.store.overbooking import OverbookDecision

DECISIONS = ("accepted", "dismissed")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One provider's suggestion for the day, and the answer if someone gave one."""

    practitioner_id: str
    practitioner: str
    expected: float
    room: int
    decision: OverbookDecision | None = None


def suggestions(
    rows: Sequence[TodayVisit], decisions: Mapping[str, OverbookDecision]
) -> list[Suggestion]:
    """A suggestion for each provider with room for at least one extra visit (pure)."""
    by_id: dict[str, list[TodayVisit]] = {}
    for row in rows:
        if row.practitioner_id:
            by_id.setdefault(row.practitioner_id, []).append(row)
    found = []
    for practitioner_id, visits in by_id.items():
        expected = expected_noshows(visits)
        if expected is None or expected < 1:
            continue
        found.append(
            Suggestion(
                practitioner_id,
                visits[0].practitioner,
                expected,
                int(expected),
                decisions.get(practitioner_id),
            )
        )
    return sorted(found, key=lambda s: s.practitioner)


def decisions_on(session: Session, day: date) -> dict[str, OverbookDecision]:
    """The answers given for `day`, by provider."""
    rows = session.scalars(select(OverbookDecision).where(OverbookDecision.day == day))
    return {row.practitioner_id: row for row in rows}


def decide(
    session: Session,
    *,
    suggestion: Suggestion,
    day: date,
    decision: str,
    by: str,
    at: datetime,
) -> None:
    """Keep the answer to a suggestion (a later answer replaces an earlier one)."""
    if decision not in DECISIONS:
        raise InputError(
            f"decision must be one of {', '.join(DECISIONS)}", where="overbooking decision"
        )
    values = {
        "practitioner_id": suggestion.practitioner_id,
        "day": day,
        "decision": decision,
        "expected_noshows": suggestion.expected,
        "room": suggestion.room,
        "decided_by": by,
        "decided_at": at,
    }
    stmt = upsert_insert(session, OverbookDecision).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["practitioner_id", "day"],
            set_={k: stmt.excluded[k] for k in values if k not in ("practitioner_id", "day")},
        )
    )
