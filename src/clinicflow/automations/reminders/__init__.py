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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from clinicflow.automations.reminders import marks
from clinicflow.automations.reminders.claims import (
    ClaimKey,
    NewClaim,
    Releases,
    drop_claims,
    held_claims,
    let_go,
    rekey,
    releases,
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
    """Record every reminder due now that no earlier run recorded.

    Everything is read and rendered in the run's snapshot (`ctx.reads`) first, then written in
    its transaction at the end: on SQLite the write lock is held only for the writes, so sends,
    replies and the web app go on while a run plans. What the writes decide on holds anyway: a
    visit's claim is taken only if free, so a message listing a visit another run took meanwhile
    lists it no more.
    """
    policy = load_policy(ctx.settings)
    start_after = ctx.now + MIN_NOTICE
    horizon = ctx.now + _longest_lead(policy) + CLOSURE_SLACK
    wanted, housekeeping = _visits_to_plan(ctx, policy, start_after, horizon)
    upcoming = upcoming_visits(ctx.reads, start_after, horizon, ids=wanted) if wanted else []
    plans = _plan_each(ctx, policy, upcoming)
    # Other visits of the contacts a message is due to now may ride along in it.
    due_to = {
        u.patient_id for u in upcoming if any(p.send_at <= ctx.now for p in plans[u.appointment_id])
    }
    if due_to:
        riders = upcoming_visits(
            ctx.reads,
            start_after,
            horizon,
            patient_ids=sharing_contacts(ctx.reads, due_to),
            known=plans.keys(),
            due_by=ctx.now + RIDE_ALONG,
        )
        plans.update(_plan_each(ctx, policy, riders))
        upcoming += riders
    prepared = _prepare(ctx, upcoming, plans, releasing=housekeeping.releases.gone_keys)
    # The writes, from here on.
    if not ctx.dry_run:  # a rehearsal leaves the plan as it found it: the live runs send these
        housekeeping.apply(ctx.session, now=ctx.now)
    taken = _record(ctx, prepared)
    if ctx.dry_run:
        return
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


@dataclass(frozen=True, slots=True)
class _Housekeeping:
    """The changes to marks and claims a run decided on in its snapshot, made at its end."""

    drop_all: bool  # a new policy: every upcoming visit is planned afresh
    gone: dict[str, datetime]  # marked visits gone from the plan (cancelled, moved, removed)
    releases: Releases
    start_after: datetime  # visits starting before this are past any reminder
    state: marks.PlanState

    def apply(self, session: Session, *, now: datetime) -> None:
        """Make the changes in the run's transaction, its first writes."""
        marks.lock_plan(session)
        if self.drop_all:
            marks.drop_all(session)
        let_go(session, self.releases, now=now)
        marks.drop(session, self.gone)
        marks.drop_passed(session, self.start_after)
        marks.save_state(session, self.state)


def _visits_to_plan(
    ctx: RunContext, policy: Policy, start_after: datetime, horizon: datetime
) -> tuple[set[str], _Housekeeping]:
    """The visits this run must plan (see `marks`), and what it changes on the way, read from
    its snapshot; a dry run plans the same visits and changes nothing."""
    reads = ctx.reads
    state = marks.load_state(reads)
    fingerprint = policy_fingerprint(policy)
    generation = generation_of(reads, marks.WATCHED_TYPES)
    today = ctx.now.astimezone(ctx.zone).date()
    policy_changed = state.policy != fingerprint
    replica_changed = policy_changed or state.generation != generation
    wanted: set[str] = set()
    gone: dict[str, datetime] = {}
    if policy_changed:
        wanted |= marks.in_window(reads, start_after, horizon)  # every mark is dropped
    elif replica_changed:
        gone = marks.gone(reads)
        wanted |= marks.unplanned(reads, start_after, horizon)
    else:
        # Only time moved: the visits that came into the window since the last run's horizon
        # (none of them had a mark; no sync needs to happen for them to need one).
        since = start_after if state.horizon is None else max(state.horizon, start_after)
        if since < horizon:
            wanted |= marks.unplanned(reads, since, horizon)
    found = releases(reads, gone, sweep_after=start_after if state.swept_on != today else None)
    wanted |= found.visits
    if not policy_changed:
        wanted |= marks.due(reads, ctx.now)  # a new policy's plan covers them all anyway
    housekeeping = _Housekeeping(
        drop_all=policy_changed,
        gone=gone,
        releases=found,
        start_after=start_after,
        state=marks.PlanState(generation, fingerprint, today, horizon),
    )
    return wanted, housekeeping


def _plan_each(
    ctx: RunContext, policy: Policy, upcoming: Sequence[Upcoming]
) -> dict[str, list[Planned]]:
    risky = scored_at_least(ctx.reads, [u.appointment_id for u in upcoming], policy.high_risk_at)
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


@dataclass
class _Prepared:
    """The messages due now as a run's snapshot shows them, rendered, ready to claim and record."""

    taken: dict[str, set[str]]  # each visit's touchpoints some standing message covers
    voided_claims: list[int]  # claims on these visits whose message was voided: to release
    people: dict[str, Contact] = field(default_factory=dict)  # contacts read (a PHI read)
    unreachable: int | None = None  # due visits with no way to reach the patient, once looked
    groups: list[list[Due]] = field(default_factory=list)  # one message each
    rendered: list[OutgoingMessage] = field(default_factory=list)  # each group's message
    templates: Templates | None = None
    practitioners: dict[str, str] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)


def _prepare(
    ctx: RunContext,
    upcoming: Sequence[Upcoming],
    plans: Mapping[str, list[Planned]],
    *,
    releasing: Collection[str],
) -> _Prepared:
    """The messages due now, routed, folded per contact and rendered, from the snapshot."""
    reads = ctx.reads
    # Due now, or soon enough to ride along with a message due now to the same contact.
    due = [(u, p) for u in upcoming for p in due_now(plans[u.appointment_id], ctx.now + RIDE_ALONG)]
    if not due:
        return _Prepared(defaultdict(set), [])
    starts = {u.appointment_id: u.visit.start_at for u, _ in due}
    held = held_claims(reads, starts, releasing=releasing)
    prepared = _Prepared(defaultdict(set), held.voided_ids)
    for appointment_id, touchpoint, start_at in held.keys:
        if starts[appointment_id] == start_at:  # a claim for an old start is not this visit's
            prepared.taken[appointment_id].add(touchpoint)
    due = [(u, p) for u, p in due if p.touchpoint.name not in prepared.taken[u.appointment_id]]
    if not due:
        return prepared
    prepared.people = contacts(reads, ctx.cipher, {u.patient_id for u, _ in due})
    routed = _route(ctx, due, prepared.people)
    prepared.unreachable = len(due) - len(routed)
    # A message goes when one of its visits is due; the rest wait for a later run.
    prepared.groups = [
        items
        for items in group_messages(routed).values()
        if any(item.planned.send_at <= ctx.now for item in items)
    ]
    if not prepared.groups:
        return prepared
    listed = [item.upcoming for items in prepared.groups for item in items]
    prepared.practitioners = person_names(
        reads, ctx.cipher, sorted({u.practitioner_id or "" for u in listed})
    )
    prepared.places = place_names(reads, ctx.cipher, sorted({u.location_id or "" for u in listed}))
    prepared.templates = load_templates(ctx.settings)
    prepared.rendered = [_message(ctx, items, prepared) for items in prepared.groups]
    return prepared


def _record(ctx: RunContext, prepared: _Prepared) -> dict[str, set[str]]:
    """Claim and record the prepared messages in the run's transaction; the touchpoints of each
    visit that a message covers."""
    taken = prepared.taken
    if prepared.voided_claims and not ctx.dry_run:
        drop_claims(ctx.session, prepared.voided_claims)
    if prepared.people:
        record_access(
            ctx.session,
            Actor.automation(NAME),
            "read",
            sorted(f"Patient/{pid}" for pid in prepared.people),
            at=ctx.now,
            detail={"why": "reminder contacts"},
            index_later=True,
        )
    if prepared.unreachable is not None:
        ctx.count("no_contact", prepared.unreachable)
    if not prepared.groups:
        return taken
    won = _claim(ctx, prepared)
    ctx.effects.send_all([(key, message) for key, _, message in won])
    for _, items, _ in won:
        for item in items:
            taken[item.upcoming.appointment_id].add(item.planned.touchpoint.name)
    ctx.count("reminder_sent", len(won))
    ctx.count("visit_reminded", sum(len(items) for _, items, _ in won))
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
        opted_out |= opted_out_among(ctx.reads, channel, mine)
    routed = []
    for item, planned in due:
        contact = people.get(item.patient_id)
        if contact is None:
            continue
        route = choose_route(planned.touchpoint.channel, contact, digests, opted_out)
        if route is not None:
            routed.append(Due(item, planned, contact, route))
    return routed


def _claim(ctx: RunContext, prepared: _Prepared) -> list[tuple[str, list[Due], OutgoingMessage]]:
    """Claim each message's visits; each message to send with its key and the visits it lists.
    A message lists the visits it won: one that lost some to a racing run is written again for
    the rest, and one that won none is not sent. A dry run claims nothing and keeps them all."""
    keys = [_key(items) for items in prepared.groups]
    ready = list(zip(keys, prepared.groups, prepared.rendered, strict=True))
    if ctx.dry_run:
        return ready
    claims = [
        NewClaim(
            _claim_key(item),
            effect_key=key,
            channel=item.route.channel.value,
            contact_digest=item.route.digest,
            practitioner_id=item.upcoming.practitioner_id,
            asks_reply=item.planned.touchpoint.asks_reply,
        )
        for key, items, _ in ready
        for item in items
    ]
    taken = take_claims(ctx.session, claims, now=ctx.now)
    won = []
    for key, items, message in ready:
        mine = [item for item in items if _claim_key(item) in taken]
        if len(mine) == len(items):
            won.append((key, items, message))
        elif mine:
            rekey(ctx.session, key, _key(mine))
            won.append((_key(mine), mine, _message(ctx, mine, prepared)))
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


def _message(ctx: RunContext, items: list[Due], prepared: _Prepared) -> OutgoingMessage:
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
                practitioner=prepared.practitioners.get(item.upcoming.practitioner_id or ""),
                location=prepared.places.get(item.upcoming.location_id or ""),
                patient_first_name=item.contact.first_name if len(patients) > 1 else None,
            )
            for item in items
        ],
        asks_reply=touchpoint.asks_reply,
        visit_url=visit_url,
        unsubscribe_url=unsubscribe_url,
    )
    if prepared.templates is None:
        raise AssertionError("a message rendered before its templates were loaded")
    rendered = render_reminder(prepared.templates, touchpoint, view)
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
