"""Evaluation arithmetic and the escalation ladder, worked by hand (pure)."""

from __future__ import annotations

from clinicflow.automations.triage.escalation import ladder, step_at
from clinicflow.automations.triage.evaluate import evaluate


def test_precision_recall_and_accuracy_match_the_counts_by_hand() -> None:
    truth = ["urgent", "urgent", "urgent", "billing", "billing", "other"]
    routed = ["urgent", "urgent", "billing", "billing", "urgent", "other"]
    found = evaluate(truth, routed)
    scores = {s.pool: s for s in found.pools}
    assert (scores["urgent"].support, scores["urgent"].predicted) == (3, 3)
    assert scores["urgent"].recall == 2 / 3
    assert scores["urgent"].precision == 2 / 3
    assert scores["billing"].recall == 1 / 2
    assert scores["billing"].precision == 1 / 2
    assert found.accuracy == 4 / 6
    assert found.confusion["urgent"]["billing"] == 1
    assert found.confusion["billing"]["urgent"] == 1
    assert found.to_json()["urgent_recall"] == 0.6667


def test_the_ladder_tells_those_on_call_then_each_next_on_the_rota_then_every_clinician() -> None:
    steps = ladder(["ana", "ben"], ["ben", "cleo", "dev"], ["ana", "eve", "fay", "cleo"])
    assert steps == [["ana", "ben"], ["cleo"], ["dev"], ["eve", "fay"]]
    assert step_at(steps, 0) == ["ana", "ben"]
    assert step_at(steps, 3) == ["eve", "fay"]
    # Past the last step everyone is told again: an urgent message never goes quiet.
    assert step_at(steps, 4) == ["ana", "ben", "cleo", "dev", "eve", "fay"]
    assert step_at([], 0) == []
