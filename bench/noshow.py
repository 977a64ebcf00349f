"""Benchmark the no-show model: train and evaluate on the public Kaggle data, as the CLI does.

No arguments. Reads ../shared/data/noshow/KaggleV2-May-2016.csv (BENCH_KAGGLE overrides the
path), trains on visits before 2016-05-25 and tests on those from it on (issue 7's temporal
split), through the same `evaluate_temporal` that `clinicflow noshow evaluate --from-kaggle PATH`
runs. `train_s` times features, encoding, the early-stopped fit, the refit and scoring the test
period; not reading the CSV.

Prints the per-group tables first and the figures last, as name=value pairs on one line.
Target: roc_auc >= 0.73 with brier <= 0.140 (stretch 0.75; above 0.85 means leakage).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from clinicflow.automations.noshow import evaluate_temporal, read_kaggle
from clinicflow.cli.noshow import KAGGLE_CUT, KAGGLE_ZONE

KAGGLE = Path(__file__).resolve().parents[2] / "shared/data/noshow/KaggleV2-May-2016.csv"


def main() -> None:
    path = Path(os.environ.get("BENCH_KAGGLE", str(KAGGLE)))
    data = read_kaggle(path)
    print(
        f"{path}: {len(data.visits):,} visits, {len(data.rejected)} rows left out", file=sys.stderr
    )
    started = time.perf_counter()
    evaluation, _ = evaluate_temporal(
        data.visits,
        KAGGLE_ZONE,
        cut_on=KAGGLE_CUT,
        data_source=f"kaggle:{path.name}",
        trained_at=datetime(2016, 6, 9, tzinfo=UTC),  # fixed: the bench saves nothing
    )
    train_s = time.perf_counter() - started
    for name, table in (("age", evaluation.by_age_band), ("sex", evaluation.by_sex)):
        for group, m in table.items():
            auc = f"{m.roc_auc:.4f}" if m.roc_auc is not None else "n/a"
            print(
                f"{name}={group} n={m.n} roc_auc={auc} brier={m.brier:.4f} "
                f"rate={m.noshow_rate:.3f} mean_score={m.mean_predicted:.3f}"
            )
    for row in evaluation.calibration:
        print(
            f"decile={row.decile} predicted={row.mean_predicted:.3f} "
            f"observed={row.observed_rate:.3f} n={row.n}"
        )
    o = evaluation.overall
    print(
        f"roc_auc={o.roc_auc:.4f} pr_auc={o.pr_auc:.4f} brier={o.brier:.4f} "
        f"n_train={evaluation.n_train} n_test={o.n} train_s={train_s:.1f}"
    )


if __name__ == "__main__":
    main()
