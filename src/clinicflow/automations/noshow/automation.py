"""noshow-risk: each afternoon, score the next two days' visits; ask for a call where risk is high.

The model is the practice's own: trained from its history on the first run (and again once a
week), saved with its card under the data dir. Scores and their reasons go to `noshow_scores`,
which the Today board shows. A visit at or above the reminder policy's `high_risk_at` gets an
extra reminder (appointment-reminders plans it: the visit's reminder plan is looked at again); one
above `CALL_AT` also gets a work item for the front desk to call the patient. The automation never
cancels or overbooks anything itself.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete

from clinicflow.automations.noshow.features import features_for_all
from clinicflow.automations.noshow.history import practice_visits
from clinicflow.automations.noshow.records import Outcome, Visit
from clinicflow.automations.reminders import marks
from clinicflow.automations.reminders.config import load_policy
from clinicflow.clock import local_text
from clinicflow.engine import Automation, Priority, RunContext, Schedule, Unit, work_item_key
from clinicflow.errors import InputError
from clinicflow.store.conflicts import upsert_insert
from clinicflow.store.generations import bump_generations
from clinicflow.store.noshow import NoShowScore

if TYPE_CHECKING:
    from clinicflow.automations.noshow.model import NoShowModel
    from clinicflow.automations.noshow.scoring import VisitScore

NAME = "noshow-risk"
AHEAD = timedelta(days=2)
RETRAIN_AFTER = timedelta(days=7)
MIN_HISTORY = 2000  # visits with an outcome; fewer and the model would learn noise
CALL_AT = 0.40  # the synthetic practice's top ~5% of visits; the practice tunes it
SCORES_TYPE = "NoShowScore"  # the Today board's cache watches this generation


def model_dir(ctx: RunContext) -> Path:
    return ctx.settings.data_dir / "models" / "noshow"


def _model(ctx: RunContext, visits: list[Visit]) -> NoShowModel | None:
    # Imported here: LightGBM and scikit-learn cost ~1.4 s to import, and the registry loads this
    # module in every process (CLI commands included) while only this run needs them.
    from clinicflow.automations.noshow.model import load, save
    from clinicflow.automations.noshow.service import train_model

    try:
        model = load(model_dir(ctx))
        if ctx.now - model.card.trained_at < RETRAIN_AFTER:
            return model
    except InputError:
        model = None
    known = sum(1 for v in visits if v.outcome in (Outcome.ATTENDED, Outcome.NOSHOW))
    if known < MIN_HISTORY:
        ctx.logger.info("too little history to train the no-show model", extra={"n": known})
        return model
    trained = train_model(visits, ctx.zone, data_source="practice history", trained_at=ctx.now)
    save(trained, model_dir(ctx))
    ctx.count("model_trained")
    return trained


def _store(ctx: RunContext, scores: list[VisitScore], model: NoShowModel) -> None:
    if not scores:
        return
    rows = [
        {
            "appointment_id": s.visit_id,
            "probability": s.probability,
            "reasons": list(s.reasons),
            "model_trained_at": model.card.trained_at,
            "scored_at": ctx.now,
        }
        for s in scores
    ]
    stmt = upsert_insert(ctx.session, NoShowScore).values(rows)
    ctx.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["appointment_id"],
            set_={
                c: stmt.excluded[c]
                for c in ("probability", "reasons", "model_trained_at", "scored_at")
            },
        )
    )
    # Scores of visits long past are of no use to anyone.
    ctx.session.execute(
        delete(NoShowScore).where(NoShowScore.scored_at < ctx.now - timedelta(days=30))
    )
    bump_generations(ctx.session, [SCORES_TYPE])


def run(ctx: RunContext) -> None:
    """Score the visits of the next two days; a call work item for each high-risk one."""
    visits = practice_visits(ctx.session)
    model = _model(ctx, visits)
    if model is None:
        return

    from clinicflow.automations.noshow.scoring import score_visits  # LightGBM: see _model

    horizon = ctx.now + AHEAD
    features = features_for_all(visits, ctx.zone)
    upcoming = [
        (v, f)
        for v, f in zip(visits, features, strict=True)
        if v.outcome is Outcome.PENDING and ctx.now <= v.start_at < horizon
    ]
    scores = score_visits(model, [v.visit_id for v, _ in upcoming], [f for _, f in upcoming])
    _store(ctx, scores, model)
    ctx.count("visit_scored", len(scores))
    extra_at = load_policy(ctx.settings).high_risk_at
    risky = [s.visit_id for s in scores if s.probability >= extra_at]
    marks.look_again(ctx.session, risky, ctx.now)
    ctx.count("extra_reminder_planned", len(risky))
    for (visit, _features), score in zip(upcoming, scores, strict=True):
        if score.probability < CALL_AT:
            continue
        focus = f"Appointment/{visit.visit_id}"
        ctx.effects.open_work_item(
            key=work_item_key(NAME, "call", focus),
            description=(
                f"Call to confirm the {local_text(visit.start_at, str(ctx.zone))} visit: "
                f"no-show risk {score.probability:.0%} ({'; '.join(score.reasons)})."
            ),
            priority=Priority.ROUTINE,
            due_at=max(ctx.now, visit.start_at - timedelta(hours=20)),
            focus=focus,
            for_ref=f"Patient/{visit.patient_id}",
        )
        ctx.count("call_requested")


AUTOMATION = Automation(
    name=NAME,
    summary="Score the next two days' visits for no-show risk; ask for a call where it is high",
    trigger=Schedule("0 17 * * *"),
    run=run,
    owner="front-desk",
    units=(
        Unit("visit_scored", minutes_saved=0.0),
        # A call made to the right patient instead of calling down the whole list: ~3 minutes.
        Unit("call_requested", minutes_saved=3.0),
        Unit("model_trained", minutes_saved=0.0),
        Unit("extra_reminder_planned", minutes_saved=0.0),
    ),
)

__all__ = ["AUTOMATION", "CALL_AT", "NAME", "run"]
