"""How well triage routes: per-pool precision and recall, the confusion matrix, accuracy (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clinicflow.automations.triage.pools import POOLS, URGENT


@dataclass(frozen=True, slots=True)
class PoolScore:
    """One pool's counts and rates (None where nothing was predicted or expected)."""

    pool: str
    support: int  # messages whose true pool this is
    predicted: int
    correct: int

    @property
    def precision(self) -> float | None:
        """Of the messages sent here, the share that belonged here."""
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        """Of the messages that belonged here, the share sent here."""
        return self.correct / self.support if self.support else None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Scores of a set of decisions against their true pools."""

    pools: tuple[PoolScore, ...]
    confusion: dict[str, dict[str, int]]  # true pool -> predicted pool -> count
    total: int
    correct: int
    urgent_recall: float | None
    urgent_precision: float | None

    @property
    def accuracy(self) -> float | None:
        """Routing accuracy over all pools."""
        return self.correct / self.total if self.total else None

    def to_json(self) -> dict[str, object]:
        """The figures as `triage evaluate --json` prints them."""
        return {
            "messages": self.total,
            "routing_accuracy": _round(self.accuracy),
            "urgent_recall": _round(self.urgent_recall),
            "urgent_precision": _round(self.urgent_precision),
            "pools": {
                s.pool: {
                    "support": s.support,
                    "predicted": s.predicted,
                    "precision": _round(s.precision),
                    "recall": _round(s.recall),
                }
                for s in self.pools
            },
            "confusion": self.confusion,
        }


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def evaluate(truth: Sequence[str], predicted: Sequence[str]) -> Evaluation:
    """Compare predicted pools with true ones, message by message."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    pools = [p for p in POOLS if p in set(truth) | set(predicted)]
    confusion = {t: dict.fromkeys(pools, 0) for t in pools}
    for t, p in zip(truth, predicted, strict=True):
        confusion[t][p] += 1
    scores = tuple(
        PoolScore(
            pool,
            sum(confusion[pool].values()),
            sum(confusion[t][pool] for t in pools),
            confusion[pool][pool],
        )
        for pool in pools
    )
    urgent = next((s for s in scores if s.pool == URGENT), None)
    return Evaluation(
        scores,
        confusion,
        len(truth),
        sum(confusion[p][p] for p in pools),
        urgent.recall if urgent else None,
        urgent.precision if urgent else None,
    )
