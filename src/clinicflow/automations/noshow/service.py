"""Train and evaluate from visits: features, labels, the temporal split, the saved model.

Plain orchestration between the pure parts (features, evaluation) and LightGBM; the callers (the
CLI, the bench) read the visits and decide where the model goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from clinicflow.automations.noshow.evaluate import (
    Evaluation,
    Floats,
    calibration_by_decile,
    metrics,
    metrics_by_group,
    temporal_split,
)
from clinicflow.automations.noshow.features import AGE_BANDS, NoShowFeatures, features_for_all
from clinicflow.automations.noshow.model import NoShowModel, train
from clinicflow.automations.noshow.records import Outcome, Visit
from clinicflow.errors import InputError

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Labelled:
    """The visits with an outcome, each with its features, label (1 = no-show) and local day."""

    visits: list[Visit]
    rows: list[NoShowFeatures]
    labels: Floats
    days: list[date]


def labelled(visits: Sequence[Visit], zone: ZoneInfo) -> Labelled:
    """Features of every visit with an outcome; the others still count as bookings only."""
    rows = features_for_all(visits, zone)
    kept = [(v, f) for v, f in zip(visits, rows, strict=True) if v.is_labelled]
    return Labelled(
        visits=[v for v, _ in kept],
        rows=[f for _, f in kept],
        labels=np.array([v.outcome is Outcome.NOSHOW for v, _ in kept], dtype=np.float64),
        days=[v.start_at.astimezone(zone).date() for v, _ in kept],
    )


def train_model(
    visits: Sequence[Visit],
    zone: ZoneInfo,
    *,
    data_source: str,
    trained_at: datetime,
    progress: Progress = _quiet,
) -> NoShowModel:
    """A model trained on every visit with an outcome."""
    data = labelled(visits, zone)
    progress(f"training on {len(data.rows):,} visits with an outcome")
    return train(data.rows, data.labels, data.days, data_source=data_source, trained_at=trained_at)


def evaluate_temporal(
    visits: Sequence[Visit],
    zone: ZoneInfo,
    *,
    cut_on: date,
    data_source: str,
    trained_at: datetime,
    progress: Progress = _quiet,
) -> tuple[Evaluation, NoShowModel]:
    """Train on visits before `cut_on`, score those from it on, and report on them.

    Features of test visits may use outcomes of earlier test visits: by their prediction moment
    those outcomes were known, as they would be in production.
    """
    data = labelled(visits, zone)
    train_mask, test_mask = temporal_split(data.days, cut_on)
    if not test_mask.any() or not train_mask.any():
        raise InputError(
            f"the cut {cut_on} leaves no visits on one side "
            f"(visits run from {min(data.days)} to {max(data.days)})",
            code="noshow.bad_cut",
        )
    pick = [i for i, m in enumerate(train_mask) if m]
    progress(f"training on {len(pick):,} visits before {cut_on}")
    model = train(
        [data.rows[i] for i in pick],
        data.labels[train_mask],
        [data.days[i] for i in pick],
        data_source=data_source,
        trained_at=trained_at,
    )
    test_idx = [i for i, m in enumerate(test_mask) if m]
    progress(f"scoring {len(test_idx):,} visits from {cut_on} on")
    scores = model.predict([data.rows[i] for i in test_idx])
    labels = data.labels[test_mask]
    evaluation = Evaluation(
        cut_on=cut_on,
        n_train=len(pick),
        overall=metrics(labels, scores),
        calibration=calibration_by_decile(labels, scores),
        by_age_band=metrics_by_group(
            labels,
            scores,
            [data.rows[i].age_band for i in test_idx],
            order=[label for _, label in AGE_BANDS],
        ),
        by_sex=metrics_by_group(labels, scores, [data.visits[i].sex.value for i in test_idx]),
    )
    card = replace(model.card, evaluation=evaluation.to_json())
    return evaluation, replace(model, card=card)
