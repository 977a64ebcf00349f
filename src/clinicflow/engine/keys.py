"""Idempotency keys: one function per effect kind, so a key is never built inline (pure).

A key names *what* should happen exactly once, e.g.
`message:appointment-reminders:Appointment/9:48h`.
Parts are escaped so that distinct parts never produce the same key, and a key too long for its
column keeps a readable prefix and ends in `~` and a digest of the whole (`~` is always escaped in
parts, so a shortened key never equals a short one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

MAX_KEY_LENGTH = 300


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A").replace("~", "%7E")


def compose_key(kind: str, *parts: str) -> str:
    """`kind:part:part…` with each part escaped; the building block of every key function."""
    if not kind or ":" in kind or "%" in kind:
        raise ValueError(f"effect key kind {kind!r} must be non-empty without ':' or '%'")
    key = ":".join((kind, *(_escape(part) for part in parts)))
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: MAX_KEY_LENGTH - len(digest) - 2]}~{digest}"[:MAX_KEY_LENGTH]


def message_key(automation: str, focus: str, touchpoint: str) -> str:
    """A message about `focus` (e.g. "Appointment/9") for one touchpoint ("48h", "2h", "reply")."""
    return compose_key("message", automation, focus, touchpoint)


def reminder_key(appointment_ids: Sequence[str], touchpoint: str, start: datetime) -> str:
    """One touchpoint of the visits one message lists, e.g.
    `reminder:Appointment/9:sms-2d@2026-12-01T14:00Z`.

    The visit's start is part of the touchpoint: a rescheduled visit is reminded afresh, while its
    voided reminder for the old time keeps its own key.
    """
    visits = "+".join(sorted(appointment_ids))
    return compose_key("reminder", visits, f"{touchpoint}@{start.astimezone(UTC):%Y-%m-%dT%H:%MZ}")


def work_item_key(automation: str, reason: str, focus: str) -> str:
    """A work item opened by `automation` for `reason` about `focus`."""
    return compose_key("work-item", automation, reason, focus)


def effect_review_key(effect_key: str, attempt: int) -> str:
    """The work item asking a person about an effect that failed or whose fate is unknown."""
    return compose_key("work-item", "engine", "effect-review", effect_key, str(attempt))


def ehr_write_key(automation: str, resource: str, change: str) -> str:
    """A write-back of `change` (e.g. "status=booked") to `resource` (e.g. "Appointment/9")."""
    return compose_key("ehr-write", automation, resource, change)


def manual_trigger_key(request_id: str) -> str:
    """The trigger key of a run a person asked for."""
    return compose_key("manual", request_id)


def event_trigger_key(event_id: int) -> str:
    """The trigger key of the run an event causes, one per (automation, event)."""
    return f"event:{event_id}"


def cron_trigger_key(instant: datetime) -> str:
    """The trigger key of a scheduled run at one instant, e.g. `cron:2026-11-23T14:00Z`."""
    return f"cron:{instant.astimezone(UTC):%Y-%m-%dT%H:%MZ}"
