"""`clinicflow noshow train|evaluate`: the no-show risk model, from the practice or Kaggle data."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

# The model's parts are imported by name from the package, which loads them (LightGBM,
# scikit-learn) only when a noshow command runs: importing them here would slow every command.
from clinicflow.automations import noshow
from clinicflow.cli.runtime import Runtime
from clinicflow.errors import InputError

app = typer.Typer(
    help="No-show risk: train the model and show how well it does.", no_args_is_help=True
)

KAGGLE_CUT = date(2016, 5, 25)  # issue 7: the public data's test period starts here
KAGGLE_ZONE = ZoneInfo("UTC")  # Kaggle's days are written as UTC midnights
FromKaggle = Annotated[
    Path | None,
    typer.Option(
        "--from-kaggle",
        help="KaggleV2-May-2016.csv (the public data set) instead of the practice's history",
        dir_okay=False,
    ),
]


def _visits(rt: Runtime, kaggle: Path | None) -> tuple[list[noshow.Visit], ZoneInfo, str]:
    """The visits to learn from, their time zone and a description for the model card."""
    if kaggle is not None:
        data = noshow.read_kaggle(kaggle)
        for row in data.rejected[:20]:
            rt.console.print(f"{kaggle}:{row.line}: left out: {row.reason}", highlight=False)
        if data.rejected:
            rt.console.print(f"{len(data.rejected)} rows left out, {len(data.visits):,} read")
        return data.visits, KAGGLE_ZONE, f"kaggle:{kaggle.name}"
    with rt.db.transaction() as session:
        visits = noshow.practice_visits(session)
    return visits, ZoneInfo(rt.settings.timezone), "practice replica"


def _too_little(exc: InputError, kaggle: Path | None) -> InputError:
    if kaggle is None and exc.code == "noshow.too_little_history":
        return InputError(
            f"{exc.message}. The practice has too little visit history; train a cold-start "
            "model on the public data with `clinicflow noshow train --from-kaggle PATH`.",
            code=exc.code,
        )
    return exc


@app.command("train")
def train(
    from_kaggle: FromKaggle = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the model card as JSON")] = False,
) -> None:
    """Train on every visit with an outcome and save the model and its card under the data dir."""
    rt = Runtime.load()
    visits, zone, source = _visits(rt, from_kaggle)
    try:
        model = noshow.train_model(
            visits, zone, data_source=source, trained_at=rt.clock.now(), progress=rt.console.print
        )
    except InputError as exc:
        raise _too_little(exc, from_kaggle) from exc
    card_path = noshow.save(model, rt.settings.data_dir / "models" / "noshow")
    if json_out:
        rt.out(noshow.card_json(model.card))
        return
    held_out = model.card.validation
    rt.console.print(
        f"saved {card_path.parent} ({model.card.n_train:,} visits, "
        f"{model.card.first_visit_on} to {model.card.last_visit_on}); on the last third held "
        f"out: ROC-AUC {held_out['roc_auc']:.3f}, Brier {held_out['brier']:.3f}"
    )


def _default_cut(visits: list[noshow.Visit], zone: ZoneInfo) -> date:
    """The practice's last quarter of visit days is the test period."""
    days = sorted(v.start_at.astimezone(zone).date() for v in visits if v.is_labelled)
    if not days:
        raise InputError("the practice has no visits with an outcome yet", code="noshow.no_history")
    return days[len(days) * 3 // 4]


def _print(rt: Runtime, evaluation: noshow.Evaluation) -> None:
    o = evaluation.overall
    rt.console.print(
        f"test from {evaluation.cut_on}: n={o.n:,} ROC-AUC {o.roc_auc or float('nan'):.3f} "
        f"PR-AUC {o.pr_auc or float('nan'):.3f} Brier {o.brier:.4f} "
        f"(no-show rate {o.noshow_rate:.3f}, mean score {o.mean_predicted:.3f})"
    )
    for name, table in (("age band", evaluation.by_age_band), ("sex", evaluation.by_sex)):
        for group, m in table.items():
            auc = f"{m.roc_auc:.3f}" if m.roc_auc is not None else "n/a"
            rt.console.print(f"  {name} {group}: n={m.n:,} ROC-AUC {auc} Brier {m.brier:.4f}")
    for row in evaluation.calibration:
        rt.console.print(
            f"  decile {row.decile}: predicted {row.mean_predicted:.3f} "
            f"observed {row.observed_rate:.3f} (n={row.n:,})"
        )


@app.command("evaluate")
def evaluate(
    from_kaggle: FromKaggle = None,
    cut: Annotated[
        str | None,
        typer.Option("--cut", help="First day of the test period, YYYY-MM-DD (Kaggle: 2016-05-25)"),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """Train before the cut day and report on the visits from it on (nothing is saved)."""
    rt = Runtime.load()
    try:
        cut_on = date.fromisoformat(cut) if cut else None
    except ValueError:
        raise InputError(f"--cut {cut!r} is not a date like 2016-05-25") from None
    visits, zone, source = _visits(rt, from_kaggle)
    if cut_on is None:
        cut_on = KAGGLE_CUT if from_kaggle is not None else _default_cut(visits, zone)
    try:
        evaluation, _ = noshow.evaluate_temporal(
            visits,
            zone,
            cut_on=cut_on,
            data_source=source,
            trained_at=rt.clock.now(),
            progress=rt.console.print,
        )
    except InputError as exc:
        raise _too_little(exc, from_kaggle) from exc
    if json_out:
        rt.out(evaluation.to_json())
    else:
        _print(rt, evaluation)
