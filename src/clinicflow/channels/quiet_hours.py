"""Quiet hours: no SMS before 8:00 or after 21:00 in the patient's own time zone (pure).

Checked when a reminder is planned and again when it is sent (the send may be late: a worker was
down, a retry waited), so a message is never sent at night because it was planned by day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The window in which SMS may go out, in the recipient's local time: [opens, closes)."""

    opens: time = time(8, 0)
    closes: time = time(21, 0)


def is_allowed(at: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    """Whether an SMS may go out at `at` to someone living in `zone`."""
    local = at.astimezone(zone).time()
    return quiet.opens <= local < quiet.closes


def next_allowed(at: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """`at` if an SMS may go out then, else the next moment the window opens (in UTC as given).

    Opening time is wall-clock time on the local date: on a DST change day 8:00 is still 8:00.
    """
    if is_allowed(at, quiet, zone):
        return at
    local = at.astimezone(zone)
    day = local.date() if local.time() < quiet.opens else local.date() + timedelta(days=1)
    opens = datetime.combine(day, quiet.opens, tzinfo=zone)
    return opens.astimezone(at.tzinfo)
