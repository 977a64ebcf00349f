"""daily-digest: each afternoon, flag tomorrow's provider sessions that are overbooked or empty."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from clinicflow.automations.digest.rules import (
    SlotTime,
    Visit,
    describe,
    flagged_sessions,
    session_loads,
)
from clinicflow.engine import Automation, Priority, RunContext, Schedule, Unit, work_item_key
from clinicflow.store.schedule_queries import (
    practitioner_names,
    slot_starts_between,
    visit_starts_between,
)

NAME = "daily-digest"


def run(ctx: RunContext) -> None:
    """Count tomorrow's slots and visits per provider session; a work item per flagged provider."""
    tomorrow = ctx.now.astimezone(ctx.zone).date() + timedelta(days=1)
    day_start = datetime.combine(tomorrow, time(0), tzinfo=ctx.zone)
    day_end = datetime.combine(tomorrow + timedelta(days=1), time(0), tzinfo=ctx.zone)
    slots = [SlotTime(p, s) for p, s in slot_starts_between(ctx.session, day_start, day_end)]
    visits = [Visit(p, s) for p, s in visit_starts_between(ctx.session, day_start, day_end)]
    loads = session_loads(slots, visits, tomorrow, ctx.zone)
    ctx.count("provider_day_checked", len({load.practitioner_id for load in loads}))
    flagged = flagged_sessions(loads)
    names = practitioner_names(ctx.session, ctx.cipher, flagged)
    for practitioner_id, sessions in sorted(flagged.items()):
        focus = f"Practitioner/{practitioner_id}"
        ctx.effects.open_work_item(
            key=work_item_key(NAME, f"session-load-{tomorrow.isoformat()}", focus),
            description=describe(names.get(practitioner_id, focus), sessions),
            priority=Priority.ROUTINE,
            due_at=day_start.replace(hour=8),
            focus=focus,
        )
        ctx.count("session_flagged", len(sessions))


AUTOMATION = Automation(
    name=NAME,
    summary="Flag tomorrow's provider sessions that are overbooked or empty",
    trigger=Schedule("0 16 * * *"),
    run=run,
    owner="scheduler",
    units=(
        # A scheduler checking one provider's next day by hand: about two minutes.
        Unit("provider_day_checked", minutes_saved=2.0),
        Unit("session_flagged", minutes_saved=0.0),
    ),
)
