"""Training the no-show model, its card, saving and loading it, and the evaluation tables."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from clinicflow.automations.noshow import (
    Outcome,
    Sex,
    Visit,
    evaluate_temporal,
    features_for_all,
    load,
    save,
    train_model,
)
from clinicflow.automations.noshow.evaluate import calibration_by_decile, metrics
from clinicflow.errors import InputError

UTC_ZONE = ZoneInfo("UTC")
TRAINED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _practice(n: int, seed: int = 3) -> list[Visit]:
    """Visits over 90 days where long lead times miss far more often (a learnable signal)."""
    rng = random.Random(seed)
    visits = []
    for i in range(n):
        start_at = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=rng.randrange(90))
        lead = rng.choice([0, 0, 1, 3, 7, 14, 30, 45])
        missed = rng.random() < (0.05 if lead < 2 else 0.35)
        visits.append(
            Visit(
                visit_id=f"v{i}",
                patient_id=f"p{rng.randrange(n // 3)}",
                start_at=start_at,
                booked_at=start_at - timedelta(days=lead),
                outcome=Outcome.NOSHOW if missed else Outcome.ATTENDED,
                age_years=rng.randrange(90),
                sex=rng.choice([Sex.FEMALE, Sex.MALE]),
                location_id=rng.choice(["north", "south"]),
            )
        )
    return visits


def test_a_trained_model_is_saved_with_its_card_and_loads_to_the_same_scores(
    tmp_path: Path,
) -> None:
    visits = _practice(1500)
    model = train_model(visits, UTC_ZONE, data_source="test practice", trained_at=TRAINED_AT)
    directory = tmp_path / "models" / "noshow"
    card_path = save(model, directory)

    card = json.loads(card_path.read_text())
    assert card["data_source"] == "test practice"
    assert card["n_train"] == 1500
    assert card["first_visit_on"] == "2026-01-01"
    assert card["trained_at"] == "2026-03-01 12:00:00+00:00"
    assert "lead_days" in card["features"]
    assert card["validation"]["roc_auc"] > 0.6  # the lead-time signal is found
    assert set(card["encoding"]["location"]) == {"north", "south"}

    loaded = load(directory)
    rows = features_for_all(visits[:50], UTC_ZONE)
    np.testing.assert_allclose(loaded.predict(rows), model.predict(rows))
    assert loaded.card == model.card


def test_loading_where_no_model_was_saved_says_how_to_train_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="clinicflow noshow train"):
        load(tmp_path)


def test_too_little_history_is_refused_with_the_count() -> None:
    with pytest.raises(InputError, match="120 visits with an outcome are too few"):
        train_model(_practice(120), UTC_ZONE, data_source="tiny", trained_at=TRAINED_AT)


def test_the_temporal_evaluation_tests_only_visits_from_the_cut_on() -> None:
    visits = _practice(2000)
    cut_on = date(2026, 3, 1)
    evaluation, model = evaluate_temporal(
        visits, UTC_ZONE, cut_on=cut_on, data_source="test practice", trained_at=TRAINED_AT
    )
    n_test = sum(1 for v in visits if v.start_at.date() >= cut_on)
    assert evaluation.overall.n == n_test
    assert evaluation.n_train == len(visits) - n_test
    assert model.card.last_visit_on < cut_on  # trained before the cut only
    assert evaluation.overall.roc_auc is not None
    assert evaluation.overall.roc_auc > 0.6
    assert sum(row.n for row in evaluation.calibration) == n_test
    assert set(evaluation.by_sex) == {"female", "male"}
    assert sum(m.n for m in evaluation.by_age_band.values()) == n_test
    assert model.card.evaluation is not None
    assert model.card.evaluation["n_test"] == n_test


def test_deciles_order_visits_by_score_and_report_observed_rates() -> None:
    scores = np.linspace(0.01, 0.99, 100)
    labels = (scores > 0.5).astype(np.float64)
    rows = calibration_by_decile(labels, scores)
    assert [r.decile for r in rows] == list(range(1, 11))
    assert [r.observed_rate for r in rows] == [0.0] * 5 + [1.0] * 5
    assert all(a.max_score <= b.min_score for a, b in pairwise(rows))


def test_a_group_with_only_one_kind_of_outcome_has_no_roc_auc_but_a_brier_score() -> None:
    m = metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert (m.roc_auc, m.pr_auc) == (None, None)
    assert m.brier == pytest.approx((0.01 + 0.04 + 0.09 + 0.16) / 4)
