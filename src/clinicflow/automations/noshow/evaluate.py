"""Pure: how good and how calibrated the scores are, overall, by decile and per group.

A clinical coalition reads this to see whom the model serves worse, so each age band and sex gets
the same figures as the whole; a group with only one kind of outcome has no ROC-AUC (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
DECILES = 10


@dataclass(frozen=True, slots=True)
class Metrics:
    """Discrimination and calibration of scores against outcomes (1 = no-show)."""

    n: int
    noshow_rate: float
    mean_predicted: float
    roc_auc: float | None
    pr_auc: float | None
    brier: float


@dataclass(frozen=True, slots=True)
class DecileRow:
    """One tenth of the visits, ordered by score: predicted against observed no-show rate."""

    decile: int  # 1 = lowest scores
    n: int
    min_score: float
    max_score: float
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The figures on the test period of a temporal split."""

    cut_on: date
    n_train: int
    overall: Metrics
    calibration: list[DecileRow]
    by_age_band: dict[str, Metrics]
    by_sex: dict[str, Metrics]

    def to_json(self) -> dict[str, Any]:
        """One flat object: the overall figures at the top level, the tables beside them."""
        return {
            **asdict(self.overall),
            "n_test": self.overall.n,
            "n_train": self.n_train,
            "cut": self.cut_on.isoformat(),
            "calibration": [asdict(row) for row in self.calibration],
            "by_age_band": {k: asdict(v) for k, v in self.by_age_band.items()},
            "by_sex": {k: asdict(v) for k, v in self.by_sex.items()},
        }


def temporal_split(days: Sequence[date], cut_on: date) -> tuple[Mask, Mask]:
    """Train on visits before the cut day, test on those from it on."""
    train = np.array([day < cut_on for day in days], dtype=np.bool_)
    return train, ~train


def metrics(labels: Floats, scores: Floats) -> Metrics:
    """The figures for one set of visits (at least one visit)."""
    both_kinds = 0 < labels.sum() < len(labels)
    return Metrics(
        n=len(labels),
        noshow_rate=float(labels.mean()),
        mean_predicted=float(scores.mean()),
        roc_auc=float(roc_auc_score(labels, scores)) if both_kinds else None,
        pr_auc=float(average_precision_score(labels, scores)) if both_kinds else None,
        brier=float(brier_score_loss(labels, scores)),
    )


def calibration_by_decile(labels: Floats, scores: Floats) -> list[DecileRow]:
    """Visits in ten equal groups by score, lowest first (fewer when there are under ten)."""
    order = np.argsort(scores, kind="stable")
    rows: list[DecileRow] = []
    for i, part in enumerate(np.array_split(order, min(DECILES, len(order))), start=1):
        rows.append(
            DecileRow(
                decile=i,
                n=len(part),
                min_score=float(scores[part].min()),
                max_score=float(scores[part].max()),
                mean_predicted=float(scores[part].mean()),
                observed_rate=float(labels[part].mean()),
            )
        )
    return rows


def metrics_by_group(
    labels: Floats, scores: Floats, groups: Sequence[str], order: Sequence[str] = ()
) -> dict[str, Metrics]:
    """The figures for each group label present, in `order` first, then the rest sorted."""
    keys = np.array(groups)
    present = set(groups)
    ordered = [g for g in order if g in present] + sorted(present.difference(order))
    return {g: metrics(labels[keys == g], scores[keys == g]) for g in ordered}
