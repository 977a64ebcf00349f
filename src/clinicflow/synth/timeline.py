"""Days around the anchor in the practice's zone, and instants as integers and FHIR text.

Generation counts time in whole seconds since the epoch (UTC) and in local minutes of a day, so
hundreds of thousands of appointments stay cheap; text is made only when a resource is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# "Now" for the generated data: the anchor day at 06:00 local, before the clinics open, so every
# appointment of the anchor day is still ahead and everything written so far is in the past.
AS_OF_MINUTE = 6 * 60
DAY_S = 86_400
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One calendar day in the practice's zone."""

    offset: int
    on: date
    iso: str
    offset_text: str
    utc_offset_s: int
    naive_midnight_s: int

    def instant_s(self, minute: int) -> int:
        """Seconds since the epoch of `minute` (local minutes after midnight) on this day."""
        return self.naive_midnight_s + minute * 60 - self.utc_offset_s

    def local_text(self, minute: int) -> str:
        """A FHIR instant at `minute` on this day, written with the local UTC offset."""
        return f"{self.iso}T{minute // 60:02d}:{minute % 60:02d}:00{self.offset_text}"


def local_day(anchor_on: date, offset: int, zone: ZoneInfo) -> LocalDay:
    """The day `offset` days after the anchor, with the UTC offset in force during clinic hours.

    The offset is taken at noon: US DST changes happen at 02:00, so noon's offset holds for every
    time from 06:00 to 20:00 that the generator uses, even on the days the clocks change.
    """
    on = anchor_on + timedelta(days=offset)
    utc_offset = datetime.combine(on, time(12), tzinfo=zone).utcoffset() or timedelta(0)
    seconds = int(utc_offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    naive = datetime.combine(on, time(0), tzinfo=UTC)
    return LocalDay(
        offset=offset,
        on=on,
        iso=on.isoformat(),
        offset_text=f"{sign}{hours:02d}:{minutes:02d}",
        utc_offset_s=seconds,
        naive_midnight_s=int(naive.timestamp()),
    )


def local_days(anchor_on: date, zone: ZoneInfo, first: int, last: int) -> dict[int, LocalDay]:
    """Every day from `first` to `last` (offsets from the anchor, both included)."""
    return {offset: local_day(anchor_on, offset, zone) for offset in range(first, last + 1)}


@lru_cache(maxsize=4096)
def _utc_date(epoch_day: int) -> str:
    return (_EPOCH + timedelta(days=epoch_day)).isoformat()


def utc_text(instant_s: int) -> str:
    """A FHIR instant in UTC (`2026-11-23T11:00:00Z`)."""
    # Formatting by hand with the date cached is ~10x faster than strftime, which matters
    # for the few hundred thousand timestamps of a large practice.
    epoch_day, second = divmod(instant_s, DAY_S)
    hours, rest = divmod(second, 3600)
    return f"{_utc_date(epoch_day)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def is_clinic_day(on: date) -> bool:
    """The practice sees patients Monday to Friday."""
    return on.weekday() < 5
