"""Cron schedules evaluated in the practice's time zone, DST included (pure: no clock, no I/O).

huey's crontab knows no time zone, so the engine decides which instants are due itself. We walk the
UTC minutes of a window and read each one on the practice's wall clock:

- Spring forward (e.g. 02:00 → 03:00): wall times in the gap never happen. A schedule that names its
  hours (`30 2 * * *`) fires once at the first minute after the gap; one with `*` hours has nothing
  to make up, since no real minute was skipped.
- Fall back (e.g. 02:00 → 01:00): wall times 01:00-01:59 happen twice. A schedule that names its
  hours fires on the first pass only; one with `*` hours fires on both, i.e. every real interval.

This is the rule Vixie cron follows, so a "daily at 01:30" job runs once a day, every day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

MINUTE = timedelta(minutes=1)
_SPECIALS = ("l", "#", "w")


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed five-field cron expression; `None` in a field means "any"."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 0 = Sunday, as in cron

    @property
    def names_hours(self) -> bool:
        """True when the schedule fires at chosen hours rather than every hour."""
        return self.hours is not None

    def matches(self, wall: datetime) -> bool:
        """Whether the schedule fires at this wall-clock minute (naive, in the practice's zone)."""
        if wall.minute not in self.minutes:
            return False
        if self.hours is not None and wall.hour not in self.hours:
            return False
        if self.months is not None and wall.month not in self.months:
            return False
        day_ok = self.days is None or wall.day in self.days
        weekday_ok = self.weekdays is None or wall.isoweekday() % 7 in self.weekdays
        if self.days is not None and self.weekdays is not None:
            return day_ok or weekday_ok  # cron's rule: both restricted means either may match
        return day_ok and weekday_ok


def _field(values: list[int | str]) -> frozenset[int] | None:
    if values == ["*"]:
        return None
    if any(isinstance(v, str) for v in values):
        raise ValueError("special characters (L, W, #) are not supported")
    return frozenset(int(v) for v in values)


def parse_cron(expression: str) -> CronSpec:
    """Parse a five-field expression (or @hourly, @daily...); ValueError says what is wrong."""
    if len(expression.split()) not in (1, 5):
        raise ValueError(f"cron expression {expression!r} must have five fields (m h dom mon dow)")
    if any(ch in expression.lower() for ch in _SPECIALS):
        raise ValueError(f"cron expression {expression!r}: L, W and # are not supported")
    try:
        expanded = croniter(expression).expanded
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"cron expression {expression!r} is not valid: {exc}") from exc
    minutes = _field(expanded[0])
    return CronSpec(
        expression=expression,
        minutes=frozenset(range(60)) if minutes is None else minutes,
        hours=_field(expanded[1]),
        days=_field(expanded[2]),
        months=_field(expanded[3]),
        weekdays=_field(expanded[4]),
    )


def _wall(instant: datetime, zone: ZoneInfo) -> tuple[datetime, int]:
    local = instant.astimezone(zone)
    return local.replace(tzinfo=None), local.fold


def _fires_at(spec: CronSpec, wall: datetime, fold: int, previous: datetime) -> bool:
    """Whether `spec` fires at the minute read as `wall` (the minute before read as `previous`)."""
    if wall - previous > MINUTE and spec.names_hours:
        skipped = previous + MINUTE
        while skipped < wall:  # wall minutes lost to a spring-forward gap
            if spec.matches(skipped):
                return True
            skipped += MINUTE
    if not spec.matches(wall):
        return False
    # zoneinfo sets fold=1 only on the second pass through a repeated (fall-back) wall time.
    return not (fold == 1 and spec.names_hours)


def due_instants(
    spec: CronSpec, zone: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    """The UTC instants in (after, until] at which `spec` fires on `zone`'s wall clock."""
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("due_instants needs aware datetimes")
    minute = after.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    end = until.astimezone(UTC)
    previous, _ = _wall(minute - MINUTE, zone)
    due: list[datetime] = []
    while minute <= end:
        wall, fold = _wall(minute, zone)
        if _fires_at(spec, wall, fold, previous):
            due.append(minute)
        previous = wall
        minute += MINUTE
    return due
