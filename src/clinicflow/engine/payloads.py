"""Payloads of the effect kinds the engine offers through `ctx.effects` (stored encrypted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from clinicflow.engine.states import Priority
from clinicflow.errors import InputError

MESSAGE_SEND = "message.send"
WORK_ITEM_OPEN = "work_item.open"


class MessageChannel(StrEnum):
    """How a message reaches a patient."""

    SMS = "sms"
    EMAIL = "email"


def _text(payload: Mapping[str, object], name: str, kind: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(f"`{name}` is missing or not text", where=f"{kind} payload")
    return value


def _optional(payload: Mapping[str, object], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ValidWhile:
    """A message is about a visit at a time: if the visit moved or ended, it must not go out."""

    ref: str  # "Appointment/9"
    start_at: datetime

    def to_payload(self) -> dict[str, str]:
        """Plain JSON."""
        return {"ref": self.ref, "start_at": self.start_at.isoformat()}


class Purpose(StrEnum):
    """Why a message goes out, which decides the send-time checks that apply to it.

    - NOTICE: something we start (a reminder, an offer): every check, quiet hours included.
    - REPLY: an answer to what the patient just sent (the triage receipt or safety message):
      no quiet hours, since the patient is writing to us now; the pause and opt-outs hold.
    - STAFF_ALERT: to a member of staff (an urgent message waiting): not a patient message,
      so neither the pause nor quiet hours hold it; an opt-out still does (the carrier would
      refuse it anyway).
    """

    NOTICE = "notice"
    REPLY = "reply"
    STAFF_ALERT = "staff-alert"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to one patient: the payload of `message.send`.

    What the channel checks again at send time rides along: the recipient's time zone (quiet
    hours), the last moment the message still helps (`not_after`), and the visits it is about.
    """

    channel: MessageChannel
    to: str
    body: str
    subject: str | None = None
    for_ref: str | None = None
    focus: str | None = None
    html: str | None = None
    unsubscribe_url: str | None = None
    zone: str | None = None  # IANA zone of the recipient; None: the practice's
    not_after: datetime | None = None
    valid_while: tuple[ValidWhile, ...] = ()
    purpose: Purpose = Purpose.NOTICE

    def to_payload(self) -> dict[str, object]:
        """The JSON stored (encrypted) with the effect."""
        return {
            "channel": self.channel.value,
            "to": self.to,
            "body": self.body,
            "subject": self.subject,
            "for_ref": self.for_ref,
            "focus": self.focus,
            "html": self.html,
            "unsubscribe_url": self.unsubscribe_url,
            "zone": self.zone,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "valid_while": [v.to_payload() for v in self.valid_while],
            "purpose": self.purpose.value,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> OutgoingMessage:
        """Parse a stored payload; InputError says which field is wrong."""
        channel = _text(payload, "channel", MESSAGE_SEND)
        if channel not in {c.value for c in MessageChannel}:
            raise InputError(f"unknown channel {channel!r}", where=f"{MESSAGE_SEND} payload")
        return cls(
            channel=MessageChannel(channel),
            to=_text(payload, "to", MESSAGE_SEND),
            body=_text(payload, "body", MESSAGE_SEND),
            subject=_optional(payload, "subject"),
            for_ref=_optional(payload, "for_ref"),
            focus=_optional(payload, "focus"),
            html=_optional(payload, "html"),
            unsubscribe_url=_optional(payload, "unsubscribe_url"),
            zone=_optional(payload, "zone"),
            not_after=_instant(payload, "not_after"),
            valid_while=_valid_while(payload),
            purpose=_purpose(payload),
        )


def _purpose(payload: Mapping[str, object]) -> Purpose:
    value = _optional(payload, "purpose") or Purpose.NOTICE.value
    try:
        return Purpose(value)
    except ValueError:
        raise InputError(f"unknown purpose {value!r}", where=f"{MESSAGE_SEND} payload") from None


def _instant(payload: Mapping[str, object], name: str) -> datetime | None:
    text = _optional(payload, name)
    return datetime.fromisoformat(text) if text else None


def _valid_while(payload: Mapping[str, object]) -> tuple[ValidWhile, ...]:
    items = payload.get("valid_while") or []
    if not isinstance(items, list):
        raise InputError("`valid_while` is not a list", where=f"{MESSAGE_SEND} payload")
    return tuple(
        ValidWhile(str(item["ref"]), datetime.fromisoformat(str(item["start_at"])))
        for item in items
        if isinstance(item, dict)
    )


@dataclass(frozen=True, slots=True)
class WorkItemRequest:
    """A work item a run asks for: the payload of `work_item.open` (its key is the effect's key)."""

    pool: str
    description: str
    priority: Priority = Priority.ROUTINE
    due_at: datetime | None = None
    focus: str | None = None
    for_ref: str | None = None

    def to_payload(self) -> dict[str, object]:
        """The JSON stored (encrypted) with the effect."""
        return {
            "pool": self.pool,
            "description": self.description,
            "priority": self.priority.value,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "focus": self.focus,
            "for_ref": self.for_ref,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> WorkItemRequest:
        """Parse a stored payload; InputError says which field is wrong."""
        due = _optional(payload, "due_at")
        priority = _optional(payload, "priority") or Priority.ROUTINE.value
        if priority not in {p.value for p in Priority}:
            raise InputError(f"unknown priority {priority!r}", where=f"{WORK_ITEM_OPEN} payload")
        return cls(
            pool=_text(payload, "pool", WORK_ITEM_OPEN),
            description=_text(payload, "description", WORK_ITEM_OPEN),
            priority=Priority(priority),
            due_at=datetime.fromisoformat(due) if due else None,
            focus=_optional(payload, "focus"),
            for_ref=_optional(payload, "for_ref"),
        )
