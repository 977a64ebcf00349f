"""The only place clinicflow reads the time: everything else is handed a Clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    """Tells the current instant as an aware UTC datetime."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to, for tests and for the demo's time travel."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, delta: timedelta) -> None:
        """Move time forward by `delta`."""
        self._now += delta
        self._mono += delta.total_seconds()

    def set(self, instant: datetime) -> None:
        """Jump to `instant` (which must not be earlier than now)."""
        instant = instant.astimezone(UTC)
        if instant < self._now:
            raise ValueError("a FakeClock never goes backwards")
        self._mono += (instant - self._now).total_seconds()
        self._now = instant


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a naive one is refused because its zone would be a guess."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; write it like 2026-11-23T09:00:00-05:00")
    return value.astimezone(UTC)


def local_text(instant: datetime, zone: str) -> str:
    """An instant as the practice reads it, in its own zone: 'Mon 23 Nov 09:00'."""
    return instant.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")


def zone_or(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The IANA zone `name` (a patient's, from the replica), or `fallback` when it is missing or
    not a zone this machine knows."""
    try:
        return ZoneInfo(name) if name else fallback
    except (ZoneInfoNotFoundError, ValueError):
        return fallback
