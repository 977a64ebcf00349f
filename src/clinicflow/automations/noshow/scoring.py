"""Scores of upcoming visits with the reasons that weighed most, in words a scheduler reads.

The reasons come from the model itself: LightGBM's per-feature contributions to each score (SHAP
values, `pred_contrib=True`). The three features that pushed a visit's risk up the most are
named with the visit's own values ("2 missed visits before", "booked 41 days ahead").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from clinicflow.automations.noshow.features import NoShowFeatures
from clinicflow.automations.noshow.matrix import COLUMNS, to_matrix
from clinicflow.automations.noshow.model import NoShowModel

__all__ = ["REASON_TEXT", "VisitScore", "score_visits"]

TOP_REASONS = 3
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# Each feature in a scheduler's words, from the visit's own value.
REASON_TEXT: dict[str, Callable[[NoShowFeatures], str]] = {
    "lead_days": lambda f: f"booked {_plural(f.lead_days or 0, 'day')} ahead",
    "weekday": lambda f: f"a {WEEKDAYS[f.weekday]} visit",
    "hour": lambda f: f"at {f.hour:02d}:00" if f.hour is not None else "time of day",
    "age_years": lambda f: f"age band {f.age_band}",
    "prior_visits": lambda f: f"{_plural(f.prior_visits, 'earlier visit')}",
    "prior_noshows": lambda f: f"{_plural(f.prior_noshows, 'missed visit')} before",
    "prior_noshow_rate": lambda f: f"misses about {round(100 * f.prior_noshow_rate)}% of visits",
    "days_since_last_visit": lambda f: (
        f"last seen {f.days_since_last_visit} days ago"
        if f.days_since_last_visit is not None
        else "no earlier visit"
    ),
    "reminders_sent": lambda f: (
        "no reminder sent yet" if not f.reminders_sent else _plural(f.reminders_sent, "reminder")
    ),
    "visit_type": lambda f: f"visit type {f.visit_type.lower()}",
    "provider": lambda _f: "this provider's visits",
    "location": lambda _f: "this location",
    "confirmation": lambda f: "not confirmed" if f.confirmation != "accepted" else "confirmed",
}


@dataclass(frozen=True, slots=True)
class VisitScore:
    """One visit's no-show probability and its top reasons."""

    visit_id: str
    probability: float
    reasons: tuple[str, ...]


def score_visits(
    model: NoShowModel, visit_ids: Sequence[str], rows: Sequence[NoShowFeatures]
) -> list[VisitScore]:
    """Score each visit (`rows[i]` are `visit_ids[i]`'s features at its prediction moment)."""
    if not rows:
        return []
    matrix = to_matrix(rows, model.encoding)
    probabilities = np.asarray(model.booster.predict(matrix), dtype=np.float64)
    contributions = np.asarray(model.booster.predict(matrix, pred_contrib=True))
    scores: list[VisitScore] = []
    for i, features in enumerate(rows):
        pushes = contributions[i, : len(COLUMNS)]  # the last column is the model's bias
        top = [j for j in np.argsort(-pushes)[:TOP_REASONS] if pushes[j] > 0]
        reasons = tuple(REASON_TEXT[COLUMNS[j]](features) for j in top if COLUMNS[j] in REASON_TEXT)
        scores.append(VisitScore(visit_ids[i], float(probabilities[i]), reasons))
    return scores
