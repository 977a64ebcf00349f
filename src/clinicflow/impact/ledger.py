"""Measured savings per automation and week, from the run ledger (counts only, no PHI).

Each line is one automation's live, succeeded runs finishing in one practice-local week
(Monday to Sunday): the units they counted, the staff minutes those save (units x the minutes a
unit of that kind saves: the automation's estimate, or the practice's own figure from
`unit_minutes` with its note), the money (minutes x the loaded hourly cost of the role that did
the task before, by the automation's owner pool) and, where an automation fills the schedule,
the revenue of the visits it booked. Every line keeps the ids of the runs behind it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.engine import Registry
from clinicflow.engine.states import RunState
from clinicflow.impact.money import money_cents
from clinicflow.settings import Settings
from clinicflow.store.engine import AutomationRun
from clinicflow.store.waitlist import FreedSlotRecord

DEFAULT_ROLE = "front-desk"
BACKFILL = "waitlist-backfill"  # the automation booked slots' revenue is counted under


@dataclass(frozen=True, slots=True)
class UnitLine:
    """One kind of unit in a week: how many, the minutes each saves and where that came from."""

    unit: str
    count: int
    minutes_each: float
    source: str  # "automation estimate", or the practice's note

    @property
    def minutes(self) -> float:
        """count x minutes each."""
        return self.count * self.minutes_each


@dataclass
class WeekLine:
    """One automation's measured savings in one week, and the runs behind them."""

    automation: str
    week_of: date  # the Monday, practice-local
    role: str
    hourly_cost: float
    run_ids: list[int] = field(default_factory=list)
    units: list[UnitLine] = field(default_factory=list)
    revenue_cents: int = 0
    slots_booked: int = 0

    @property
    def minutes(self) -> float:
        """Staff minutes saved."""
        return sum(u.minutes for u in self.units)

    @property
    def hours(self) -> float:
        """Staff hours saved."""
        return self.minutes / 60

    @property
    def money_cents(self) -> int:
        """What those minutes of the role cost, in cents."""
        return money_cents(self.minutes, self.hourly_cost)


def week_of(instant: datetime, zone: ZoneInfo) -> date:
    """The Monday of the practice-local week `instant` falls in."""
    local = instant.astimezone(zone).date()
    return local - timedelta(days=local.weekday())


def _bounds(weeks: int, now: datetime, zone: ZoneInfo) -> tuple[date, datetime]:
    first = week_of(now, zone) - timedelta(weeks=weeks - 1)
    return first, datetime.combine(first, time(0, 0), tzinfo=zone)


def weekly_lines(
    session: Session,
    registry: Registry,
    settings: Settings,
    *,
    weeks: int,
    now: datetime,
    dry_run: bool = False,
    since: datetime | None = None,
) -> list[WeekLine]:
    """Measured savings of the last `weeks` weeks (this one included), by automation and week.

    `dry_run`: the rehearsals' units instead (what a trial measured; no revenue: nothing was
    booked); `since`: only runs finishing from then on.
    """
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    zone = ZoneInfo(settings.timezone)
    first, start = _bounds(weeks, now, zone)
    since = max(start, since) if since is not None else start
    runs = session.execute(
        select(
            AutomationRun.id,
            AutomationRun.automation,
            AutomationRun.finished_at,
            AutomationRun.units,
        )
        .where(
            AutomationRun.state == RunState.SUCCEEDED.value,
            AutomationRun.dry_run.is_(dry_run),
            AutomationRun.finished_at >= since,
            AutomationRun.finished_at <= now,
        )
        .order_by(AutomationRun.id)
    )
    counted: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ids: dict[tuple[str, date], list[int]] = defaultdict(list)
    for run_id, automation, finished_at, units in runs:
        if finished_at is None:
            continue  # the query asks for finished runs; a None here is not one
        key = (automation, week_of(finished_at, zone))
        ids[key].append(int(run_id))
        for unit, n in (units or {}).items():
            counted[key][unit] += int(n)
    lines = {key: _line(key, ids[key], counted[key], registry, settings) for key in ids}
    booked: list[tuple[datetime | None, int]] = []
    if not dry_run:
        booked = [
            (closed_at, value)
            for closed_at, value in session.execute(
                select(FreedSlotRecord.closed_at, FreedSlotRecord.value_cents).where(
                    FreedSlotRecord.state == "booked",
                    FreedSlotRecord.closed_at >= since,
                    FreedSlotRecord.closed_at <= now,
                )
            )
        ]
    for closed_at, value in booked:
        if closed_at is None:
            continue
        key = (BACKFILL, week_of(closed_at, zone))
        line = lines.get(key) or lines.setdefault(key, _line(key, [], {}, registry, settings))
        line.revenue_cents += int(value)
        line.slots_booked += 1
    return sorted(
        (line for line in lines.values() if line.week_of >= first),
        key=lambda line: (line.week_of, line.automation),
    )


def _line(
    key: tuple[str, date],
    run_ids: Sequence[int],
    units: dict[str, int],
    registry: Registry,
    settings: Settings,
) -> WeekLine:
    name, monday = key
    automation = registry.find(name)
    role = automation.owner if automation is not None else DEFAULT_ROLE
    costs = settings.role_hourly_cost
    line = WeekLine(
        automation=name,
        week_of=monday,
        role=role,
        hourly_cost=costs.get(role, costs.get(DEFAULT_ROLE, 0.0)),
        run_ids=list(run_ids),
    )
    for unit, n in sorted(units.items()):
        override = f"{name}.{unit}"
        if override in settings.unit_minutes:
            each = settings.unit_minutes[override]
            source = settings.unit_minutes_notes.get(override, "the practice's own figure")
        else:
            try:
                each = automation.unit(unit).minutes_saved if automation is not None else 0.0
            except KeyError:
                each = 0.0  # a unit the automation no longer declares: counted, saves nothing
            source = "automation estimate"
        line.units.append(UnitLine(unit, n, each, source))
    return line


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over lines."""

    hours: float
    money_cents: int
    revenue_cents: int
    runs: int


def totals(lines: Sequence[WeekLine]) -> Totals:
    """Hours, money, revenue and runs over `lines`."""
    return Totals(
        hours=sum(line.hours for line in lines),
        money_cents=sum(line.money_cents for line in lines),
        revenue_cents=sum(line.revenue_cents for line in lines),
        runs=sum(len(line.run_ids) for line in lines),
    )
