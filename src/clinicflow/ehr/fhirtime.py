"""Parse FHIR date, dateTime and instant values into aware UTC datetimes and dates."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from clinicflow.errors import InputError

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def parse_instant(value: object, field: str) -> datetime | None:
    """A FHIR dateTime/instant as aware UTC; a bare date is UTC midnight; a naive time is refused.

    FHIR R4 (datatypes §2.24.0.1): "If hours and minutes are specified, a time zone SHALL be
    populated", so a time without an offset is an error rather than a guess.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"`{field}` must be a date-time string, not {type(value).__name__}")
    if len(value) <= 10 and _DATE.match(value):
        parts = [int(p) for p in value.split("-")] + [1, 1]
        try:
            return datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
        except ValueError:
            raise InputError(f"`{field}` is not a real calendar date: {value!r}") from None
    try:
        parsed = datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z
    except ValueError:
        raise InputError(f"`{field}` is not a valid FHIR dateTime: {value!r}") from None
    if parsed.tzinfo is None:
        raise InputError(f"`{field}` has a time but no time zone offset: {value!r}")
    return parsed.astimezone(UTC)


def parse_date(value: object, field: str) -> date | None:
    """A FHIR date (or the date part of a dateTime)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"`{field}` must be a date string, not {type(value).__name__}")
    text = value[:10]
    if not _DATE.match(text):
        raise InputError(f"`{field}` is not a valid FHIR date: {value!r}")
    parts = [int(p) for p in text.split("-")] + [1, 1]
    try:
        return date(parts[0], parts[1], parts[2])
    except ValueError:
        raise InputError(f"`{field}` is not a real calendar date: {value!r}") from None
