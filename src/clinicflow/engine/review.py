"""Work items that ask a person about an effect the engine could not finish on its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from clinicflow.engine.effects import decrypt_payload, link_work_item
from clinicflow.engine.keys import effect_review_key
from clinicflow.engine.runtime import EngineRuntime
from clinicflow.engine.states import EffectId, Priority, WorkItemId
from clinicflow.engine.switches import switch_for
from clinicflow.engine.workitems import open_work_item
from clinicflow.errors import ClinicflowError
from clinicflow.store.engine import Effect

FALLBACK_POOL = "automation-team"
ENGINE_ACTOR = "system:engine"


def effective_owner(session: Session, rt: EngineRuntime, automation: str) -> str:
    """The pool that owns an automation: the team's override, else its declaration."""
    override = switch_for(session, automation).owner
    if override:
        return override
    declared = rt.registry.find(automation)
    return declared.owner if declared is not None else FALLBACK_POOL


def _refs(rt: EngineRuntime, row: Effect) -> tuple[str | None, str | None]:
    try:
        payload = decrypt_payload(rt.cipher, row)
    except ClinicflowError:
        return None, None
    focus, for_ref = payload.get("focus"), payload.get("for_ref")
    return (
        focus if isinstance(focus, str) else None,
        for_ref if isinstance(for_ref, str) else None,
    )


def open_effect_review(
    session: Session, rt: EngineRuntime, row: Effect, *, now: datetime, why: str, urgent: bool
) -> WorkItemId:
    """Open (once per effect) a work item explaining what happened, and link it to the effect."""
    focus, for_ref = _refs(rt, row)
    opened = open_work_item(
        session,
        rt.cipher,
        key=effect_review_key(row.key, row.attempts),
        pool=effective_owner(session, rt, row.automation),
        description=f"{row.summary} ({row.automation}, effect {row.key}). {why}",
        actor=ENGINE_ACTOR,
        now=now,
        priority=Priority.URGENT if urgent else Priority.ROUTINE,
        focus=focus,
        for_ref=for_ref,
        source_run_id=row.run_id,
        source_effect_key=row.key,
    )
    link_work_item(session, EffectId(row.id), opened.id)
    return opened.id
