"""No-show risk (issue 7): leak-free features, a LightGBM model with its card, its evaluation, and
the `noshow-risk` automation (`automation.py`) that scores upcoming visits and asks for calls.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from clinicflow.automations.noshow.automation import AUTOMATION

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    from clinicflow.automations.noshow.evaluate import DecileRow, Evaluation, Metrics
    from clinicflow.automations.noshow.features import (
        NoShowFeatures,
        age_band,
        features_for,
        features_for_all,
        prediction_moment,
    )
    from clinicflow.automations.noshow.history import practice_visits
    from clinicflow.automations.noshow.kaggle import KaggleData, RejectedRow, read_kaggle
    from clinicflow.automations.noshow.model import ModelCard, NoShowModel, card_json, load, save
    from clinicflow.automations.noshow.records import Conditions, Outcome, Sex, Visit
    from clinicflow.automations.noshow.service import evaluate_temporal, train_model

# LightGBM, scikit-learn and numpy take ~1.4 s to import: every CLI command and worker loads this
# package through the automation registry, so the model's parts load on first use instead.
_LAZY = {
    "Conditions": "records",
    "DecileRow": "evaluate",
    "Evaluation": "evaluate",
    "KaggleData": "kaggle",
    "Metrics": "evaluate",
    "ModelCard": "model",
    "NoShowFeatures": "features",
    "NoShowModel": "model",
    "Outcome": "records",
    "RejectedRow": "kaggle",
    "Sex": "records",
    "Visit": "records",
    "age_band": "features",
    "card_json": "model",
    "evaluate_temporal": "service",
    "features_for": "features",
    "features_for_all": "features",
    "load": "model",
    "practice_visits": "history",
    "prediction_moment": "features",
    "read_kaggle": "kaggle",
    "save": "model",
    "train_model": "service",
}


def __getattr__(name: str) -> Any:
    """Import a model part on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AUTOMATION",
    "Conditions",
    "DecileRow",
    "Evaluation",
    "KaggleData",
    "Metrics",
    "ModelCard",
    "NoShowFeatures",
    "NoShowModel",
    "Outcome",
    "RejectedRow",
    "Sex",
    "Visit",
    "age_band",
    "card_json",
    "evaluate_temporal",
    "features_for",
    "features_for_all",
    "load",
    "practice_visits",
    "prediction_moment",
    "read_kaggle",
    "save",
    "train_model",
]
