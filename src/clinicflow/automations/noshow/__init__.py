"""No-show risk (issue 7): leak-free features, a LightGBM model with its card, and its evaluation.

Not an automation yet: acting on the score (extra reminders, calls, overbooking suggestions) comes
later, and with it `AUTOMATION = Automation(...)` and the entry point. Until then this package
exports the model's parts for the CLI and the bench.
"""

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

__all__ = [
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
