"""Features as a numeric matrix for LightGBM: numbers as they are, categories as learnt codes.

The vocabulary of each category is learnt from the training visits and saved with the model, so
a provider or neighbourhood the model never saw (or saw too rarely to learn from) gets the same
"other" code at scoring time as in training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clinicflow.automations.noshow.features import NoShowFeatures

Matrix = npt.NDArray[np.float64]
OTHER_CODE = 0  # unknown, unseen or rare values
MIN_CATEGORY_COUNT = 20  # below this a value is too rare to learn a split from


def _opt(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _condition(name: str) -> Callable[[NoShowFeatures], float]:
    def get(f: NoShowFeatures) -> float:
        return float("nan") if f.conditions is None else float(getattr(f.conditions, name))

    return get


NUMERIC: dict[str, Callable[[NoShowFeatures], float]] = {
    "lead_days": lambda f: _opt(f.lead_days),
    "weekday": lambda f: float(f.weekday),
    "hour": lambda f: _opt(f.hour),
    "age_years": lambda f: _opt(f.age_years),
    "prior_visits": lambda f: float(f.prior_visits),
    "prior_noshows": lambda f: float(f.prior_noshows),
    "prior_noshow_rate": lambda f: f.prior_noshow_rate,
    "days_since_last_visit": lambda f: _opt(f.days_since_last_visit),
    "reminders_sent": lambda f: float(f.reminders_sent),
    # Optional: NaN where the source carries no conditions (LightGBM learns a branch for missing).
    "scholarship": _condition("scholarship"),
    "hypertension": _condition("hypertension"),
    "diabetes": _condition("diabetes"),
    "alcoholism": _condition("alcoholism"),
    "handicap_level": _condition("handicap_level"),
}
CATEGORICAL: dict[str, Callable[[NoShowFeatures], str]] = {
    "visit_type": lambda f: f.visit_type,
    "provider": lambda f: f.provider,
    "location": lambda f: f.location,
    "confirmation": lambda f: f.confirmation,
}
COLUMNS: tuple[str, ...] = (*NUMERIC, *CATEGORICAL)
CATEGORICAL_INDEXES: tuple[int, ...] = tuple(range(len(NUMERIC), len(COLUMNS)))


@dataclass(frozen=True, slots=True)
class Encoding:
    """Codes of each categorical column's values (1, 2, ...; 0 for anything else)."""

    vocabularies: dict[str, dict[str, int]]

    def to_json(self) -> dict[str, dict[str, int]]:
        """The encoding as saved in the model's metadata."""
        return self.vocabularies

    @classmethod
    def from_json(cls, data: dict[str, dict[str, int]]) -> Encoding:
        """The encoding back from the model's metadata."""
        return cls(vocabularies={k: dict(v) for k, v in data.items()})


def fit_encoding(rows: Sequence[NoShowFeatures]) -> Encoding:
    """Learn each category's values from the training rows; "unknown" and rare values stay 0."""
    vocabularies: dict[str, dict[str, int]] = {}
    for name, get in CATEGORICAL.items():
        counts = Counter(get(f) for f in rows)
        kept = sorted(v for v, n in counts.items() if n >= MIN_CATEGORY_COUNT and v != "unknown")
        vocabularies[name] = {value: code for code, value in enumerate(kept, start=1)}
    return Encoding(vocabularies=vocabularies)


def to_matrix(rows: Sequence[NoShowFeatures], encoding: Encoding) -> Matrix:
    """One row per visit, columns in COLUMNS order."""
    out = np.empty((len(rows), len(COLUMNS)), dtype=np.float64)
    for i, f in enumerate(rows):
        numbers = [get(f) for get in NUMERIC.values()]
        codes = [
            float(encoding.vocabularies[name].get(get(f), OTHER_CODE))
            for name, get in CATEGORICAL.items()
        ]
        out[i] = numbers + codes
    return out
