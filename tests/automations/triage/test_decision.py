"""The triage decision: the union of the two layers, its reasons, and what `classify` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinicflow.automations.triage.decide import Triage, default_triage
from clinicflow.automations.triage.lexicon import load_lexicon
from clinicflow.automations.triage.model import (
    THRESHOLD_CAP,
    Example,
    threshold_within_budget,
    train,
)
from clinicflow.automations.triage.pools import POOLS


@pytest.fixture(scope="module")
def triage(shared_triage_models: Path) -> Triage:
    return default_triage(cache_dir=shared_triage_models)  # trained once a test run


@pytest.mark.parametrize(
    "text",
    [
        "X, can't come, chest pain",
        "cant breath since this morning",
        "denies chest pain but I can't breathe",
        "me quiero morir",
        "No puedo respirar bien y tengo los labios morados",
    ],
)
def test_an_urgent_message_goes_to_urgent_with_the_phrase_in_its_reasons(
    triage: Triage, text: str
) -> None:
    decision = triage.decide(text)
    assert decision.urgent
    assert decision.pool == "urgent"
    assert any(r.startswith("red flag") and "not counted" not in r for r in decision.reasons)


@pytest.mark.parametrize(
    ("text", "pool"),
    [
        ("Can I get a refill of my lisinopril sent to the CVS on Main?", "medication"),
        ("I need to reschedule my appointment on Tuesday", "appointment"),
        ("I got a bill for $145 but my insurance should have covered it", "billing"),
    ],
)
def test_routine_messages_go_to_their_pool_and_the_classifier_says_how_sure(
    triage: Triage, text: str, pool: str
) -> None:
    decision = triage.decide(text)
    assert (decision.pool, decision.urgent) == (pool, False)
    assert decision.reasons[-1].startswith(f"classifier: {pool} ")
    assert set(decision.scores) == set(POOLS)


def test_denies_chest_pain_is_not_urgent_and_the_reason_says_the_flag_was_negated(
    triage: Triage,
) -> None:
    decision = triage.decide("Denies chest pain. Needs a refill of metformin.")
    assert not decision.urgent
    assert "red flag chest-pain: \u201cchest pain\u201d not counted (negated)" in decision.reasons


def test_the_classifier_alone_makes_a_message_urgent_when_the_lexicon_misses_it() -> None:
    # A model trained where "zzq" means urgent, with a lexicon that knows nothing of it.
    examples = [Example(f"u{n}", "en", "urgent", f"zzq help now {n}") for n in range(20)]
    examples += [Example(f"o{n}", "en", "other", f"thanks for the visit {n}") for n in range(20)]
    model = train(examples, urgent_by_lexicon=lambda _text: False)
    decision = Triage(load_lexicon(), model).decide("zzq help")
    assert decision.urgent
    assert decision.red_flags == ()
    assert decision.reasons[-1].startswith("classifier: urgent")


def test_the_threshold_lets_through_no_more_false_alarms_than_the_budget() -> None:
    # 20 non-urgent messages, margins -0.05 .. -1.0, none flagged: a 10% budget allows 2.
    calm = [(-0.05 * n, False) for n in range(1, 21)]
    threshold = threshold_within_budget(calm, 0.10)
    assert sum(m >= threshold for m, _ in calm) == 2
    assert -0.15 < threshold < -0.10
    # The lexicon's false alarms are spent first: one flagged leaves room for one more.
    flagged_one = [(m, n == 19) for n, (m, _) in enumerate(calm)]
    threshold = threshold_within_budget(flagged_one, 0.10)
    assert sum(m >= threshold for m, flagged in flagged_one if not flagged) == 1
    # Never above the cap.
    assert threshold_within_budget([(0.5, False)] * 20, 0.10) == THRESHOLD_CAP
    # Ties at the edge of the budget all stay out: 20 equal margins, room for 2, none let in.
    tied = [(-0.1, False)] * 20
    assert sum(m >= threshold_within_budget(tied, 0.10) for m, _ in tied) == 0
    # The lexicon spent the whole budget: no model alarm on these, but no higher than needed.
    spent = [(-0.1, True)] * 3 + [(-0.2, False)] * 17
    threshold = threshold_within_budget(spent, 0.10)
    assert -0.2 < threshold < -0.19


def test_an_empty_message_is_other_and_decisions_keep_their_order(triage: Triage) -> None:
    texts = ["", "chest pain", "   ", "refill my inhaler please"]
    decisions = triage.decide_many(texts)
    assert [d.pool for d in decisions][:3] == ["other", "urgent", "other"]
    assert decisions[0].reasons == ("empty message",)
    assert decisions[3].pool == "medication"
    json = decisions[1].to_json()
    assert {"pool", "urgent", "reasons", "scores", "model"} <= set(json)
