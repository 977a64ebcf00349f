"""A visit's day and time as a patient reads them, in English (US) or Spanish (pure; no Babel).

- en: "Tue, Dec 1" and "2:30 PM", together "Tue, Dec 1 at 2:30 PM"; long "Tuesday, December 1,
  2026 at 2:30 PM". The US order and 12-hour clock, since the SMS rules we follow (the STOP
  footer) are US carriers'.
- es: "mar 1 dic" and "14:30", together "mar 1 dic a las 14:30"; long "martes 1 de diciembre de
  2026 a las 14:30". Day before month, lower case as Spanish writes them, abbreviations without
  the period (one character less in a text), and the 24-hour clock, which reads the same in every
  Spanish-speaking country; "a la 1:30" for one o'clock, as it is said.

The time zone is the datetime's own (the patient's) and is not printed: a reminder is local.
"""

from __future__ import annotations

from datetime import datetime

EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EN_DAYS_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EN_MONTHS_LONG = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# "sáb" takes a Spanish text out of the GSM alphabet (UCS-2, 70 characters a segment); the
# correct spelling wins, and the template preview reports the cost.
ES_DAYS = ("lun", "mar", "mié", "jue", "vie", "sáb", "dom")
ES_DAYS_LONG = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
ES_MONTHS = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")
ES_MONTHS_LONG = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


def day_text(at: datetime, language: str) -> str:
    """The day, short: "Tue, Dec 1" / "mar 1 dic"."""
    if language == "es":
        return f"{ES_DAYS[at.weekday()]} {at.day} {ES_MONTHS[at.month - 1]}"
    return f"{EN_DAYS[at.weekday()]}, {EN_MONTHS[at.month - 1]} {at.day}"


def time_text(at: datetime, language: str) -> str:
    """The time of day: "2:30 PM" / "14:30"."""
    if language == "es":
        return f"{at.hour}:{at.minute:02d}"
    hour = at.hour % 12 or 12
    return f"{hour}:{at.minute:02d} {'AM' if at.hour < 12 else 'PM'}"


def when_text(at: datetime, language: str) -> str:
    """Day and time, short, for a text: "Tue, Dec 1 at 2:30 PM" / "mar 1 dic a las 14:30"."""
    return f"{day_text(at, language)} {_at(at, language)} {time_text(at, language)}"


def when_long_text(at: datetime, language: str) -> str:
    """Day and time in full, for an e-mail: "Tuesday, December 1, 2026 at 2:30 PM"."""
    if language == "es":
        day = (
            f"{ES_DAYS_LONG[at.weekday()]} {at.day} de {ES_MONTHS_LONG[at.month - 1]} de {at.year}"
        )
    else:
        day = f"{EN_DAYS_LONG[at.weekday()]}, {EN_MONTHS_LONG[at.month - 1]} {at.day}, {at.year}"
    return f"{day} {_at(at, language)} {time_text(at, language)}"


def _at(at: datetime, language: str) -> str:
    if language == "es":
        return "a la" if at.hour == 1 else "a las"  # "a la una", "a las dos"
    return "at"
