"""No-show risk (issue 7): leak-free features, a LightGBM model with its card, its evaluation, and
the `noshow-risk` automation (`automation.py`) that scores upcoming visits and asks for calls.
"""

from clinicflow.automations.noshow.automation import AUTOMATION
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
