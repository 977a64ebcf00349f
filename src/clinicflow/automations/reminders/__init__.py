"""appointment-reminders: every few minutes, send the reminders that are due, each exactly once.

A run plans every upcoming visit's touchpoints (`policy.plan`), keeps those due now that no
message has claimed yet (`claims`), routes each to the patient's channel (`compose`), folds the
visits of one contact at one touchpoint into one message, and records each message as a
`message.send` effect keyed `reminder:{appointments}:{touchpoint}@{start}`, with its claims, in
the run's transaction. The channel checks the message again when it sends it (pause, opt-out,
quiet hours, the visit moved or was cancelled), so nothing planned goes out stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update

from clinicflow.automations.reminders.claims import held_claims, take_claim
from clinicflow.automations.reminders.compose import Due, choose_route, group_messages
from clinicflow.automations.reminders.config import load_policy
from clinicflow.automations.reminders.policy import MIN_NOTICE, Planned, due_now, plan
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
    upcoming_visits,
)
from clinicflow.channels.consent import opted_out_among
from clinicflow.channels.link_secret import unsubscribe_link, visit_link
from clinicflow.engine import Automation, RunContext, Schedule, Unit, reminder_key
from clinicflow.engine.payloads import MessageChannel, OutgoingMessage, ValidWhile
from clinicflow.security.audit import Actor, record_access
from clinicflow.store.messaging import ReminderClaim

NAME = "appointment-reminders"
# Closure days move a send earlier than its lead time: look this much further ahead for them.
CLOSURE_SLACK = timedelta(days=7)
# A visit whose touchpoint falls due within this long joins a message due now to the same
# contact at the same touchpoint (two visits the same day: one text, not two an hour apart).
RIDE_ALONG = timedelta(hours=12)
_KIND_OF = {MessageChannel.SMS: "phone", MessageChannel.EMAIL: "email"}


def _zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else fallback
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def run(ctx: RunContext) -> None:
    """Record every reminder due now that no earlier run recorded."""
    policy = load_policy(ctx.settings)
    leads = [t.lead for t in policy.default]
    leads += [t.lead for ts in policy.by_specialty.values() for t in ts]
    leads += [t.lead for ts in policy.by_appointment_type.values() for t in ts]
    horizon = ctx.now + max(leads, default=timedelta(0)) + CLOSURE_SLACK
    upcoming = upcoming_visits(ctx.session, ctx.now + MIN_NOTICE, horizon)
    # Due now, or soon enough to ride along with a message due now to the same contact.
    due = [
        (item, planned)
        for item in upcoming
        for planned in due_now(
            plan(
                item.visit,
                policy,
                ctx.now,
                practice_zone=ctx.zone,
                patient_zone=_zone(item.patient_zone, ctx.zone),
            ),
            ctx.now + RIDE_ALONG,
        )
    ]
    if not due:
        return
    held = held_claims(ctx.session, {item.visit.appointment_id for item, _ in due})
    due = [
        (item, planned)
        for item, planned in due
        if (item.visit.appointment_id, planned.touchpoint.name, item.visit.start_at) not in held
    ]
    if not due:
        return
    people = contacts(ctx.session, ctx.cipher, {item.patient_id for item, _ in due})
    record_access(
        ctx.session,
        Actor.automation(NAME),
        "read",
        sorted(f"Patient/{pid}" for pid in people),
        at=ctx.now,
        detail={"why": "reminder contacts"},
    )
    routed = _route(ctx, due, people)
    ctx.count("no_contact", len(due) - len(routed))
    practitioners = person_names(
        ctx.session, ctx.cipher, sorted({d.upcoming.practitioner_id or "" for d in routed})
    )
    places = place_names(
        ctx.session, ctx.cipher, sorted({d.upcoming.location_id or "" for d in routed})
    )
    templates = load_templates(ctx.settings)
    for items in group_messages(routed).values():
        if all(item.planned.send_at > ctx.now for item in items):
            continue  # nothing in it is due yet: a later run sends them together
        won = _claim(ctx, items)
        if won:
            _record_message(ctx, won, templates, practitioners, places)


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


def _claim(ctx: RunContext, items: list[Due]) -> list[Due]:
    """Claim each visit's touchpoint for this message; those another run took are left out."""
    touchpoint = items[0].planned.touchpoint
    key = _key(items)
    won = [
        item
        for item in items
        if take_claim(
            ctx.session,
            (item.upcoming.visit.appointment_id, touchpoint.name, item.upcoming.visit.start_at),
            effect_key=key,
            channel=item.route.channel.value,
            contact_digest=item.route.digest,
            practitioner_id=item.upcoming.practitioner_id,
            asks_reply=touchpoint.asks_reply,
            now=ctx.now,
        )
    ]
    if won and len(won) != len(items):  # a racing run took some: this message lists the rest
        ctx.session.execute(
            update(ReminderClaim)
            .where(ReminderClaim.effect_key == key)
            .values(effect_key=_key(won))
        )
    return won


def _key(items: Sequence[Due]) -> str:
    return reminder_key(
        [f"Appointment/{i.upcoming.visit.appointment_id}" for i in items],
        items[0].planned.touchpoint.name,
        items[0].upcoming.visit.start_at,
    )


def _record_message(
    ctx: RunContext,
    items: list[Due],
    templates: Templates,
    practitioners: dict[str, str],
    places: dict[str, str],
) -> None:
    first = items[0]
    touchpoint = first.planned.touchpoint
    route = first.route
    zone = _zone(first.upcoming.patient_zone, ctx.zone)
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
    ctx.effects.send(
        _key(items),
        OutgoingMessage(
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
                ValidWhile(
                    f"Appointment/{i.upcoming.visit.appointment_id}", i.upcoming.visit.start_at
                )
                for i in items
            ),
        ),
    )
    ctx.count("reminder_sent")
    ctx.count("visit_reminded", len(items))


AUTOMATION = Automation(
    name=NAME,
    summary="Remind patients of their visits by SMS and e-mail; they confirm, cancel or ask to "
    "reschedule in their reply",
    trigger=Schedule("*/5 * * * *"),
    run=run,
    owner="front-desk",
    units=(
        Unit("reminder_sent", minutes_saved=0.0),
        # The saving is counted when a patient confirms (reminder-replies), not per reminder.
        Unit("visit_reminded", minutes_saved=0.0),
        Unit("no_contact", minutes_saved=0.0),
    ),
)
