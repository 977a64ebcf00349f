"""What the patient is sent back, chosen by pool alone (pure, given the templates).

The choice is structural so it can be checked: urgent gets `safety`, a clinical pool gets
`receipt`, an administrative pool gets `acknowledgement` (and, for appointments, the booking
link). The text the patient wrote never reaches these templates, so nothing here can answer it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from string import Template

from clinicflow.automations.reminders.dates import ES_DAYS_LONG, ES_MONTHS_LONG
from clinicflow.automations.triage.pools import APPOINTMENT, POOLS, URGENT, is_clinical
from clinicflow.errors import InputError

KINDS = ("safety", "receipt", "acknowledgement", "booking")
LANGUAGES = ("en", "es")


@dataclass(frozen=True, slots=True)
class ReplyTemplates:
    """The practice's reply templates by kind and language, and team names by pool."""

    texts: dict[str, dict[str, Template]]
    teams: dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Reply:
    """The text to send and which template made it (kept with the decision)."""

    kind: str
    text: str


def parse_templates(text: str, *, source: str) -> ReplyTemplates:
    """Templates from TOML; InputError names the kind or language that is missing."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"not valid TOML: {error}", where=source) from None
    texts: dict[str, dict[str, Template]] = {}
    for kind in KINDS:
        for language in LANGUAGES:
            value = (table.get(kind) or {}).get(language)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"[{kind}] needs an {language} text", where=source)
            texts.setdefault(kind, {})[language] = Template(value)
    teams = {
        language: {
            pool: str(((table.get("teams") or {}).get(language) or {}).get(pool, ""))
            for pool in POOLS
        }
        for language in LANGUAGES
    }
    return ReplyTemplates(texts, teams)


@lru_cache(maxsize=4)
def load_templates(path: Path | None = None) -> ReplyTemplates:
    """The practice's templates at `path`, or the shipped ones."""
    if path is not None:
        return parse_templates(path.read_text(encoding="utf-8"), source=str(path))
    shipped = resources.files("clinicflow.automations.triage") / "data" / "replies.toml"
    return parse_templates(shipped.read_text(encoding="utf-8"), source="replies.toml")


def kind_for(pool: str, *, has_booking_link: bool) -> str:
    """Which template a message of `pool` gets back."""
    if pool == URGENT:
        return "safety"
    if is_clinical(pool):
        return "receipt"
    return (
        "acknowledgement+booking"
        if pool == APPOINTMENT and has_booking_link
        else ("acknowledgement")
    )


def when_text(at: datetime, language: str) -> str:
    """A due time as a patient reads it, in their language ("Thu 3 Dec, 4:30 PM")."""
    if language == "es":
        return (
            f"{ES_DAYS_LONG[at.weekday()]} {at.day} de {ES_MONTHS_LONG[at.month - 1]}, {at:%H:%M}"
        )
    return f"{at:%a} {at.day} {at:%b}, {at:%I:%M %p}".replace(" 0", " ")


def compose(
    templates: ReplyTemplates,
    *,
    pool: str,
    language: str,
    practice: str,
    phone: str | None,
    due_local: datetime,
    booking_link: str | None,
) -> Reply:
    """The reply for a message of `pool` (never anything but the pool's template)."""
    language = language if language in LANGUAGES else "en"
    kind = kind_for(pool, has_booking_link=bool(booking_link))
    values = {
        "practice": practice,
        "phone": phone or "",
        "by": when_text(due_local, language),
        "team": templates.teams[language].get(pool) or "",
        "link": booking_link or "",
    }
    parts = kind.split("+")
    text = "".join(templates.texts[part][language].safe_substitute(values) for part in parts)
    return Reply(kind, text)
