"""appointment-reminders: every few minutes, send the reminders that are due, each exactly once.

A run plans every upcoming visit's touchpoints (`policy.plan`), keeps those due now that no
message has claimed yet (`claims`), routes each to the patient's channel (`compose`), folds the
visits of one contact at one touchpoint into one message, and records each message as a
`message.send` effect keyed `reminder:{appointments}:{touchpoint}@{start}`, with its claims, in
the run's transaction. The channel checks the message again when it sends it (pause, opt-out,
quiet hours, the visit moved or was cancelled), so nothing planned goes out stale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from clinicflow.automations.reminders import marks
from clinicflow.automations.reminders.claims import (
    ClaimKey,
    NewClaim,
    held_claims,
    rekey,
    release_gone,
    sweep_voided,
    take_claims,
)
from clinicflow.automations.reminders.compose import Due, choose_route, group_messages
from clinicflow.automations.reminders.config import load_policy
from clinicflow.automations.reminders.policy import (
    MIN_NOTICE,
    Planned,
    Policy,
    due_now,
    next_look,
    plan,
    policy_fingerprint,
)
from clinicflow.automations.reminders.templates import (
    ReminderContext,
    Templates,
    VisitLine,
    load_templates,
    render_reminder,
)
from clinicflow.automations.reminders.visits import (
    Contact,
    Upcoming,
    contacts,
    person_names,
    place_names,
    sharing_contacts,
    upcoming_visits,
)
from clinicflow.channels.consent import opted_out_among
from clinicflow.channels.link_secret import unsubscribe_link, visit_link
from clinicflow.clock import zone_or
from clinicflow.engine import Automation, RunContext, Schedule, Unit, reminder_key
from clinicflow.engine.payloads import MessageChannel, OutgoingMessage, ValidWhile
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.generations import generation_of
from clinicflow.store.noshow import scored_at_least

NAME = "appointment-reminders"
# Closure days move a send earlier than its lead time: look this much further ahead for them.
CLOSURE_SLACK = timedelta(days=7)
# A visit whose touchpoint falls due within this long joins a message due now to the same
# contact at the same touchpoint (two visits the same day: one text, not two an hour apart).
RIDE_ALONG = timedelta(hours=12)
_KIND_OF = {MessageChannel.SMS: "phone", MessageChannel.EMAIL: "email"}


def run(ctx: RunContext) -> None:
    """Record every reminder due now that no earlier run recorded."""
    policy = load_policy(ctx.settings)
    start_after = ctx.now + MIN_NOTICE
    horizon = ctx.now + _longest_lead(policy) + CLOSURE_SLACK
    wanted = _visits_to_plan(ctx, policy, start_after, horizon)
    upcoming = upcoming_visits(ctx.session, start_after, horizon, ids=wanted) if wanted else []
    plans = _plan_each(ctx, policy, upcoming)
    # Other visits of the contacts a message is due to now may ride along in it.
    due_to = {
        u.patient_id for u in upcoming if any(p.send_at <= ctx.now for p in plans[u.appointment_id])
    }
    if due_to:
        riders = upcoming_visits(
            ctx.session,
            start_after,
            horizon,
            patient_ids=sharing_contacts(ctx.session, due_to),
            known=plans.keys(),
        )
        plans.update(_plan_each(ctx, policy, riders))
        upcoming += riders
    taken = _send_due(ctx, upcoming, plans)
    if ctx.dry_run:
        return  # a rehearsal leaves the plan as it found it: the live runs send these
    marks.drop(ctx.session, wanted - set(plans))  # no longer upcoming (or not for reminders)
    marks.save(
        ctx.session,
        {
            u.appointment_id: (
                u.visit.start_at,
                next_look(
                    u.visit,
                    plans[u.appointment_id],
                    taken.get(u.appointment_id, set()),
                    policy,
                    ctx.now,
                    practice_zone=ctx.zone,
                ),
            )
            for u in upcoming
        },
    )


def _longest_lead(policy: Policy) -> timedelta:
    leads = [t.lead for t in policy.default]
    leads += [t.lead for ts in policy.by_specialty.values() for t in ts]
    leads += [t.lead for ts in policy.by_appointment_type.values() for t in ts]
    leads += [t.lead for t in policy.high_risk]
    return max(leads, default=timedelta(0))


def _visits_to_plan(
    ctx: RunContext, policy: Policy, start_after: datetime, horizon: datetime
) -> set[str]:
    """The visits this run must plan (see `marks`); a dry run changes nothing on the way."""
    session = ctx.session
    state = marks.load_state(session)
    fingerprint = policy_fingerprint(policy)
    generation = generation_of(session, marks.WATCHED_TYPES)
    today = ctx.now.astimezone(ctx.zone).date()
    policy_changed = state.policy != fingerprint
    replica_changed = policy_changed or state.generation != generation
    wanted: set[str] = set()
    if not replica_changed:
        # Only time moved: the visits that came into the window since the last run's horizon
        # (none of them had a mark; no sync needs to happen for them to need one).
        since = start_after if state.horizon is None else max(state.horizon, start_after)
        if since < horizon:
            wanted |= marks.unplanned(session, since, horizon)
    if ctx.dry_run:
        # What the live run would plan, without its writes: under a new policy that is every
        # visit (the live run drops every mark first), else the unmarked and moved ones.
        if policy_changed:
            wanted |= marks.in_window(session, start_after, horizon)
        elif replica_changed:
            wanted |= marks.unplanned(session, start_after, horizon)
        return wanted | marks.due(session, ctx.now)
    if policy_changed:
        marks.drop_all(session)  # every upcoming visit is planned afresh under the new policy
    if replica_changed:
        went = marks.gone(session)
        wanted |= release_gone(session, went, now=ctx.now)
        marks.drop(session, went)
        wanted |= marks.unplanned(session, start_after, horizon)
    if state.swept_on != today:
        wanted |= sweep_voided(session, start_after)
    marks.drop_passed(session, start_after)
    marks.save_state(session, marks.PlanState(generation, fingerprint, today, horizon))
    return wanted | marks.due(session, ctx.now)


def _plan_each(
    ctx: RunContext, policy: Policy, upcoming: Sequence[Upcoming]
) -> dict[str, list[Planned]]:
    risky = scored_at_least(ctx.session, [u.appointment_id for u in upcoming], policy.high_risk_at)
    return {
        u.appointment_id: plan(
            replace(u.visit, high_risk=True) if u.appointment_id in risky else u.visit,
            policy,
            ctx.now,
            practice_zone=ctx.zone,
            patient_zone=zone_or(u.patient_zone, ctx.zone),
        )
        for u in upcoming
    }


def _send_due(
    ctx: RunContext, upcoming: Sequence[Upcoming], plans: Mapping[str, list[Planned]]
) -> dict[str, set[str]]:
    """Record the messages due now; the touchpoints of each visit that a message covers."""
    taken: dict[str, set[str]] = defaultdict(set)
    # Due now, or soon enough to ride along with a message due now to the same contact.
    due = [(u, p) for u in upcoming for p in due_now(plans[u.appointment_id], ctx.now + RIDE_ALONG)]
    if not due:
        return taken
    starts = {u.appointment_id: u.visit.start_at for u, _ in due}
    for appointment_id, touchpoint, start_at in held_claims(ctx.session, starts):
        if starts[appointment_id] == start_at:  # a claim for an old start is not this visit's
            taken[appointment_id].add(touchpoint)
    due = [(u, p) for u, p in due if p.touchpoint.name not in taken[u.appointment_id]]
    if not due:
        return taken
    people = contacts(ctx.session, ctx.cipher, {u.patient_id for u, _ in due})
    record_access(
        ctx.session,
        Actor.automation(NAME),
        "read",
        sorted(f"Patient/{pid}" for pid in people),
        at=ctx.now,
        detail={"why": "reminder contacts"},
        index_later=True,
    )
    routed = _route(ctx, due, people)
    ctx.count("no_contact", len(due) - len(routed))
    # A message goes when one of its visits is due; the rest wait for a later run.
    groups = [
        items
        for items in group_messages(routed).values()
        if any(item.planned.send_at <= ctx.now for item in items)
    ]
    if not groups:
        return taken
    won = _claim(ctx, groups)
    listed = [item.upcoming for items in won for item in items]
    practitioners = person_names(
        ctx.session, ctx.cipher, sorted({u.practitioner_id or "" for u in listed})
    )
    places = place_names(ctx.session, ctx.cipher, sorted({u.location_id or "" for u in listed}))
    templates = load_templates(ctx.settings)
    ctx.effects.send_all(
        [(_key(items), _message(ctx, items, templates, practitioners, places)) for items in won]
    )
    for items in won:
        for item in items:
            taken[item.upcoming.appointment_id].add(item.planned.touchpoint.name)
    ctx.count("reminder_sent", len(won))
    ctx.count("visit_reminded", sum(len(items) for items in won))
    return taken


def _route(
    ctx: RunContext, due: Sequence[tuple[Upcoming, Planned]], people: dict[str, Contact]
) -> list[Due]:
    digests: dict[tuple[MessageChannel, str], str] = {}
    for person in people.values():
        for channel, address in (
            (MessageChannel.SMS, person.mobile),
            (MessageChannel.EMAIL, person.email),
        ):
            if address is not None:
                digests[(channel, address)] = ctx.cipher.blind_index(_KIND_OF[channel], address)
    opted_out: set[str] = set()
    for channel in MessageChannel:
        mine = {d for (c, _), d in digests.items() if c is channel}
        opted_out |= opted_out_among(ctx.session, channel, mine)
    routed = []
    for item, planned in due:
        contact = people.get(item.patient_id)
        if contact is None:
            continue
        route = choose_route(planned.touchpoint.channel, contact, digests, opted_out)
        if route is not None:
            routed.append(Due(item, planned, contact, route))
    return routed


def _claim(ctx: RunContext, groups: Sequence[list[Due]]) -> list[list[Due]]:
    """Claim each message's visits; a message lists those it won (a racing run may have taken
    some), and one that won none is not sent. A dry run claims nothing and keeps them all."""
    if ctx.dry_run:
        return list(groups)
    keys = [_key(items) for items in groups]
    claims = [
        NewClaim(
            _claim_key(item),
            effect_key=key,
            channel=item.route.channel.value,
            contact_digest=item.route.digest,
            practitioner_id=item.upcoming.practitioner_id,
            asks_reply=item.planned.touchpoint.asks_reply,
        )
        for items, key in zip(groups, keys, strict=True)
        for item in items
    ]
    taken = take_claims(ctx.session, claims, now=ctx.now)
    won = []
    for items, key in zip(groups, keys, strict=True):
        mine = [item for item in items if _claim_key(item) in taken]
        if mine and len(mine) != len(items):
            rekey(ctx.session, key, _key(mine))
        if mine:
            won.append(mine)
    return won


def _claim_key(item: Due) -> ClaimKey:
    visit = item.upcoming.visit
    return (visit.appointment_id, item.planned.touchpoint.name, visit.start_at)


def _key(items: Sequence[Due]) -> str:
    return reminder_key(
        [f"Appointment/{i.upcoming.visit.appointment_id}" for i in items],
        items[0].planned.touchpoint.name,
        items[0].upcoming.visit.start_at,
    )


def _message(
    ctx: RunContext,
    items: list[Due],
    templates: Templates,
    practitioners: dict[str, str],
    places: dict[str, str],
) -> OutgoingMessage:
    """The reminder listing these visits, rendered for the patient."""
    first = items[0]
    touchpoint = first.planned.touchpoint
    route = first.route
    zone = zone_or(first.upcoming.patient_zone, ctx.zone)
    patients = {item.contact.patient_id for item in items}
    visit_url = unsubscribe_url = None
    if route.channel is MessageChannel.EMAIL:
        ids = [item.upcoming.visit.appointment_id for item in items]
        visit_url = visit_link(
            ctx.settings,
            ctx.cipher.ring,
            appointment_ids=ids,
            contact_digest=route.digest,
            now=ctx.now,
        )
        unsubscribe_url = unsubscribe_link(
            ctx.settings, ctx.cipher.ring, contact_digest=route.digest, now=ctx.now
        )
    view = ReminderContext(
        language=first.upcoming.language or "en",
        patient_first_name=first.contact.first_name if len(patients) == 1 else None,
        practice_name=ctx.settings.practice_name,
        practice_phone=ctx.settings.practice_phone,
        visits=[
            VisitLine(
                start_local=item.upcoming.visit.start_at.astimezone(zone),
                practitioner=practitioners.get(item.upcoming.practitioner_id or ""),
                location=places.get(item.upcoming.location_id or ""),
                patient_first_name=item.contact.first_name if len(patients) > 1 else None,
            )
            for item in items
        ],
        asks_reply=touchpoint.asks_reply,
        visit_url=visit_url,
        unsubscribe_url=unsubscribe_url,
    )
    rendered = render_reminder(templates, touchpoint, view)
    return OutgoingMessage(
        channel=route.channel,
        to=route.address,
        body=rendered.text,
        subject=rendered.subject,
        for_ref=f"Patient/{first.contact.patient_id}",
        focus=f"Appointment/{first.upcoming.visit.appointment_id}",
        html=rendered.html,
        unsubscribe_url=unsubscribe_url,
        zone=str(zone),
        not_after=first.upcoming.visit.start_at - MIN_NOTICE,
        valid_while=tuple(
            ValidWhile(f"Appointment/{i.upcoming.visit.appointment_id}", i.upcoming.visit.start_at)
            for i in items
        ),
    )


AUTOMATION = Automation(
    name=NAME,
    summary="Remind patients of their visits by SMS and e-mail; they confirm, cancel or ask to "
    "reschedule in their reply",
    trigger=Schedule("*/5 * * * *"),
    run=run,
    owner="front-desk",
    units=(
        # A reminder call the front desk no longer dials: about a minute to dial and leave a
        # message. The conversation a patient's confirmation spares (3 minutes) is counted by
        # reminder-replies when it arrives, so a reminder and its answer are not counted twice.
        Unit("reminder_sent", minutes_saved=1.0),
        Unit("visit_reminded", minutes_saved=0.0),
        Unit("no_contact", minutes_saved=0.0),
    ),
)
