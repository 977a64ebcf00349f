"""When to remind a patient of a visit, and how (pure).

A policy is a list of touchpoints, each a channel and a lead time before the visit (defaults: an
e-mail 7 days before, an SMS 2 days before asking for a reply, an SMS 2 hours before for visits
booked the same day). A practice may set other touchpoints per specialty and appointment type.

`plan` turns one appointment into the touchpoints to send and when:
- a touchpoint whose time is still ahead is planned at its time;
- those whose time has passed (the visit was booked late, or the worker was down) are skipped
  while a later one is still to come ("the next sensible one, not a burst"); when none is, the
  one closest to the visit is sent at once, unless the visit is too near;
- a send time on a day the practice is closed moves to the last open day before it (a patient
  replying "R" on a holiday would wait for nobody); one that would then be past is sent now if
  today is open, else dropped;
- SMS respect quiet hours in the patient's own time zone (`quiet_hours`): held until the window
  opens, dropped if that is too close to the visit to help;
- a visit the no-show model scores at or above `high_risk_at` also gets the `high_risk`
  touchpoints (default: an SMS the day before asking for a reply), planned like the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from clinicflow.channels.quiet_hours import QuietHours, next_allowed
from clinicflow.engine.payloads import MessageChannel

# No reminder this close to the visit: the patient is on the way, or it is too late to help.
MIN_NOTICE = timedelta(hours=1)
# A touchpoint that fell due this recently is on time, not missed: the automation runs every few
# minutes, so "due" is always a little in the past when it looks.
ON_TIME = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Touchpoint:
    """One reminder of a visit: a name (part of the idempotency key), a channel, a lead time."""

    name: str
    channel: MessageChannel
    lead: timedelta
    asks_reply: bool = False  # "Reply C to confirm, X to cancel, R to reschedule"
    same_day_only: bool = False  # only for visits booked on the day they happen


DEFAULT_TOUCHPOINTS: tuple[Touchpoint, ...] = (
    Touchpoint("email-7d", MessageChannel.EMAIL, timedelta(days=7)),
    Touchpoint("sms-2d", MessageChannel.SMS, timedelta(days=2), asks_reply=True),
    Touchpoint("sms-2h", MessageChannel.SMS, timedelta(hours=2), same_day_only=True),
)


# The extra reminder for a visit likely to be missed: the day before, asking for an answer, so
# an unconfirmed slot is known a day ahead and can go to the waitlist.
HIGH_RISK_TOUCHPOINTS: tuple[Touchpoint, ...] = (
    Touchpoint("sms-1d-risk", MessageChannel.SMS, timedelta(days=1), asks_reply=True),
)
# The no-show probability from which a visit gets them: the synthetic practice's top ~20%.
HIGH_RISK_AT = 0.30


@dataclass(frozen=True, slots=True)
class Policy:
    """Touchpoints by default, by specialty and by appointment type (the most specific wins)."""

    default: tuple[Touchpoint, ...] = DEFAULT_TOUCHPOINTS
    by_specialty: Mapping[str, tuple[Touchpoint, ...]] = field(default_factory=dict)
    by_appointment_type: Mapping[str, tuple[Touchpoint, ...]] = field(default_factory=dict)
    closed_on: Collection[date] = frozenset()  # practice closure days (practice-local dates)
    quiet: QuietHours = field(default_factory=QuietHours)
    high_risk: tuple[Touchpoint, ...] = HIGH_RISK_TOUCHPOINTS
    high_risk_at: float = HIGH_RISK_AT

    def touchpoints_for(
        self, specialty: str | None, appointment_type: str | None
    ) -> tuple[Touchpoint, ...]:
        """The touchpoints for a visit of this type with this specialty."""
        if appointment_type and appointment_type in self.by_appointment_type:
            return self.by_appointment_type[appointment_type]
        if specialty and specialty in self.by_specialty:
            return self.by_specialty[specialty]
        return self.default


@dataclass(frozen=True, slots=True)
class Visit:
    """What planning needs of an appointment: no names, no reason for the visit."""

    appointment_id: str
    start_at: datetime
    booked_at: datetime | None = None
    specialty: str | None = None
    appointment_type: str | None = None
    high_risk: bool = False  # scored at or above the policy's `high_risk_at` by noshow-risk


@dataclass(frozen=True, slots=True)
class Planned:
    """A touchpoint to send for a visit, and when."""

    appointment_id: str
    touchpoint: Touchpoint
    send_at: datetime
    catch_up: bool = False  # its own time had passed: sent at once instead


def plan(
    visit: Visit,
    policy: Policy,
    now: datetime,
    *,
    practice_zone: ZoneInfo,
    patient_zone: ZoneInfo | None = None,
) -> list[Planned]:
    """The touchpoints to send for `visit`, each at most once, in send order."""
    if visit.start_at <= now + MIN_NOTICE:
        return []
    patient_zone = patient_zone or practice_zone
    touchpoints = _applicable(visit, policy, practice_zone)
    ahead: list[Planned] = []
    missed: list[Touchpoint] = []
    for touchpoint in touchpoints:
        due = _open_day_at_or_before(visit.start_at - touchpoint.lead, policy, practice_zone)
        if due is not None and due >= now - ON_TIME:
            ahead.append(Planned(visit.appointment_id, touchpoint, due))
        else:
            missed.append(touchpoint)
    planned = list(ahead)
    if missed and not ahead and is_open(now, policy, practice_zone):
        closest = min(missed, key=lambda t: t.lead)
        planned.append(Planned(visit.appointment_id, closest, now, catch_up=True))
    held = [_respect_quiet_hours(p, visit, policy.quiet, patient_zone) for p in planned]
    kept = [
        _past_closures(p, visit, policy, practice_zone, patient_zone) for p in held if p is not None
    ]
    return sorted((p for p in kept if p is not None), key=lambda p: p.send_at)


def due_now(planned: Iterable[Planned], now: datetime) -> list[Planned]:
    """What to send at `now` (the automation runs every few minutes and sends what is due)."""
    return [p for p in planned if p.send_at <= now]


def next_look(
    visit: Visit,
    planned: Iterable[Planned],
    taken: Collection[str],
    policy: Policy,
    now: datetime,
    *,
    practice_zone: ZoneInfo,
) -> datetime | None:
    """When a planner must look at this visit again, having planned it at `now` (None: never,
    unless the visit changes).

    `planned` is `plan(visit, ...)` at `now`; `taken` the names of its touchpoints that a message
    already covers. The plan of an unchanged visit only changes when one of its touchpoints falls
    due, so the next look is the earliest touchpoint still to send. One exception: on a closure
    day a visit whose touchpoints have all passed gets nothing today but a catch-up on the next
    open day, so it is looked at again tomorrow.
    """
    ahead = [p.send_at for p in planned if p.send_at > now and p.touchpoint.name not in taken]
    if ahead:
        return min(ahead)
    if not is_open(now, policy, practice_zone) and visit.start_at > now + MIN_NOTICE:
        tomorrow = now.astimezone(practice_zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, datetime.min.time(), tzinfo=practice_zone)
    return None


def is_open(at: datetime, policy: Policy, zone: ZoneInfo) -> bool:
    """Whether the practice is open on the local day of `at`."""
    return at.astimezone(zone).date() not in policy.closed_on


def policy_fingerprint(policy: Policy) -> str:
    """A short digest of everything in the policy that decides send times: a planner that kept
    a plan made under another policy starts again."""
    parts = [
        repr(policy.default),
        repr(sorted(policy.by_specialty.items())),
        repr(sorted(policy.by_appointment_type.items())),
        repr(sorted(policy.closed_on)),
        repr(policy.quiet),
        repr((policy.high_risk, policy.high_risk_at)),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _applicable(visit: Visit, policy: Policy, zone: ZoneInfo) -> Sequence[Touchpoint]:
    touchpoints = policy.touchpoints_for(visit.specialty, visit.appointment_type)
    if visit.high_risk:
        names = {t.name for t in touchpoints}
        touchpoints = (*touchpoints, *(t for t in policy.high_risk if t.name not in names))
    booked_same_day = (
        visit.booked_at is not None
        and visit.booked_at.astimezone(zone).date() == visit.start_at.astimezone(zone).date()
    )
    return [t for t in touchpoints if booked_same_day or not t.same_day_only]


def _past_closures(
    planned: Planned,
    visit: Visit,
    policy: Policy,
    practice_zone: ZoneInfo,
    patient_zone: ZoneInfo,
) -> Planned | None:
    """A text held past quiet hours into a closure day (due after 21:00, held to 8:00 on a
    holiday) goes when the window opens on the next open day, if that still helps. Dropping it
    instead would leave the visit with no reminder, while planning it again a day later would
    send a catch-up: the plan must not depend on when it is made."""
    if is_open(planned.send_at, policy, practice_zone):
        return planned
    local = planned.send_at.astimezone(practice_zone)
    for ahead in range(1, 32):
        day = local.date() + timedelta(days=ahead)
        if day in policy.closed_on:
            continue
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=practice_zone)
        at = next_allowed(midnight, policy.quiet, patient_zone)
        if at > visit.start_at - MIN_NOTICE or not is_open(at, policy, practice_zone):
            return None
        return Planned(planned.appointment_id, planned.touchpoint, at, planned.catch_up)
    return None


def _open_day_at_or_before(at: datetime, policy: Policy, zone: ZoneInfo) -> datetime | None:
    """`at`, or the same local time on the last open day before it (None: no open day found)."""
    local = at.astimezone(zone)
    for back in range(0, 31):
        day = local.date() - timedelta(days=back)
        if day not in policy.closed_on:
            moved = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
            return moved if back else at
    return None


def _respect_quiet_hours(
    planned: Planned, visit: Visit, quiet: QuietHours, zone: ZoneInfo
) -> Planned | None:
    if planned.touchpoint.channel is not MessageChannel.SMS:
        return planned
    allowed = next_allowed(planned.send_at, quiet, zone)
    if allowed == planned.send_at:
        return planned
    if allowed > visit.start_at - MIN_NOTICE:
        return None  # the window opens too close to the visit for a reminder to help
    return Planned(planned.appointment_id, planned.touchpoint, allowed, planned.catch_up)
