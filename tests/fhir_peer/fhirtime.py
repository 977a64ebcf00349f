"""FHIR date and time values as integer microseconds since the epoch (UTC).

The peer keeps every instant as an int: it is small (the index of ~290,000 resources stays
compact), it orders exactly, and FHIR date search is range arithmetic on it. A search value
such as `2026-11-23` or `2026-11-23T10:00Z` stands for a range (FHIR R4 search §3.1.1.5.7,
"the value has an implicit range"): `parse_range` gives [low, high) in microseconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS = 1_000_000

# year[-month[-day[Thh:mm[:ss[.fraction]][zone]]]]; the zone is required once a time is given.
_VALUE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<hh>\d{2}):(?P<mi>\d{2})(?::(?P<ss>\d{2})(?:\.(?P<frac>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class TimeValueError(ValueError):
    """A date or time value that is not valid FHIR; the message says what is wrong."""


def utc_now() -> datetime:
    """The real time: the peer is a separate system with its own clock, like a real EHR."""
    return datetime.now(UTC)  # noqa: TID251 - the peer is not clinicflow code and has no Clock


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC (tests may pass one)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime for microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=micros)


def format_instant(micros: int) -> str:
    """A FHIR instant in UTC with milliseconds, e.g. `2026-11-23T10:00:00.000Z`.

    Milliseconds (always three digits) like common servers; more digits only if the value
    really has sub-millisecond precision, so no stored instant is ever rounded.
    """
    moment = from_micros(micros)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if micros % 1000:
        return f"{text}.{moment.microsecond:06d}Z"
    return f"{text}.{moment.microsecond // 1000:03d}Z"


def _add_months(year: int, month: int, months: int) -> datetime:
    index = year * 12 + (month - 1) + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _zone(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    offset = timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    return timezone(sign * offset)


def parse_range(value: str, name: str) -> tuple[int, int]:
    """The [low, high) microsecond range a FHIR date/dateTime/instant value stands for.

    A value without a time is a UTC calendar range (year, month or day). A value with a time
    must carry a zone (FHIR R4 datatypes: "If hours and minutes are specified, a time zone
    SHALL be populated"); its range is one unit of its precision (minute, second, fraction).
    """
    if " " in value:
        # A '+' in a query string that was not percent-encoded arrives as a space.
        raise TimeValueError(
            f"{name}: {value!r} contains a space; a '+' zone offset must be sent as %2B"
        )
    match = _VALUE.match(value)
    if match is None:
        raise TimeValueError(f"{name}: {value!r} is not a FHIR date, dateTime or instant")
    parts = match.groupdict()
    try:
        year = int(parts["y"])
        if parts["m"] is None:
            low = datetime(year, 1, 1, tzinfo=UTC)
            return to_micros(low), to_micros(_add_months(year, 1, 12))
        month = int(parts["m"])
        if parts["d"] is None:
            low = datetime(year, month, 1, tzinfo=UTC)
            return to_micros(low), to_micros(_add_months(year, month, 1))
        day = int(parts["d"])
        if parts["hh"] is None:
            low = datetime(year, month, day, tzinfo=UTC)
            return to_micros(low), to_micros(low + timedelta(days=1))
        if parts["tz"] is None:
            raise TimeValueError(f"{name}: {value!r} has a time but no time zone")
        zone = _zone(parts["tz"])
        frac = parts["frac"] or ""
        digits = frac[:6]
        micros = int(digits.ljust(6, "0")) if digits else 0
        moment = datetime(
            year,
            month,
            day,
            int(parts["hh"]),
            int(parts["mi"]),
            int(parts["ss"] or 0),
            micros,
            tzinfo=zone,
        )
    except ValueError as exc:
        if isinstance(exc, TimeValueError):
            raise
        raise TimeValueError(f"{name}: {value!r} is not a real date or time ({exc})") from None
    low_us = to_micros(moment)
    if parts["ss"] is None:
        width = 60 * MICROS
    elif not frac:
        width = MICROS
    else:
        width = 10 ** (6 - len(digits)) if len(frac) <= 6 else 1
    return low_us, low_us + width


def parse_instant(value: str, name: str) -> int:
    """A FHIR instant (date and time with zone) as microseconds: the start of its range."""
    if "T" not in value:
        raise TimeValueError(f"{name}: {value!r} must be an instant with a time and a zone")
    return parse_range(value, name)[0]


def point_micros(value: object) -> int | None:
    """A stored resource's date/time as microseconds, or None when missing or not valid.

    Used to index `meta.lastUpdated` and `Appointment.start`; a stored value that does not
    parse is not an error here (the peer serves what it was given), it just never matches.
    """
    if not isinstance(value, str):
        return None
    try:
        return parse_range(value, "value")[0]
    except TimeValueError:
        return None
