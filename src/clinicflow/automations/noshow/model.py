"""Training a LightGBM no-show model, scoring with it, and saving it with its model card.

The probabilities come straight from LightGBM's binary log-loss objective, which is calibrated
on this kind of data (the evaluation's Brier score and decile table check it); a separate
calibrator would take rows away from training for no measured gain.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from clinicflow.automations.noshow.evaluate import Floats, metrics
from clinicflow.automations.noshow.features import NoShowFeatures
from clinicflow.automations.noshow.matrix import (
    CATEGORICAL_INDEXES,
    COLUMNS,
    Encoding,
    fit_encoding,
    to_matrix,
)
from clinicflow.errors import InputError

MODEL_FILE = "model.txt"
CARD_FILE = "model_card.json"
# The last third of the training period (by day) picks the number of rounds; then the model is
# refit on the whole period, since the most recent weeks are the most like the ones scored next.
VALIDATION_SHARE = 1 / 3
MIN_TRAINING_VISITS = 500


@dataclass(frozen=True, slots=True)
class TrainingParams:
    """LightGBM settings, tuned on the Kaggle train period (docs/benchmarks.md)."""

    learning_rate: float = 0.03
    num_leaves: int = 15
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    # Neighbourhoods and providers overfit without strong smoothing of category statistics.
    cat_smooth: float = 200.0
    cat_l2: float = 100.0
    min_data_per_group: int = 500
    max_cat_threshold: int = 8
    max_rounds: int = 3000
    early_stopping_rounds: int = 100
    seed: int = 7

    def lightgbm(self) -> dict[str, Any]:
        """The parameters as LightGBM takes them."""
        p = asdict(self)
        for key in ("max_rounds", "early_stopping_rounds"):
            del p[key]
        return p | {"objective": "binary", "bagging_freq": 1, "verbose": -1}


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What the model was trained on and how well it did, saved next to it as JSON."""

    data_source: str
    first_visit_on: date
    last_visit_on: date
    n_train: int
    noshow_rate: float
    features: tuple[str, ...]
    rounds: int
    validation: dict[str, Any]  # metrics on the held-out slice of the training period
    trained_at: datetime
    params: dict[str, Any]
    lightgbm_version: str = lgb.__version__
    evaluation: dict[str, Any] | None = None  # a temporal evaluation, when one was run
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class NoShowModel:
    """A trained model with the encoding it needs and its card."""

    booster: lgb.Booster
    encoding: Encoding
    card: ModelCard

    def predict(self, rows: Sequence[NoShowFeatures]) -> Floats:
        """The no-show probability of each visit."""
        if not rows:
            return np.empty(0, dtype=np.float64)
        scores = self.booster.predict(to_matrix(rows, self.encoding))
        return np.asarray(scores, dtype=np.float64)


def validation_from(days: Sequence[date]) -> date:
    """The first day of the validation slice: the last VALIDATION_SHARE of visits by day."""
    ordered = sorted(days)
    return ordered[int(len(ordered) * (1 - VALIDATION_SHARE))]


def _dataset(x: Any, y: Any, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    return lgb.Dataset(
        x,
        y,
        categorical_feature=list(CATEGORICAL_INDEXES),
        reference=reference,
        feature_name=list(COLUMNS),
        free_raw_data=False,
    )


def train(
    rows: Sequence[NoShowFeatures],
    labels: Floats,
    days: Sequence[date],
    *,
    data_source: str,
    trained_at: datetime,
    params: TrainingParams | None = None,
) -> NoShowModel:
    """Fit on visits with known outcomes (labels 1 = no-show), rounds chosen on the last slice."""
    params = params or TrainingParams()
    if len(rows) < MIN_TRAINING_VISITS or not 0 < labels.sum() < len(labels):
        raise InputError(
            f"{len(rows)} visits with an outcome are too few to train on (need "
            f"{MIN_TRAINING_VISITS}, with both shows and no-shows)",
            code="noshow.too_little_history",
        )
    encoding = fit_encoding(rows)
    x = to_matrix(rows, encoding)
    start = validation_from(days)
    fit = np.array([d < start for d in days], dtype=np.bool_)
    fit_set = _dataset(x[fit], labels[fit])
    booster = lgb.train(
        params.lightgbm(),
        fit_set,
        params.max_rounds,
        valid_sets=[_dataset(x[~fit], labels[~fit], reference=fit_set)],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    held_out = metrics(
        labels[~fit],
        np.asarray(
            booster.predict(x[~fit], num_iteration=booster.best_iteration), dtype=np.float64
        ),
    )
    # More rows for the refit: keep the trees' share of the data about the same.
    rounds = max(1, round(booster.best_iteration * len(rows) / int(fit.sum())))
    final = lgb.train(params.lightgbm(), _dataset(x, labels), rounds)
    card = ModelCard(
        data_source=data_source,
        first_visit_on=min(days),
        last_visit_on=max(days),
        n_train=len(rows),
        noshow_rate=float(labels.mean()),
        features=COLUMNS,
        rounds=rounds,
        validation={"from": start.isoformat(), **asdict(held_out)},
        trained_at=trained_at,
        params=asdict(params),
    )
    return NoShowModel(booster=final, encoding=encoding, card=card)


def card_json(card: ModelCard) -> dict[str, Any]:
    """The card as plain JSON values (dates and instants as ISO 8601)."""
    return json.loads(json.dumps(asdict(card), default=str))  # type: ignore[no-any-return]


def save(model: NoShowModel, directory: Path) -> Path:
    """Write the model, its encoding and its card into `directory`; the card's path."""
    directory.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(directory / MODEL_FILE))
    card = card_json(model.card) | {"encoding": model.encoding.to_json()}
    path = directory / CARD_FILE
    path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load(directory: Path) -> NoShowModel:
    """Read a model saved by `save`; a missing one says how to train it."""
    if not (directory / MODEL_FILE).is_file() or not (directory / CARD_FILE).is_file():
        raise InputError(
            "no no-show model here; train one with `clinicflow noshow train`",
            where=str(directory),
            code="noshow.no_model",
        )
    data = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
    encoding = Encoding.from_json(data.pop("encoding"))
    if tuple(data["features"]) != COLUMNS:
        raise InputError(
            "the saved model was trained on other features; train it again",
            where=str(directory),
            code="noshow.stale_model",
        )
    card = ModelCard(
        **data
        | {
            "first_visit_on": date.fromisoformat(data["first_visit_on"]),
            "last_visit_on": date.fromisoformat(data["last_visit_on"]),
            "trained_at": datetime.fromisoformat(data["trained_at"]),
            "features": tuple(data["features"]),
            "notes": tuple(data["notes"]),
        }
    )
    booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
    return NoShowModel(booster=booster, encoding=encoding, card=card)
