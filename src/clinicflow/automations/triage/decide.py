"""The triage decision: which pool, whether urgent, and why (pure, given the two layers).

Urgent is the union: a counted red flag, or the classifier's urgent margin at or above its
threshold. A message that is not urgent goes to the classifier's most likely other pool. Every
decision carries its reasons, the phrases and scores behind it, for the person who reviews it;
`clinicflow triage classify` prints exactly this decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clinicflow.automations.triage.lexicon import (
    Hit,
    Lexicon,
    lexicon_text,
    load_lexicon,
    red_flags,
    urgent_hits,
)
from clinicflow.automations.triage.model import PoolModel, cached_model, training_set
from clinicflow.automations.triage.pools import OTHER, URGENT

MAX_TEXT = 5000  # characters read; a longer message is still stored and shown whole


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a message goes and why."""

    pool: str
    urgent: bool
    reasons: tuple[str, ...]
    red_flags: tuple[str, ...]  # ids of the flags that counted
    scores: dict[str, float]
    model: str

    def to_json(self) -> dict[str, object]:
        """The decision as `triage classify` prints it and the store keeps it."""
        return {
            "pool": self.pool,
            "urgent": self.urgent,
            "reasons": list(self.reasons),
            "red_flags": list(self.red_flags),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "model": self.model,
        }


class Triage:
    """The red-flag lexicon and the pool classifier, loaded once."""

    def __init__(self, lexicon: Lexicon, model: PoolModel) -> None:
        self.lexicon = lexicon
        self.model = model

    def decide(self, text: str) -> Decision:
        """The decision for one message."""
        return self.decide_many([text])[0]

    def decide_many(self, texts: Sequence[str]) -> list[Decision]:
        """Decisions for many messages, the classifier run once over all of them."""
        clipped = [t[:MAX_TEXT] for t in texts]
        scores = self.model.scores([t for t in clipped if t.strip()])
        found, at = [], 0
        for text in clipped:
            if not text.strip():
                found.append(Decision(OTHER, False, ("empty message",), (), {}, self.model.version))
                continue
            found.append(self._decision(red_flags(self.lexicon, text), scores[at]))
            at += 1
        return found

    def _decision(self, hits: list[Hit], scores: dict[str, float]) -> Decision:
        threshold = self.model.urgent_threshold
        urgent_margin = scores.get(URGENT, 0.0)
        counted = [h for h in hits if h.counts]
        reasons = [h.reason() for h in hits]
        by_model = urgent_margin >= threshold
        if by_model:
            reasons.append(f"classifier: urgent {urgent_margin:.2f} (threshold {threshold:.2f})")
        urgent = bool(counted) or by_model
        others = sorted(((p, pool) for pool, p in scores.items() if pool != URGENT), reverse=True)
        if urgent:
            pool = URGENT
        else:
            pool = others[0][1] if others else OTHER
            runner_up = f", next {others[1][1]} {others[1][0]:.2f}" if len(others) > 1 else ""
            reasons.append(
                f"classifier: {pool} {others[0][0]:.2f}{runner_up}; urgent {urgent_margin:.2f} "
                f"under {threshold:.2f}"
                if others
                else "classifier: no pool"
            )
        return Decision(
            pool,
            urgent,
            tuple(reasons),
            tuple(h.flag for h in counted),
            scores,
            self.model.version,
        )


@lru_cache(maxsize=4)
def default_triage(lexicon_path: str | None = None, cache_dir: Path | None = None) -> Triage:
    """The practice's lexicon (or the shipped one) and the model trained from the shipped set
    (kept in `cache_dir` between processes), loaded once per process."""
    lexicon = load_lexicon(lexicon_path)
    model = cached_model(
        training_set(),
        lexicon_text=lexicon_text(lexicon_path),
        urgent_by_lexicon=lambda text: bool(urgent_hits(red_flags(lexicon, text))),
        cache_dir=cache_dir,
    )
    return Triage(lexicon, model)
